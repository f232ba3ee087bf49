"""hls4ml's QONNX frontend on the exported graph: compiled, emulated, compared with Keras.

The written ``.onnx`` goes through the preparation hls4ml documents for QONNX input (qonnx's ``cleanup_model``,
``ConvertToChannelsLastAndClean``, ``GemmToMatMul``, ``cleanup_model`` again), then
``hls4ml.converters.convert_from_onnx_model`` with hls4ml's own configuration (``config_from_onnx_model``,
every layer traced) — hls4ml derives the types from the ``Quant`` nodes itself. One setting is qconvert's:
the input type is the graph's input ``Quant`` type, rounding half to even and saturating (hls4ml's default
input ``fixed<16,6>`` truncates and wraps), and the emulation is given the inputs as that ``Quant`` makes them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ExportError
from ..verify import Agreement

__all__ = ["compile_and_compare", "prepare"]


def prepare(path: Path) -> Any:
    """The exported graph as hls4ml's QONNX frontend takes it (a qonnx ``ModelWrapper``, channels-last)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path)))
    model = model.transform(ConvertToChannelsLastAndClean()).transform(GemmToMatMul())
    return cleanup_model(model)


def _input_precision(model: Any) -> str | None:
    """The hls4ml type of the graph's input Quant (the first node reading the input), if it has one."""
    name = model.graph.input[0].name
    node = next((n for n in model.graph.node if name in n.input), None)
    if node is None or node.op_type != "Quant":
        return None
    scale, bits = float(model.get_initializer(node.input[1])), int(model.get_initializer(node.input[3]))
    signed = next((a.i for a in node.attribute if a.name == "signed"), 1)
    integer = bits + int(np.log2(scale))
    return f"{'fixed' if signed else 'ufixed'}<{bits},{integer},RND_CONV,SAT>"


def compile_and_compare(path: Path, out_dir: Path, x_in: np.ndarray, keras_logits: np.ndarray, keras_out: np.ndarray,
                        labels: np.ndarray | None, inputs: str, backend: str = "Vitis") -> dict[str, Any]:
    """Compile the graph at ``path`` with hls4ml's QONNX frontend in ``out_dir`` and run it on ``x_in`` (the inputs
    as the graph's input Quant makes them); its logits (before a final softmax) and outputs against Keras's.

    Returns the agreement fields (target ``hls4ml``; the first divergent layer is hls4ml's logits layer when they
    differ: its layers are named after the cleaned graph's nodes, not Keras's) with the project folder, the input
    type and the seconds.
    Raises :class:`ExportError` when hls4ml cannot convert or compile the graph.
    """
    import hls4ml

    from ..emulate import emulate as _trace
    from ..quiet import quiet as _quiet

    start = time.perf_counter()
    model = prepare(path)
    try:
        with _quiet():
            config = hls4ml.utils.config.config_from_onnx_model(model, granularity="name", backend=backend)
            for layer in config["LayerName"].values():
                layer["Trace"] = True
            in_prec = _input_precision(model)
            if in_prec is not None:
                config["LayerName"][model.graph.input[0].name]["Precision"] = {"result": in_prec}
            hls_model = hls4ml.converters.convert_from_onnx_model(
                model, output_dir=str(out_dir), backend=backend, hls_config=config, io_type="io_parallel")
    except Exception as exc:
        raise ExportError(f"hls4ml's QONNX frontend cannot convert {path}: {type(exc).__name__}: {exc}") from None
    ys, trace = _trace(hls_model, np.ascontiguousarray(x_in), Path(out_dir), "io_parallel")
    y = ys[0]
    layers = list(hls_model.get_layers())
    softmax = next((layer for layer in reversed(layers) if layer.class_name == "Softmax"), None)
    logits_name = softmax.get_input_node().name if softmax is not None else layers[-1].name
    logits = trace.get(logits_name, y)
    exact = float(np.mean(np.all(logits == keras_logits, axis=1)))
    limits = ("none: the logits are bit-identical to Keras's" if exact == 1.0 else
              f"logits differ from Keras ({1 - exact:.1%} of samples, max |diff| {np.max(np.abs(logits - keras_logits)):.3g})")
    if softmax is not None:
        limits += (f"; hls4ml's softmax '{softmax.name}' is a table lookup with the frontend's default tables: outputs "
                   f"pick Keras's class for {np.mean(np.argmax(y, 1) == np.argmax(keras_out, 1)):.1%} of samples")
    out = Agreement(
        "hls4ml", n_samples=len(x_in), inputs=inputs, logits_exact_fraction=exact,
        argmax_agreement=float(np.mean(np.argmax(y, axis=1) == np.argmax(keras_out, axis=1))),
        max_abs_diff=float(np.max(np.abs(y - keras_out))),
        accuracy_keras=None if labels is None else float(np.mean(np.argmax(keras_out, axis=1) == labels)),
        accuracy_target=None if labels is None else float(np.mean(np.argmax(y, axis=1) == labels)),
        first_divergent_layer=None if exact == 1.0 else logits_name, limits=limits,
        exact_fraction=float(np.mean(np.all(y == keras_out, axis=1))),
    ).to_dict()
    return {**out, "project_dir": str(out_dir), "logits_layer": logits_name, "input_precision": in_prec,
            "seconds": round(time.perf_counter() - start, 1)}
