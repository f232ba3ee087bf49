"""Layer families for the hls4ml property tests: one chain of small blocks, each block one family.

Every layer of a block is named ``<family>_...``, so the emulation's per-layer trace tells which family
diverged. The chain goes image → sequence → vector, so one compiled project checks every family
(hls4ml compiles cost seconds each). A block the io type cannot implement is left out of that io
type's chain, and the refusal qconvert gives for it is recorded instead.

``run_family_check`` is shared by ``tests/test_hls4ml_families.py`` (which asserts on it) and
``benchmarks/hls4ml_table.py`` (which renders the README table from it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

L = keras.layers
ROOT = Path(__file__).resolve().parent.parent
PRESETS = ("4bit", "8bit")
IO_TYPES = ("io_parallel", "io_stream")
INPUT_QUANTIZER = "quantized_bits(8, 2)"  # inputs on a grid: every sum stays within float32's 24 bits


def _act(name: str, fn: str = "relu") -> Callable:
    return L.Activation(fn, name=f"{name}_{fn}") if fn != "leaky_relu" else L.LeakyReLU(0.25, name=f"{name}_leaky")


def _conv(name: str, *args, **kwargs) -> Callable:
    def block(x):
        return _act(name)(L.Conv2D(*args, name=name, **kwargs)(x))

    return block


@dataclass(frozen=True)
class Family:
    name: str
    label: str  # the README row
    section: str  # image | sequence | vector
    block: Callable


def _image_families() -> list[Family]:
    def merge(kind: str) -> Callable:
        def block(x):
            a = _act(f"{kind}_a")(L.Conv2D(4, 1, name=f"{kind}_a")(x))
            b = _act(f"{kind}_b")(L.Conv2D(4, 1, name=f"{kind}_b")(x))
            layer = {"add": L.Add, "concatenate": L.Concatenate, "multiply": L.Multiply}[kind](name=kind)
            return _act(f"{kind}_out")(layer([a, b])) if kind == "multiply" else layer([a, b])

        return block

    def folded_bn(x):
        return _act("bn_folded")(L.BatchNormalization(name="bn_folded_bn")(L.Conv2D(4, 3, padding="same", name="bn_folded")(x)))

    def depthwise(x):
        return _act("depthwise")(L.DepthwiseConv2D(3, padding="same", name="depthwise")(x))

    def separable(x):
        return _act("separable")(L.SeparableConv2D(4, 3, padding="same", name="separable")(x))

    return [  # shapes: 12 → 12 → 6 → 12 → 5 → 3 → 7 → 5 → 5 → 10 → 5 → 3 → 3 … (3, 3, 8)
        Family("conv2d_same", "Conv2D, padding='same'", "image", _conv("conv2d_same", 4, 3, padding="same")),
        Family("maxpool2d_valid", "MaxPooling2D, padding='valid'", "image", L.MaxPooling2D(2, name="maxpool2d_valid")),
        Family("upsampling2d", "UpSampling2D", "image", L.UpSampling2D(2, name="upsampling2d")),
        Family("conv2d_valid_s2", "Conv2D, padding='valid', strides=2", "image", _conv("conv2d_valid_s2", 4, 3, strides=2)),
        Family("maxpool2d_same", "MaxPooling2D, padding='same'", "image", L.MaxPooling2D(2, padding="same", name="maxpool2d_same")),
        Family("zeropadding2d", "ZeroPadding2D", "image", L.ZeroPadding2D(2, name="zeropadding2d")),
        Family("cropping2d", "Cropping2D", "image", L.Cropping2D(1, name="cropping2d")),
        Family("depthwise", "DepthwiseConv2D", "image", depthwise),
        Family("upsampling2d_b", "UpSampling2D", "image", L.UpSampling2D(2, name="upsampling2d_b")),
        Family("avgpool2d_valid", "AveragePooling2D, padding='valid'", "image", L.AveragePooling2D(2, name="avgpool2d_valid")),
        Family("avgpool2d_same", "AveragePooling2D, padding='same'", "image", L.AveragePooling2D(2, padding="same", name="avgpool2d_same")),
        Family("separable", "SeparableConv2D", "image", separable),
        Family("bn_folded", "BatchNormalization folded into Conv2D", "image", folded_bn),
        Family("add", "Add", "image", merge("add")),
        Family("multiply", "Multiply", "image", merge("multiply")),
        Family("concatenate", "Concatenate", "image", merge("concatenate")),
    ]


def _sequence_families() -> list[Family]:
    def conv1d(name: str, **kwargs) -> Callable:
        def block(x):
            return _act(name)(L.Conv1D(4, 3, name=name, **kwargs)(x))

        return block

    def dense_nd(x):
        return _act("dense_nd")(L.Dense(4, name="dense_nd")(x))

    return [  # lengths: 9 → 9 → 5 → 10 → 9 → 4 → 6 → 3 → 3 → 2 → 1, then (4, 1)
        Family("conv1d_same", "Conv1D, padding='same'", "sequence", conv1d("conv1d_same", padding="same")),
        Family("maxpool1d_same", "MaxPooling1D, padding='same'", "sequence", L.MaxPooling1D(2, padding="same", name="maxpool1d_same")),
        Family("upsampling1d", "UpSampling1D", "sequence", L.UpSampling1D(2, name="upsampling1d")),
        Family("cropping1d", "Cropping1D", "sequence", L.Cropping1D((1, 0), name="cropping1d")),
        Family("conv1d_valid_s2", "Conv1D, padding='valid', strides=2", "sequence", conv1d("conv1d_valid_s2", strides=2)),
        Family("zeropadding1d", "ZeroPadding1D", "sequence", L.ZeroPadding1D(1, name="zeropadding1d")),
        Family("avgpool1d_valid", "AveragePooling1D, padding='valid'", "sequence", L.AveragePooling1D(2, name="avgpool1d_valid")),
        Family("dense_nd", "Dense on a 3-D input", "sequence", dense_nd),
        Family("avgpool1d_same", "AveragePooling1D, padding='same'", "sequence", L.AveragePooling1D(2, padding="same", name="avgpool1d_same")),
        Family("maxpool1d_valid", "MaxPooling1D, padding='valid'", "sequence", L.MaxPooling1D(2, name="maxpool1d_valid")),
        Family("permute", "Permute", "sequence", L.Permute((2, 1), name="permute")),
    ]


def _vector_families() -> list[Family]:
    def dense(name: str, fn: str) -> Callable:
        def block(x):
            return _act(name, fn)(L.Dense(8, name=name)(x))

        return block

    def bn(x):
        return _act("dense_bn_folded")(L.BatchNormalization(name="dense_bn_folded_bn")(L.Dense(8, name="dense_bn_folded")(x)))

    def bn_forward(x):  # after the previous block's activation: folds into the Dense after it
        return _act("dense_bn_forward")(L.Dense(8, name="dense_bn_forward")(L.BatchNormalization(name="dense_bn_forward_bn")(x)))

    return [
        Family("dense_relu", "Dense + ReLU", "vector", dense("dense_relu", "relu")),
        Family("dense_leaky", "LeakyReLU (slope 0.25)", "vector", dense("dense_leaky", "leaky_relu")),
        Family("dense_tanh", "tanh", "vector", dense("dense_tanh", "tanh")),
        Family("dense_sigmoid", "sigmoid", "vector", dense("dense_sigmoid", "sigmoid")),
        Family("dense_bn_folded", "BatchNormalization folded into Dense", "vector", bn),
        Family("dense_bn_forward", "BatchNormalization folded forward into Dense", "vector", bn_forward),
    ]


_GLUE = [  # inserted by build() between the sections; checked like the others
    Family("reshape", "Reshape", "glue", L.Reshape((-1, 8), name="reshape")),
    Family("flatten", "Flatten", "glue", L.Flatten(name="flatten")),
]


def families() -> list[Family]:
    return _image_families() + _sequence_families() + _vector_families() + _GLUE


def build(kept: list[Family], seed: int = 0) -> keras.Model:
    """The chain of ``kept`` blocks on a (12, 12, 2) image, random weights and BN statistics."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((12, 12, 2), name="image")
    x = inp
    for section in ("image", "sequence", "vector"):
        if section == "sequence":
            x = L.Reshape((-1, int(x.shape[-1])), name="reshape")(x)
        if section == "vector":
            x = L.Flatten(name="flatten")(x)
        for family in (f for f in kept if f.section == section):
            x = family.block(x)
    model = keras.Model(inp, L.Dense(3, name="logits")(x))
    rng = np.random.default_rng(seed)
    for w in model.weights:
        values = rng.uniform(0.5, 2.0, w.shape) if "variance" in w.path else rng.normal(0.0, 0.4, w.shape)
        w.assign(values.astype("float32"))
    return model


def rules_text(preset: str) -> str:
    """The shipped preset with an input quantizer (the firmware's inputs on a grid)."""
    return (ROOT / "rules" / f"{preset}.yaml").read_text() + f"input: {INPUT_QUANTIZER}\n"


@dataclass
class Outcome:
    """One (preset, io type) run: per family 'exact', 'diverged' or the refusal; and the figures."""

    preset: str
    io_type: str
    families: dict[str, str] = field(default_factory=dict)
    converted: dict[str, list[str]] = field(default_factory=dict)  # per family, the layer types qconvert made
    logits_exact_fraction: float | None = None
    argmax_agreement: float | None = None
    n_samples: int = 0
    limits: str = ""
    seconds: float = 0.0


def _refused(qmodel, io_type: str, prj: Path) -> dict[str, str]:
    """Per layer name, why the bridge refuses it under ``io_type`` (nothing compiled)."""
    from qconvert.export import Hls4mlOptions, derive_config
    from qconvert.export.support import io_refusal

    _, layers, *_ = derive_config(qmodel, Hls4mlOptions(prj, io_type=io_type))
    return {d["name"]: r for d in layers if (r := io_refusal(d, io_type)) is not None}


def _family_of(layer: str, fams: list[Family]) -> Family | None:
    return next((f for f in sorted(fams, key=lambda f: -len(f.name)) if layer == f.name or layer.startswith(f"{f.name}_")), None)


def run_one(preset: str, io_type: str, workdir: Path) -> Outcome:
    import time

    import qconvert
    from qconvert.export import Hls4mlOptions, export

    start = time.perf_counter()
    rules = workdir / f"{preset}.yaml"
    rules.write_text(rules_text(preset))
    fams = families()
    qmodel, _ = qconvert.convert(build(fams), rules)
    outcome = Outcome(preset, io_type)
    for layer, reason in _refused(qmodel, io_type, workdir / "probe").items():
        family = _family_of(layer, fams)
        outcome.families[family.name if family else layer] = "refused: " + reason.split(": ", 1)[1]
    kept = [f for f in fams if f.name not in outcome.families]
    qmodel, _ = qconvert.convert(build(kept), rules)
    for family in kept:
        outcome.converted[family.name] = sorted({type(layer).__name__ for layer in qmodel.layers
                                                  if _family_of(layer.name, kept) is family})
    result = export(qmodel, Hls4mlOptions(workdir / f"prj_{preset}_{io_type}", io_type=io_type))
    exact = result.exact_fraction == 1.0
    for family in kept:
        traced = [f for name, f in result.layers_exact.items() if _family_of(name, kept) is family]
        outcome.families[family.name] = "exact" if exact and all(f == 1.0 for f in traced) else "diverged"
    outcome.logits_exact_fraction = result.exact_fraction
    outcome.argmax_agreement = result.argmax_agreement
    outcome.n_samples = result.n_samples
    outcome.limits = result.limits
    outcome.seconds = round(time.perf_counter() - start, 1)
    return outcome


def run_family_check(workdir: Path, presets=PRESETS, io_types=IO_TYPES, jobs: int = 2) -> list[Outcome]:
    """Every (preset, io type), ``jobs`` at a time in fresh processes (each compile is a g++ run of its own); with
    ``jobs=1`` one after another in this process (the suite: its other worker already keeps the second core busy,
    and a fresh process costs an import of TensorFlow, Keras and hls4ml)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    runs = [(p, io, workdir / f"{p}_{io}") for p in presets for io in io_types]
    for *_, d in runs:
        d.mkdir(parents=True, exist_ok=True)
    if jobs <= 1:
        return [run_one(*run) for run in runs]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(run_one, *zip(*runs)))


def unfoldable_batchnorm_model(preset: str, workdir: Path) -> keras.Model:
    """A BatchNormalization the rules cannot fold (after an activation and before a Reshape, ``bn``),
    converted with ``preset``'s rules (written into ``workdir``): it stays float."""
    import qconvert

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), L.Dense(8, name="d"), L.Activation("relu", name="r"),
                              L.BatchNormalization(name="bn"), L.Reshape((8,), name="view"), L.Dense(3, name="logits")])
    rules = workdir / f"{preset}_bn.yaml"
    rules.write_text(rules_text(preset))
    return qconvert.convert(model, rules)[0]


def unfolded_batchnorm(preset: str, workdir: Path) -> str:
    """What the derivation says of a BatchNormalization the rules cannot fold (after an activation, before a Reshape): no compile."""
    from qconvert.export import Hls4mlOptions, derive_config

    qmodel = unfoldable_batchnorm_model(preset, workdir)
    derived, *_ = derive_config(qmodel, Hls4mlOptions(workdir / "bn_probe"))
    bn = next(p for p in derived.precisions if p.name == "bn")
    return "exact" if bn.exact else f"not bit-exact: {bn.note}"


def save(outcomes: list[Any], unfolded: dict[str, Any], path: Path) -> None:
    """The results as JSON, for the README table scripts (``benchmarks/hls4ml_table.py``, ``qonnx_table.py``)."""
    labels = {f.name: f.label for f in families()}
    data = {"labels": labels, "runs": [asdict(o) for o in outcomes], "batchnorm_unfolded": unfolded}
    path.write_text(json.dumps(data, indent=1) + "\n")
