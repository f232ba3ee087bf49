"""The QONNX graph of a QKeras model, written with ``onnx.helper``: the walk over the layers.

:func:`build_graph` walks the model's layer calls (:func:`qconvert.model.graph.run`) and hands each layer to
its converter (:mod:`.layers`, :mod:`.spatial`) on a :class:`~.builder.Builder`; it adds the input ``Quant``
when the model has no input quantizer, and keeps the tensor before a final float softmax or sigmoid as the
logits. :func:`layer_tags` reads back, from the cleaned graph, which tensor holds which Keras layer's output:
the verification compares each of them with Keras (:mod:`.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ...errors import ExportError
from ...model.graph import graph_of, leaves, run
from ..inputs import input_quantizer_layer
from . import layers, spatial  # noqa: F401  (their converters register in .common)
from .builder import QONNX_DOMAIN, TAG, Builder, Value
from .common import convert_layer
from .quant import QuantParams

OPSET = 11  # qonnx's preferred ONNX opset (qonnx.util.basic.get_preferred_onnx_opset)

__all__ = ["OPSET", "Graph", "build_graph", "layer_nodes", "layer_tags"]

IR_VERSION = 7  # the IR of opset 11-13 readers (FINN, hls4ml, older onnxruntime) all load


@dataclass(frozen=True)
class Graph:
    """The exported graph and what its verification needs: the ONNX model, the input and logits tensors,
    the Keras layer the logits come from, a final float activation left after them, and the input type."""

    model: Any  # onnx.ModelProto
    input_name: str
    output_name: str
    logits_name: str
    logits_layer: str
    final_activation: str | None  # the layer of a final float softmax / sigmoid after the logits
    input_quant: QuantParams | None  # the input Quant qconvert added (the model had no input quantizer)
    input_source: str
    notes: tuple[str, ...] = ()


def layer_tags(model: Any) -> dict[str, tuple[str, bool]]:
    """Per Keras layer name: the tensor holding its output in ``model`` (a ModelProto) and whether it is
    stored channels-first."""
    tags: dict[str, tuple[str, bool]] = {}
    for node in model.graph.node:
        m = TAG.match(node.doc_string or "")
        if m and m.group("out"):
            tags[m.group("layer")] = (node.output[0], m.group("first") is not None)
    return tags


def layer_nodes(model: Any, layer: str) -> list[Any]:
    """The nodes of ``model`` (a ModelProto) that compute Keras layer ``layer``."""
    return [n for n in model.graph.node if (m := TAG.match(n.doc_string or "")) and m.group("layer") == layer]


def _final_float(layer: Any) -> str | None:
    """'softmax' or 'sigmoid' when ``layer`` is a float activation of that function (a classifier head)."""
    if type(layer).__name__ not in ("Activation", "Softmax", "QActivation"):
        return None
    fn = "softmax" if type(layer).__name__ == "Softmax" else getattr(getattr(layer, "activation", None), "__name__", None)
    return fn if fn in ("softmax", "sigmoid") else None


def build_graph(qmodel: Any, input_type: Any, input_source: str, force_input_quant: bool = False) -> Graph:
    """The QONNX graph of a flat, single-input, single-output QKeras model (batch 1, inputs channels-last).

    ``input_type`` (a :class:`~qconvert.export.precision.FixedType`) is the input ``Quant`` added when the model
    has no input quantizer, or always with ``force_input_quant`` (an input precision the user gave). Raises
    :class:`~.quant.QonnxRefusal` for a layer with no exact QONNX form, :class:`ExportError` for several inputs
    or outputs.
    """
    from onnx import TensorProto, helper, numpy_helper
    from qonnx.util.basic import qonnx_make_model

    from .quant import input_quant

    if len(qmodel.inputs) != 1 or len(qmodel.outputs) != 1:
        raise ExportError(f"model '{qmodel.name}': the QONNX export handles single-input, single-output models "
                          f"(this one has {len(qmodel.inputs)} inputs and {len(qmodel.outputs)} outputs)")
    graph = graph_of(qmodel)
    b = Builder()
    if any(d is None for d in qmodel.inputs[0].shape[1:]):
        raise ExportError(f"model '{qmodel.name}': input shape {tuple(qmodel.inputs[0].shape)} has an unknown "
                          "dimension besides the batch; the QONNX graph needs fixed shapes")
    shape = tuple(int(d) for d in qmodel.inputs[0].shape[1:])
    inp = Value(b.unique(graph.inputs[0].layer), shape)
    start = inp
    absorbed = input_quantizer_layer(qmodel, graph)
    add_quant = absorbed is None or force_input_quant
    in_q = None
    if add_quant:
        if input_type.kind != "fixed":
            raise ExportError(f"input type {input_type.hls()}: the input Quant needs a fixed-point type")
        in_q = input_quant(input_type.width, input_type.integer, input_type.signed)
        start = replace(inp, name=b.quant(inp.name, in_q, f"{inp.name}_quant"))
    out_ref = graph.outputs[0] if isinstance(graph.outputs, (list, tuple)) else graph.outputs
    last = qmodel.get_layer(out_ref.layer)
    final = _final_float(last)
    single = {c.layer for c in graph.calls if len(graph.calls_of(c.layer)) == 1}
    logits: dict[str, Any] = {"name": None, "layer": out_ref.layer}

    def call(c: Any, args: Any, kwargs: dict[str, Any]) -> Value:
        layer = qmodel.get_layer(c.layer)
        ins = leaves(args, Value)
        if final is not None and layer is last:
            logits.update(name=b.layout(ins[0], False).name, layer=c.inputs()[0].layer)
        since = len(b.nodes)
        out = convert_layer(b, layer, ins, c.node)
        if c.layer in single and out.name not in {v.name for v in ins}:
            b.tag(since, out.name, c.layer, out.first)
        return out

    result = run(graph, [start], call)
    out = b.layout(result[0] if isinstance(result, (list, tuple)) else result, False)
    onnx_graph = helper.make_graph(
        b.nodes, qmodel.name or "qconvert",
        [helper.make_tensor_value_info(inp.name, TensorProto.FLOAT, inp.onnx_shape)],
        [helper.make_tensor_value_info(out.name, TensorProto.FLOAT, out.onnx_shape)],
        [numpy_helper.from_array(v, n) for n, v in b.initializers.items()],
    )
    model = qonnx_make_model(onnx_graph, producer_name="qconvert",
                             opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)])
    model.ir_version = IR_VERSION
    notes = ()
    if in_q is not None:
        notes = (f"inputs are rounded to {input_type.hls()} ({input_source}) by the graph's input Quant; the "
                 "verification gives Keras the same rounded inputs",)
    return Graph(model, inp.name, out.name, logits["name"] or out.name, logits["layer"], last.name if final else None,
                 in_q, input_source if in_q is not None else f"input quantizer ({absorbed.name})", notes)
