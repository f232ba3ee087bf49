"""QKeras (qkeras-v3) → QONNX, written with ``onnx.helper``, cleaned by qonnx, verified bit for bit.

:func:`export_qonnx` builds the graph (:mod:`.graph`, :mod:`.layers`, :mod:`.quant`), cleans it with qonnx's
own ``cleanup_model`` (shape inference, constant folding, unique and readable names), writes it atomically,
runs it with qonnx's ``execute_onnx`` on the validation inputs (else sampled ones) and compares every layer
with Keras (:mod:`.verify`). With ``hls4ml_dir`` it also compiles the written graph with hls4ml's QONNX
frontend and compares that emulation with Keras (:mod:`.frontend`).

qonnx and onnx are imported when these run (qconvert's ``qonnx`` extra), never on ``import qconvert.export``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ExportError
from .graph import OPSET
from .quant import QonnxRefusal

__all__ = ["QonnxOptions", "QonnxRefusal", "QonnxResult", "check_options", "export_qonnx"]


@dataclass(frozen=True)
class QonnxOptions:
    """Where and how to export.

    Attributes:
        output: the ``.onnx`` file to write.
        input_precision: the input type, e.g. ``ap_fixed<16,6>`` (default: the model's input quantizer, else 16
            bits from the data's range, else ``ap_fixed<16,6>``: the hls4ml bridge's order).
        hls4ml_dir: compile the written graph with hls4ml's QONNX frontend in this folder and report its agreement.
        verify: run the graph with qonnx and compare it with Keras.
    """

    output: Path
    input_precision: str | None = None
    hls4ml_dir: Path | None = None
    verify: bool = True


@dataclass(frozen=True)
class QonnxResult:
    """The exported graph and its agreement with Keras (the ``qonnx`` section of the JSON report).

    ``agreement``: the agreement fields every export target reports (:class:`~qconvert.export.verify.Agreement`), qonnx's
    execution against Keras; ``hls4ml``: the same for hls4ml's QONNX frontend (None unless asked for).
    """

    path: Path
    nodes: int
    quant_nodes: int
    input_precision: str
    input_source: str
    logits_layer: str
    final_activation: str | None
    agreement: dict[str, Any]
    export_seconds: float
    verify_seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)
    hls4ml: dict[str, Any] | None = None

    @property
    def logits_exact_fraction(self) -> float | None:
        """Fraction of samples whose logits qonnx computes bit-identical to Keras's."""
        return self.agreement.get("logits_exact_fraction")

    @property
    def first_divergent_layer(self) -> str | None:
        """The first Keras layer whose output the graph does not reproduce bit for bit (None: none)."""
        return self.agreement.get("first_divergent_layer")

    def to_dict(self) -> dict[str, Any]:
        """The ``qonnx`` section of the JSON report."""
        return {
            "path": str(self.path), "opset": OPSET, "nodes": self.nodes, "quant_nodes": self.quant_nodes,
            "input_precision": self.input_precision, "input_source": self.input_source,
            "logits_layer": self.logits_layer, "final_activation": self.final_activation,
            **self.agreement,
            "notes": list(self.notes),
            "seconds": {"export": round(self.export_seconds, 2), "verify": round(self.verify_seconds, 2)},
            "hls4ml_frontend": self.hls4ml,
        }  # fmt: skip


def check_options(options: QonnxOptions) -> QonnxOptions:
    """The output must be a ``.onnx`` file in an existing folder; qonnx must be installed."""
    out = Path(options.output)
    if out.suffix != ".onnx":
        raise ExportError(f"{out}: the QONNX output must be a .onnx file")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: folder {out.parent} does not exist")
    try:
        import onnx  # noqa: F401
        import qonnx  # noqa: F401
    except ImportError:
        raise ExportError("the QONNX export needs qonnx and onnx: pip install 'qconvert[qonnx]'") from None
    if options.input_precision is not None:
        from ..precision import parse_hls

        try:
            parse_hls(options.input_precision)
        except ValueError as exc:
            raise ExportError(f"--input-precision: {exc}") from None
    return options


def _input_type(qmodel: Any, options: QonnxOptions, x: Any) -> tuple[Any, str]:
    """The input type and where it comes from: given, else 16 bits from the data's range, else hls4ml's default
    (the model's own input quantizer, when it has one, is used instead by :func:`.graph.build_graph`)."""
    from ..precision import DEFAULT_INPUT, data_type, parse_hls

    if options.input_precision is not None:
        return parse_hls(options.input_precision), f"given ({options.input_precision})"
    if x is not None:
        return data_type(float(np.max(np.abs(np.asarray(x))))), "data range"
    return DEFAULT_INPUT, "default"


def _clean(model: Any) -> Any:
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    return cleanup_model(ModelWrapper(model)).model


def export_qonnx(qmodel: Any, options: QonnxOptions, x: Any = None, y: Any = None) -> QonnxResult:
    """Export ``qmodel`` to QONNX at ``options.output``, verified against Keras on ``x`` (labels ``y``), else on
    1,000 inputs sampled in the input type's range.

    Raises:
        QonnxRefusal: a layer with no exact QONNX form (the message names it); nothing is written.
        ExportError: bad options, several inputs or outputs, an unwritable output.
    """
    import onnx

    from ...io import atomic_path
    from ..flatten import flatten_nested
    from ..inputs import class_labels, round_to_type, sample_inputs
    from ..verify import Agreement
    from . import verify as v
    from .graph import build_graph, layer_tags

    options = check_options(options)
    start = time.perf_counter()
    qmodel = flatten_nested(qmodel)
    in_type, source = _input_type(qmodel, options, x)
    graph = build_graph(qmodel, in_type, source, force_input_quant=options.input_precision is not None)
    model = _clean(graph.model)
    with atomic_path(options.output, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    export_seconds = time.perf_counter() - start
    quant_nodes = sum(n.op_type in ("Quant", "BipolarQuant") for n in model.graph.node)
    in_prec = in_type.hls() if graph.input_quant is not None else graph.input_source.split("(")[-1].rstrip(")")
    common = {"path": Path(options.output), "nodes": len(model.graph.node), "quant_nodes": quant_nodes,
              "input_precision": in_prec, "input_source": graph.input_source, "logits_layer": graph.logits_layer,
              "final_activation": graph.final_activation, "notes": graph.notes, "export_seconds": export_seconds}
    if not options.verify:
        return QonnxResult(agreement={}, verify_seconds=0.0, **common)
    start = time.perf_counter()
    given = x is not None
    xs = np.asarray(x if given else sample_inputs(qmodel, in_type), dtype=np.float32)
    x_keras = round_to_type(xs.astype(np.float64), in_type) if graph.input_quant is not None else xs.astype(np.float64)
    run = v.execute(model, xs)
    tags = layer_tags(model)
    order = [layer.name for layer in qmodel.layers]
    got = v.compare(qmodel, run, tags, order, x_keras, model.graph.output[0].name,
                    graph.logits_layer if graph.final_activation else None)
    labels = None if y is None else class_labels(y)
    agreement = Agreement(
        "qonnx", n_samples=len(xs), inputs="given" if given else "sampled",
        logits_exact_fraction=got["logits_exact_fraction"], argmax_agreement=got["argmax_agreement"],
        max_abs_diff=got["max_abs_diff"],
        accuracy_keras=None if labels is None else float(np.mean(np.argmax(got["y_keras"], axis=1) == labels)),
        accuracy_target=None if labels is None else float(np.mean(np.argmax(got["y_graph"], axis=1) == labels)),
        first_divergent_layer=got["first_divergent_layer"], limits=v.limits(qmodel, model, run, got, graph.final_activation),
        exact_fraction=got["exact_fraction"], layers_exact=got["layers_exact"],
        inputs_rounded=float(np.mean(np.any((x_keras != xs).reshape(len(xs), -1), axis=1))),
    ).to_dict()
    hls = None
    if options.hls4ml_dir is not None:
        from .frontend import compile_and_compare

        first = next(n for n in model.graph.node if model.graph.input[0].name in n.input)
        x_in = run[first.output[0]] if first.op_type == "Quant" else xs
        hls = compile_and_compare(Path(options.output), Path(options.hls4ml_dir), np.asarray(x_in, dtype=np.float64),
                                  got["keras_logits"], got["y_keras"], labels, agreement["inputs"])
    return QonnxResult(agreement=agreement, verify_seconds=time.perf_counter() - start, hls4ml=hls, **common)
