"""The exported graph run by qonnx's ``execute_onnx`` and compared with Keras, bit for bit.

The graph runs on the validation inputs (else sampled ones) with its full execution context kept, so
every tensor tagged with a Keras layer (:func:`.graph.layer_tags`) is compared with that layer's Keras
output: the first one that differs is the first divergent layer. The figures are the agreement fields
every export target reports (:class:`~qconvert.export.verify.Agreement`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..verify import exact_fraction

__all__ = ["Run", "compare", "execute", "limits"]


class Run(dict):
    """qonnx's full execution context of one batch: tensor name → array."""


def execute(model: Any, x: np.ndarray) -> Run:
    """``model`` (a cleaned QONNX ModelProto, batch 1) run by qonnx on the batch ``x`` (float32); every tensor."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    wrapper = ModelWrapper(copy.deepcopy(model))
    wrapper = wrapper.transform(ChangeBatchSize(len(x))).transform(InferShapes())
    name = wrapper.graph.input[0].name
    return Run(execute_onnx(wrapper, {name: np.ascontiguousarray(x, dtype=np.float32)}, return_full_exec_context=True))


def _rows(a: np.ndarray, first: bool = False) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if first and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return a.reshape(len(a), -1)


def compare(qmodel: Any, run: Run, tags: dict[str, tuple[str, bool]], order: list[str], x_keras: np.ndarray,
            output: str, logits_layer: str | None) -> dict[str, Any]:
    """The graph's tensors against Keras: per layer (in ``order``) the fraction of samples bit-identical, the
    first divergent layer, and the outputs' and logits' figures (``logits_layer``: the layer before a final float
    activation, or None when the output is the logits)."""
    from ...model.graph import graph_of
    from ..verify import keras_layer_outputs

    names = [n for n in order if n in tags]
    outputs = graph_of(qmodel).outputs  # one output: the export refuses several
    output_layer = (outputs[0] if isinstance(outputs, list) else outputs).layer
    keras_out = keras_layer_outputs(qmodel, [*names, output_layer], x_keras)
    y_keras = keras_out[output_layer]
    layers_exact, rel_diff = {}, {}
    for n in names:
        tensor, first = tags[n]
        got, want = _rows(run[tensor], first), keras_out[n]
        if got.shape == want.shape:
            layers_exact[n] = exact_fraction(got, want)
            if layers_exact[n] < 1.0:
                rel_diff[n] = float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 2.0**-126)))
    y_graph = _rows(run[output])
    exact = exact_fraction(y_graph, y_keras)
    return {
        "y_keras": y_keras, "y_graph": y_graph, "layers_exact": layers_exact, "rel_diff": rel_diff,
        "first_divergent_layer": next((n for n, f in layers_exact.items() if f < 1.0), None),
        "exact_fraction": exact,
        "logits_exact_fraction": layers_exact.get(logits_layer, exact) if logits_layer else exact,
        "keras_logits": keras_out.get(logits_layer, y_keras) if logits_layer else y_keras,
        "max_abs_diff": float(np.max(np.abs(y_graph - y_keras))) if y_keras.size else 0.0,
        "argmax_agreement": float(np.mean(np.argmax(y_graph, axis=1) == np.argmax(y_keras, axis=1))),
    }


def limits(qmodel: Any, model: Any, run: Run, got: dict[str, Any], final_activation: str | None) -> str:
    """What keeps qonnx's execution (``run`` of ``model``) from Keras, in words (``got``: :func:`compare`'s
    figures); it starts with "none" only when the logits are bit-identical. The first divergent layer is named
    with its reason; the layers after it that differ follow from it."""
    diverged = [n for n, f in got["layers_exact"].items() if f < 1.0 and n != final_activation]
    parts = []
    if diverged:
        layer = qmodel.get_layer(diverged[0])
        what = (f"layer '{layer.name}' ({type(layer).__name__}) differs from Keras for "
                f"{1 - got['layers_exact'][layer.name]:.1%} of samples: {_why(layer, model, run)}")
        later = f" ({len(diverged) - 1} layer(s) after it differ as a consequence)" if len(diverged) > 1 else ""
    if got["logits_exact_fraction"] == 1.0:
        parts.append("none: the logits are bit-identical to Keras's")
        if diverged:
            parts.append(f"{what}{later}; a quantizer after it absorbs the difference on these inputs")
    elif diverged:
        parts.append(f"logits differ from Keras: {what}{later}")
    else:
        parts.append("logits differ from Keras; no tagged layer differs, so the first divergent layer is unknown")
    if final_activation is not None and got["exact_fraction"] < 1.0:
        parts.append(f"the final '{final_activation}' stays float (computed by onnxruntime, not TensorFlow): outputs "
                     f"bit-identical for {got['exact_fraction']:.1%} of samples, max |diff| {got['max_abs_diff']:.2g}")
    return "; ".join(parts)


def frac_bits(a: Any) -> int:
    """The fewest fraction bits that hold every value of ``a`` exactly (negative for grids coarser than 1)."""
    a = np.abs(np.asarray(a, dtype=np.float64)).ravel()
    a = a[(a > 0) & np.isfinite(a)]
    if not a.size:
        return 0
    mantissa, exponent = np.frexp(a)  # a = m·2^e, m in [0.5, 1): m·2^53 is an integer
    ints = (mantissa * 2.0**53).astype(np.int64)
    trailing = np.log2((ints & -ints).astype(np.float64)).astype(int)
    return int(np.max(53 - exponent - trailing))


def sum_bits(model: Any, run: Run, layer: str) -> int | None:
    """The significant bits the exact partial sums of ``layer``'s products need (at most; None: it has none):
    fraction bits of its inputs and weights, and the largest ``fan-in × max|x| × max|w|``. Float32 holds them
    exactly up to 24."""
    from .graph import layer_nodes

    bits = None
    for node in layer_nodes(model, layer):
        if node.op_type not in ("MatMul", "Conv", "ConvTranspose"):
            continue
        x, w = np.asarray(run[node.input[0]]), np.asarray(run[node.input[1]])
        fan_in = w.shape[0] if node.op_type == "MatMul" else w.size // w.shape[0 if node.op_type == "Conv" else 1]
        bound = fan_in * float(np.max(np.abs(x), initial=0.0)) * float(np.max(np.abs(w), initial=0.0))
        if bound > 0:
            need = int(np.ceil(np.log2(bound))) + frac_bits(x) + frac_bits(w)
            bits = max(bits or 0, need)
    return bits


def _why(layer: Any, model: Any, run: Run) -> str:
    """The known reason a layer's output differs from Keras's, from what it is and what its sums need."""
    cls = type(layer).__name__
    fn = getattr(getattr(layer, "activation", None), "__name__", "")
    if cls in ("Activation", "Softmax") and fn not in ("relu", "linear"):
        return f"a float '{fn or 'softmax'}', computed by onnxruntime, not TensorFlow, may differ in the last bit"
    if cls == "BatchNormalization":
        return "a float BatchNormalization (the rules did not fold it): its float32 products may round differently"
    bits = sum_bits(model, run, layer.name)
    if bits is not None and bits > 24:
        return (f"float32 rounding: its exact partial sums need up to {bits} significant bits, more than float32's 24, "
                "so TensorFlow and onnxruntime round them, in different orders (fewer input bits, e.g. an input "
                "quantizer or a narrower quantizer before it, make them exact)")
    return "cause unknown (its sums fit float32 exactly; please report it)"
