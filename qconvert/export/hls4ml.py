"""Hand a QKeras (qkeras-v3) model to hls4ml: parse, derive the config, write, emulate, verify, build.

The orchestration of the hls4ml export; each step lives in its own module: :mod:`.options` (what the
user asks for), :mod:`.derive` (every precision), :mod:`.emulate` (compile and run the C++ in a
child), :mod:`.inputs` (what it is checked on), :mod:`.verify` (the comparison with Keras) and
:mod:`.build` (synthesis). With :mod:`.handlers`, which it loads, this is where hls4ml is imported;
the import happens inside the functions, so ``import qconvert.export`` stays cheap.

:func:`export` registers the handlers, parses the model with hls4ml's Keras-3 parser (no Keras-2
or DA fallback), derives every precision, merges the user's hls4ml YAML on top, writes and compiles
the project, then runs the Keras model and the emulation on the same inputs and compares them layer
by layer. With ``build``, it runs synthesis when the backend's tool is installed; when it is not, the
result carries ``build_error`` (the CLI prints it and exits 2; the project is written and compiled
all the same) — :meth:`Hls4mlResult.raise_for_build` raises it.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError
from .build import BuildReport, build
from .derive import Derived, LayerPrecision, SoftmaxPlan, derive
from .emulate import emulate
from .flatten import flatten_nested, reserved_renames
from .inputs import check_inputs, round_to_type
from .options import BACKENDS, STRATEGIES, SYNTHESIS_TOOLS, Hls4mlOptions, check_options, load_user_config, merge_config
from .precision import FixedType, parse_hls
from .quiet import quiet
from .verify import Agreement, agreed, verify_hls4ml

__all__ = [
    "BACKENDS",
    "STRATEGIES",
    "SYNTHESIS_TOOLS",
    "BuildReport",
    "Hls4mlOptions",
    "Hls4mlResult",
    "ImplementedPrecision",
    "LayerPrecision",
    "bops_at_precisions",
    "check_options",
    "derive_config",
    "export",
    "implemented_precisions",
    "preflight",
    "register_handlers",
    "round_to_type",
    "write_project",
]  # fmt: skip

# the keys of the report's ``hls4ml`` section, in their order (the agreement's among them)
SECTION_KEYS = (
    "argmax_agreement", "exact_fraction", "logits_exact_fraction", "accuracy_keras", "accuracy_hls4ml", "max_abs_diff",
    "first_divergent_layer", "project_dir", "backend", "part", "io_type", "n_samples", "inputs", "input_precision",
    "inputs_rounded", "softmax", "layers_exact", "precisions", "limits", "notes", "compile_seconds", "build",
    "build_error", "strategy", "lut_da", "lut_da_total", "outputs",
)  # fmt: skip


@dataclass(frozen=True)
class ImplementedPrecision:
    """Bits hls4ml implements for one layer's multiply-accumulate (what the cost model takes)."""

    weight_bits: int
    input_bits: int
    accum_bits: int


@dataclass(frozen=True)
class Hls4mlResult:
    """A written, compiled and verified hls4ml project.

    ``agreement``: the emulation against Keras (:class:`~.verify.Agreement`; its fields read as the result's own,
    e.g. ``result.logits_exact_fraction``). ``precisions``: what hls4ml implements per layer. ``input_source``: where
    the input type came from. ``compile_seconds``: writing and compiling the project with g++ and the traced run.
    ``softmax``: the final softmax's table plan, if any. ``build``: synthesis figures (``--build``); ``build_error``:
    why synthesis could not run (its tool is missing: the CLI exits 2). ``lut_da``: da4ml's LUT estimate per layer
    (``distributed_arithmetic`` strategy only).
    """

    project_dir: Path
    backend: str
    part: str
    io_type: str
    precisions: tuple[LayerPrecision, ...]
    input_source: str
    compile_seconds: float
    agreement: Agreement
    softmax: SoftmaxPlan | None = None
    build: BuildReport | None = None
    build_error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    strategy: str = "Latency"
    lut_da: dict[str, float] = field(default_factory=dict)

    n_samples = agreed("n_samples")
    inputs = agreed("inputs")  # "given" | "sampled"
    argmax_agreement = agreed("argmax_agreement")
    exact_fraction = agreed("exact_fraction")
    logits_exact_fraction = agreed("logits_exact_fraction")  # None without a final softmax
    max_abs_diff = agreed("max_abs_diff")
    accuracy_keras = agreed("accuracy_keras")
    accuracy_hls4ml = agreed("accuracy_target")
    first_divergent_layer = agreed("first_divergent_layer")
    layers_exact = agreed("layers_exact")
    limits = agreed("limits")
    inputs_rounded = agreed("inputs_rounded")  # samples the input type changed (Keras and hls4ml both saw them rounded)
    outputs = agreed("outputs")  # one check per model output, in the model's order

    def raise_for_build(self) -> None:
        """Raise :class:`ExportError` with ``build_error`` when synthesis was asked for and its tool is missing."""
        if self.build_error:
            raise ExportError(self.build_error)

    def to_dict(self) -> dict[str, Any]:
        """The ``hls4ml`` section of the JSON report (keys :data:`SECTION_KEYS`, in that order)."""
        section = {
            **self.agreement.to_dict(),
            "project_dir": str(self.project_dir), "backend": self.backend, "part": self.part, "io_type": self.io_type,
            "input_precision": self.input_source, "softmax": asdict(self.softmax) if self.softmax else None,
            "precisions": [asdict(p) for p in self.precisions], "notes": list(self.notes),
            "compile_seconds": round(self.compile_seconds, 1), "build": asdict(self.build) if self.build else None,
            "build_error": self.build_error, "strategy": self.strategy, "lut_da": self.lut_da or None,
            "lut_da_total": sum(self.lut_da.values()) if self.lut_da else None,
        }  # fmt: skip
        return {key: section[key] for key in SECTION_KEYS}


def register_handlers() -> tuple[str, ...]:
    """Register qconvert's Keras-3 layer handlers with hls4ml (idempotent); the layer keys they cover."""
    with quiet():
        from . import handlers
    return handlers.install()


def _parse(qmodel: Any) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """hls4ml's Keras-3 parse with qconvert's handlers; layers :func:`.support.refusal` turns away name themselves."""
    from hls4ml.converters.keras_v3_to_hls import parse_keras_v3_model

    from .handlers import UnsupportedLayer
    from .support import refusal

    register_handlers()
    model = getattr(qmodel, "_functional", None) or qmodel
    for layer in model.layers:
        reason = refusal(layer)
        if reason is not None:
            raise UnsupportedLayer(reason)
    try:
        with quiet():  # Keras-2 handlers only for the plain Keras layers refusal() lets through
            layers, inputs, outputs, _ = parse_keras_v3_model(qmodel, allow_da_fallback=False, allow_v2_fallback=True)
    except UnsupportedLayer:
        raise
    except (AssertionError, AttributeError, ValueError, NotImplementedError, KeyError, TypeError) as exc:
        raise ExportError(f"hls4ml cannot parse the model: {exc}") from None
    return layers, inputs, outputs


def derive_config(qmodel: Any, options: Hls4mlOptions, x: Any = None) -> tuple[Derived, list[dict[str, Any]], list[str], list[str]]:
    """Parse ``qmodel`` and derive its hls4ml config (user YAML merged on top); nothing is written.

    ``x``: inputs whose range sets the input type when nothing else does. Returns the derivation (its ``config`` is
    hls4ml's HLSConfig), hls4ml's parsed layer list, and the input and output layer names. Raises
    :class:`ExportError` (:class:`~.handlers.UnsupportedLayer` for a layer the bridge cannot convert).
    """
    layers, inputs, outputs = _parse(qmodel)
    user = load_user_config(options.user_config)
    named = user.get("LayerName") or {}

    def pinned(layer: str, key: str) -> Any:
        cfg = named.get(layer) or {}
        if key == "result":
            prec = cfg.get("Precision")
            return prec.get("result") if isinstance(prec, dict) else prec
        return cfg.get(key)

    # what the user pins there changes what follows from it: the input type, the softmax tables
    input_precision = options.input_precision or (pinned(inputs[0], "result") if inputs else None)
    table_sizes = {d["name"]: int(pinned(d["name"], "table_size") or pinned(d["name"], "TableSize") or 0)
                   for d in layers if d["class_name"] == "Softmax"}
    try:
        derived = derive(layers, reuse_factor=options.reuse_factor, input_precision=input_precision, x=x,
                         table_sizes={k: v for k, v in table_sizes.items() if v})
    except ValueError as exc:
        raise ExportError(f"{options.user_config or 'hls4ml config'}: {exc}") from None
    if options.strategy is not None:
        derived.config["Model"]["Strategy"] = options.strategy
    derived.config = merge_config(derived.config, user)
    derived.precisions = _mark_pinned(derived.precisions, user, str(options.user_config or "the hls4ml config"))
    return derived, layers, inputs, outputs


def _mark_pinned(precisions: list[LayerPrecision], user: dict[str, Any], source: str) -> list[LayerPrecision]:
    """The layers whose ``Precision`` the user's config sets (by ``LayerName`` or ``LayerType``): not derived, so
    their note names the file first; a divergence from them is then blamed on it, not on what derivation knows."""
    named, typed = user.get("LayerName") or {}, user.get("LayerType") or {}
    out = []
    for p in precisions:
        pinned = (named.get(p.name) or {}).get("Precision") or (typed.get(p.class_name) or {}).get("Precision")
        if pinned is None or p.class_name == "InputLayer":  # the input's pinned type is derived from (derive_config)
            out.append(p)
            continue
        note = f"its Precision is set by {source} ({pinned}), not derived, and may not hold what Keras computes"
        out.append(replace(p, note=f"{note}; {p.note}" if p.note else note))
    return out


def implemented_precisions(qmodel: Any, options: Hls4mlOptions | None = None, x: Any = None) -> dict[str, ImplementedPrecision]:
    """Per layer with a multiply-accumulate: the weight, input and accumulator bits hls4ml implements.

    Pass the result to :func:`qconvert.model.cost.model_cost` as ``precisions``.
    """
    opts = options or Hls4mlOptions(Path(tempfile.gettempdir()))
    derived, *_ = derive_config(qmodel, opts, x)
    return {
        p.name: ImplementedPrecision(p.weight_bits, p.input_bits, p.accum_bits)
        for p in derived.precisions
        if p.weight_bits is not None and p.input_bits is not None and p.accum_bits is not None
    }


def bops_at_precisions(qmodel: Any, precisions: tuple[LayerPrecision, ...] | list[LayerPrecision]) -> dict[str, Any]:
    """BOPs with the bits hls4ml implements: per MAC, ``b_w·b_in`` for the product plus the accumulator's width.

    The MAC counts come from :func:`qconvert.model.cost.model_cost`; the keys it returns go into the report's
    ``hls4ml`` section (``bops`` in all, ``bops_per_layer``).
    """
    from ..model.cost import model_cost

    costs = model_cost(qmodel)
    per_layer: dict[str, float] = {}
    for p in precisions:
        c = costs.get(p.name)
        if c is None or p.weight_bits is None or p.input_bits is None or p.accum_bits is None:
            continue
        per_layer[p.name] = float(c.macs) * (p.weight_bits * p.input_bits + p.accum_bits)
    return {"bops": sum(per_layer.values()), "bops_per_layer": per_layer}


def _input_type(derived: Derived) -> FixedType:
    first = next(p for p in derived.precisions if p.class_name == "InputLayer")
    return parse_hls(first.result)


def write_project(qmodel: Any, options: Hls4mlOptions, derived: Derived, layers: list[dict[str, Any]],
                  in_names: list[str], out_names: list[str]) -> Any:
    """hls4ml's ``ModelGraph`` of the parsed ``layers`` with the derived config, for ``options``' backend, part and
    io type (what :func:`derive_config` returned; :func:`.emulate.emulate` writes and compiles it). Raises
    :class:`ExportError` when hls4ml cannot build the graph."""
    import hls4ml
    from hls4ml.model import ModelGraph

    config = hls4ml.utils.config.create_config(
        output_dir=str(options.output_dir), project_name="myproject", backend=options.backend,
        part=options.part, io_type=options.io_type,
    )  # fmt: skip
    config.update(KerasModel=qmodel, InputData=None, OutputPredictions=None, HLSConfig=derived.config)
    try:
        with quiet():
            return ModelGraph.from_layer_list(config, layers, in_names, out_names)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"hls4ml cannot build the model graph: {type(exc).__name__}: {exc}") from None


def export(qmodel: Any, options: Hls4mlOptions, x: Any = None, y: Any = None) -> Hls4mlResult:
    """Convert ``qmodel`` to an hls4ml project, compile it, verify it against Keras, optionally build it.

    ``x`` ``(n, *input_shape)`` (and labels ``y``, indices or one-hot) are the validation inputs; without them,
    :data:`~.inputs.N_SAMPLED` inputs are sampled in the input type's range. Raises :class:`ExportError` for bad
    options, layers the bridge cannot convert and compile failures, :class:`~qconvert.errors.VerificationError`
    when the emulation crashes or ``x``/``y`` do not fit the model; a missing synthesis tool is ``build_error`` on
    the result.
    """
    options = check_options(options)
    qmodel, derived, layers, in_names, out_names = _graph(qmodel, options, x)
    in_type = _input_type(derived)
    xs, source = check_inputs(qmodel, in_type, x, y)
    Path(options.output_dir).mkdir(parents=True, exist_ok=True)
    hls_model = write_project(qmodel, options, derived, layers, in_names, out_names)
    xq = np.ascontiguousarray(round_to_type(xs, in_type))
    start = time.perf_counter()
    ys_hls, trace = emulate(hls_model, xq, options.output_dir, options.io_type)  # writes, compiles, runs it (isolated)
    compile_seconds = time.perf_counter() - start
    agreement = verify_hls4ml(qmodel, hls_model, derived, xs, xq, source, ys_hls, trace, y)
    build_report, build_error = build(hls_model, options) if options.build else (None, None)
    lut_da = {name: float(node.attributes["da_kernel_cost"]) for name, node in hls_model.graph.items()
              if node.attributes.get("da_kernel_cost") is not None}
    return Hls4mlResult(
        project_dir=options.output_dir, backend=options.backend, part=options.part, io_type=options.io_type,
        precisions=tuple(derived.precisions), input_source=derived.input_source, compile_seconds=compile_seconds,
        agreement=agreement, build=build_report, build_error=build_error, notes=tuple(derived.notes),
        softmax=derived.softmax, strategy=derived.config["Model"]["Strategy"], lut_da=lut_da,
    )  # fmt: skip


def _graph(qmodel: Any, options: Hls4mlOptions, x: Any = None) -> tuple[Any, Derived, list[dict[str, Any]], list[str],
                                                                        list[str]]:
    """What :func:`export` builds the project from: the model flattened (hls4ml's reserved names renamed), parsed
    and typed; raises every refusal that needs no compiler."""
    renames = reserved_renames(qmodel)
    qmodel = flatten_nested(qmodel, renames)  # hls4ml parses one flat graph; the same layers, so the same numbers
    if len(qmodel.inputs) != 1:
        raise ExportError(f"model '{qmodel.name}': the hls4ml bridge handles single-input models "
                          f"(this one has {len(qmodel.inputs)} inputs)")
    derived, layers, in_names, out_names = derive_config(qmodel, options, x)
    derived.notes.extend(f"layer {old} is {new} in the hls4ml project: hls4ml reserves the name {old!r}"
                         for old, new in renames.items())
    _check_layers(layers, options.io_type, options.backend)
    return qmodel, derived, layers, in_names, out_names


def preflight(qmodel: Any, options: Hls4mlOptions) -> None:
    """The refusals :func:`export` would meet for ``qmodel``, found without writing or compiling anything: the
    main job runs this before QAT, so that a refusal costs no training. Raises what :func:`export` raises."""
    _graph(qmodel, check_options(options))


def _check_layers(layers: list[dict[str, Any]], io_type: str, backend: str) -> None:
    """What hls4ml's C++ asserts on for this io type, and what the backend has no function for, is refused
    before anything compiles."""
    from .handlers import UnsupportedLayer
    from .support import backend_refusal, io_refusal, shared_padding_refusal

    shared = shared_padding_refusal(layers, io_type)
    if shared is not None:
        raise UnsupportedLayer(shared)
    for d in layers:
        reason = io_refusal(d, io_type) or backend_refusal(d, backend)
        if reason is not None:
            raise UnsupportedLayer(reason)
