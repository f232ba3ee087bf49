"""The RTL checked against Keras: Verilator's emulation of the written design on the same inputs.

The inputs are those of :mod:`..inputs` (given, or sampled in the input type's range), fed through the
model's own input quantizer when it has one (Keras rounds them the same way), else rounded to the
input type. The result is an :class:`~qconvert.export.verify.Agreement` like hls4ml's; where the logits
differ, da4ml's software interpreter of the traced logic finds the first layer that diverges.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ..inputs import check_inputs, round_to_type
from ..verify import Agreement, accuracy, argmax_fraction, exact_fraction, keras_layer_outputs, max_abs_diff

__all__ = ["emulate_rtl", "rtl_inputs", "too_wide"]

MAX_PORT_BITS = 32  # da4ml's emulation binder packs each value into an int32


def too_wide(sol: Any) -> str | None:
    """Why da4ml's emulation binder cannot carry the ports of ``sol`` (a da4ml solution), or None when it can."""
    widths = []
    for kifs in (sol.inp_kifs, sol.out_kifs):
        k, i, f = (int(np.max(a)) for a in kifs)
        widths.append(k + i + f)
    if max(widths) <= MAX_PORT_BITS:
        return None
    return (f"not emulated: the RTL's inputs are {widths[0]} and its outputs {widths[1]} bits wide; da4ml's "
            f"emulation binder carries at most {MAX_PORT_BITS} (narrow --input-precision or the last layer's quantizers)")


def rtl_inputs(qmodel: Any, traced: Any, x: Any = None, y: Any = None) -> tuple[np.ndarray, str]:
    """``(inputs as the RTL receives them, "given" | "sampled")``: ``x`` or sampled inputs, ``(n, *input_shape)``
    float64, through the model's input quantizer (``traced.input_quantizer``) or rounded to ``traced.input_type``.
    Raises :class:`~qconvert.errors.VerificationError` when ``x`` or ``y`` do not fit the model."""
    xs, source = check_inputs(qmodel, traced.input_type, x, y)
    if traced.input_quantizer is not None:
        import keras

        xq = np.asarray(keras.ops.convert_to_numpy(traced.input_quantizer(xs.astype("float32"))), dtype="float64")
    else:
        xq = round_to_type(xs, traced.input_type)
    return np.ascontiguousarray(xq), source


def _first_divergent(traced: Any, keras_out: dict[str, np.ndarray], xq: np.ndarray) -> str | None:
    """The first traced layer whose exact fixed-point value differs from Keras (da4ml's software interpreter)."""
    from da4ml.trace import FixedVariableArray, comb_trace

    names = [n for n in traced.layers if n in keras_out]
    if not names:
        return None
    arrays = [traced.layers[n].ravel() for n in names]
    flat = np.concatenate([np.asarray(a._vars) for a in arrays])
    probe = comb_trace(traced.inp, FixedVariableArray(flat, arrays[0].solver_options))
    values = probe.predict(xq.reshape(len(xq), -1))
    at = 0
    for n, a in zip(names, arrays):
        mine = values[:, at:at + a.size]
        if mine.shape != keras_out[n].shape or exact_fraction(mine, keras_out[n]) < 1.0:
            return n
        at += a.size
    return None


def emulate_rtl(qmodel: Any, traced: Any, rtl: Any, project: Path, top: str, jobs: int | None = None,
                x: Any = None, y: Any = None) -> tuple[Agreement, float, float]:
    """Compile the written RTL (da4ml's ``RTLModel`` ``rtl`` in ``project``) with Verilator, run it on the check's
    inputs and compare its outputs with the Keras logits (``traced.logits_layer``).

    Returns the agreement, the Verilator build's seconds and the emulation's seconds. Raises
    :class:`~.tools.ToolMissing` without Verilator, :class:`~qconvert.errors.VerificationError` when its build fails
    or ``x``/``y`` do not fit the model.
    """
    from .tools import compile_emulation

    xq, inputs = rtl_inputs(qmodel, traced, x, y)
    compile_seconds = compile_emulation(rtl, project, top, jobs)
    start = time.perf_counter()
    y_rtl = np.asarray(rtl.predict(xq.reshape(len(xq), -1)), dtype="float64")
    emulate_seconds = time.perf_counter() - start
    keras_out = keras_layer_outputs(qmodel, [*traced.layers, traced.logits_layer], xq)
    logits = keras_out[traced.logits_layer]
    exact = exact_fraction(y_rtl, logits)
    first = None if exact == 1.0 else _first_divergent(traced, keras_out, xq) or traced.logits_layer
    if exact == 1.0:
        limits = "none: the RTL computes the Keras logits bit for bit"
    else:
        limits = (f"logits differ from Keras from layer '{first}' on: the RTL computes exact fixed-point sums; "
                  "Keras computes in float32, which rounds sums wider than 24 bits")
    agreement = Agreement(
        target="rtl", n_samples=len(xq), inputs=inputs, logits_exact_fraction=exact,
        argmax_agreement=argmax_fraction(y_rtl, logits), max_abs_diff=max_abs_diff(y_rtl, logits),
        accuracy_keras=accuracy(logits, y) if y is not None else None,
        accuracy_target=accuracy(y_rtl, y) if y is not None else None, first_divergent_layer=first, limits=limits,
    )  # fmt: skip
    return agreement, compile_seconds, emulate_seconds
