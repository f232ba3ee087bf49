"""The layer families of the README's hls4ml table, exported to QONNX: bit-exact through qonnx's execution, or refused.

The same chain of blocks as the hls4ml property tests (``hls4ml_families.py``: every layer of a block is
named ``<family>_...``), converted with the same presets and input quantizer, exported with
:func:`qconvert.export.qonnx.export_qonnx` and run by qonnx's ``execute_onnx`` on 1,000 sampled inputs; the
per-layer comparison with Keras says which family diverged. A family the export refuses is recorded with
the one-line refusal, and the chain is rebuilt without it.

``run_family_check`` is shared by ``tests/test_qonnx_families.py`` (which asserts on it) and
``benchmarks/qonnx_table.py`` (which renders the README table from it).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
from hls4ml_families import PRESETS, Family, build, families, rules_text, unfoldable_batchnorm_model

L = keras.layers
_REFUSED_LAYER = re.compile(r"^layer '(?P<layer>[^']+)'")


@dataclass
class Outcome:
    """One preset: per family 'exact', 'diverged' or 'refused: <the refusal>'; the ONNX ops each family became;
    and the figures of the run."""

    preset: str
    families: dict[str, str] = field(default_factory=dict)
    ops: dict[str, list[str]] = field(default_factory=dict)
    logits_exact_fraction: float | None = None
    argmax_agreement: float | None = None
    n_samples: int = 0
    limits: str = ""
    seconds: float = 0.0


def _family_of(layer: str, fams: list[Family]) -> Family | None:
    return next((f for f in sorted(fams, key=lambda f: -len(f.name)) if layer == f.name or layer.startswith(f"{f.name}_")),
                None)


def run_one(preset: str, workdir: Path) -> Outcome:
    """Export the chain of every family at ``preset``, refusals taken out one by one, and check it."""
    import onnx

    import qconvert
    from qconvert.export.qonnx import QonnxOptions, QonnxRefusal, export_qonnx
    from qconvert.export.qonnx.graph import layer_nodes

    start = time.perf_counter()
    rules = workdir / f"{preset}.yaml"
    rules.write_text(rules_text(preset))
    outcome = Outcome(preset)
    kept = families()
    path = workdir / f"families_{preset}.onnx"
    while True:
        qmodel, _ = qconvert.convert(build(kept), rules)
        try:
            result = export_qonnx(qmodel, QonnxOptions(path))
            break
        except QonnxRefusal as exc:
            m = _REFUSED_LAYER.match(str(exc))
            family = _family_of(m.group("layer"), kept) if m else None
            if family is None:
                raise
            outcome.families[family.name] = f"refused: {exc}"
            kept = [f for f in kept if f is not family]
    model = onnx.load(str(path))
    a = result.agreement
    exact = a["logits_exact_fraction"] == 1.0
    for family in kept:
        layers = [layer.name for layer in qmodel.layers if _family_of(layer.name, kept) is family]
        traced = [a["layers_exact"][n] for n in layers if n in a["layers_exact"]]
        outcome.families[family.name] = "exact" if exact and all(f == 1.0 for f in traced) else "diverged"
        outcome.ops[family.name] = sorted({n.op_type for name in layers for n in layer_nodes(model, name)})
    outcome.logits_exact_fraction = a["logits_exact_fraction"]
    outcome.argmax_agreement = a["argmax_agreement"]
    outcome.n_samples = a["n_samples"]
    outcome.limits = a["limits"]
    outcome.seconds = round(time.perf_counter() - start, 1)
    return outcome


def run_family_check(workdir: Path, presets: tuple[str, ...] = PRESETS) -> list[Outcome]:
    """Every preset, one after the other."""
    return [run_one(p, workdir) for p in presets]


def unfolded_batchnorm(preset: str, workdir: Path) -> dict[str, Any]:
    """A BatchNormalization the rules cannot fold (after an activation, before a Reshape) stays float: exported as a Mul and an Add
    with TensorFlow's constants. The BN's own output and the logits after it, against Keras."""
    from qconvert.export.qonnx import QonnxOptions, export_qonnx

    qmodel = unfoldable_batchnorm_model(preset, workdir)
    a = export_qonnx(qmodel, QonnxOptions(workdir / f"bn_{preset}.onnx")).agreement
    return {"bn_exact": a["layers_exact"].get("bn"), "logits_exact": a["logits_exact_fraction"], "limits": a["limits"]}
