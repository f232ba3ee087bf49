"""The differentiable EBOPs term: fixed-point quantization with learnable bit widths, and its cost.

Effective bit operations (HGQ2's formula; Sun et al., "Gradient-based Automatic Mixed
Precision Quantization for Neural Networks On-Chip", arXiv:2405.00645) at the
layer's declared widths::

    EBOPs(layer) = uses * (N_w * a' * w'  +  N_b * b')

with ``N_w`` and ``N_b`` the non-zero quantized kernel and bias values, ``a'`` the
magnitude bits (sign bit excluded) of the layer's input quantizer, ``w'`` and ``b'``
those of its kernel and bias quantizers, and ``uses`` the output positions each
weight serves (1 for a Dense on vectors; the output pixels of a convolution). This
is an upper bound of :mod:`qconvert.model.cost`'s exact count, which takes each
value at its own bits (:func:`~qconvert.model.cost.value_bits`, at most ``w'``): the
training term is smooth in the widths, and the β controller steers by the exact
count.

During the search every width is a continuous variable. The quantizer uses it
rounded, with a straight-through gradient (:func:`ste_round`), and rounds values
to ``2**-f`` as HGQ does, ``q = x + stop_gradient(round(x * 2**f) - x * 2**f) * 2**-f``,
so that ``dq/df = -ln 2 * (q - x)``: the loss sees how much a coarser grid would
move each value (HGQ's surrogate gradient for the fractional bits). The cost term
(:func:`layer_ebops`) takes the widths unrounded, so it is bilinear in them and its
gradient is the exact derivative of a smooth function. The non-zero count has the
exact count as its value and the gradient of an L1 norm (:func:`relaxed_count`):
every weight is pushed toward zero in proportion to the EBOPs it costs, and stays
there unless the loss pulls it back harder.
"""

from __future__ import annotations

import math
from typing import Any

from keras import ops

__all__ = [
    "FLOAT_MAGNITUDE",
    "fixed_point",
    "layer_ebops",
    "magnitude_bits",
    "relaxed_count",
    "ste_round",
]

#: What a float (unquantized) input costs per multiply, as :mod:`qconvert.model.cost` counts it.
FLOAT_MAGNITUDE = 32.0
_LN2 = math.log(2.0)


def ste_round(x: Any) -> Any:
    """``round(x)`` (half to even, as QKeras rounds) with the identity as gradient (straight-through)."""
    return x + ops.stop_gradient(ops.round(x) - x)


def fixed_point(x: Any, integer: Any, fractional: Any, signed: bool) -> Any:
    """``x`` on the fixed-point grid of QKeras's ``quantized_bits`` / ``quantized_relu``.

    Signed (``quantized_bits(B, I)``, ``fractional = B - 1 - I``): values ``n * 2**-fractional`` in
    ``[-2**I, 2**I - 2**-fractional]``. Unsigned (``quantized_relu(B, I)``, ``fractional = B - I``):
    in ``[0, 2**I - 2**-fractional]``; negative inputs give 0. Rounding is half to even.

    ``integer`` and ``fractional`` are scalars, already integral in value (:func:`ste_round`).
    Gradients: 1 for ``x`` inside the range and 0 outside; through the bounds for ``integer`` and
    ``fractional``; ``-ln 2 * (q - x)`` for ``fractional`` from the rounding (see the module docstring).
    The forward values equal QKeras's (``alpha=1``, ``symmetric=0``) bit for bit.
    """
    scale = ops.power(2.0, fractional)
    top = ops.power(2.0, integer)
    hi = top - 1.0 / scale
    lo = -top if signed else ops.zeros_like(top)
    clipped = ops.minimum(ops.maximum(x, lo), hi)
    scaled = clipped * scale
    return (scaled + ops.stop_gradient(ops.round(scaled) - scaled)) / scale


def magnitude_bits(bits: Any, signed: bool) -> Any:
    """Bits without the sign bit: the most one value costs in EBOPs (``quantized_bits(6, 0)`` → 5)."""
    return bits - 1.0 if signed else bits


def relaxed_count(weights: Any, quantized: Any) -> Any:
    """The number of non-zero values of ``quantized`` (the value), with the gradient of an L1 norm.

    ``weights`` are the float values ``quantized`` was made from. Value: ``N = count(quantized != 0)``,
    exactly. Gradient with respect to ``weights``: ``sign(w) / m``, with ``m`` the mean magnitude of the
    non-zero quantized values (held constant; at least the mean ``|w|``), i.e. the gradient of
    ``sum(|w|) / m``, which equals ``N`` when every non-zero value has the mean magnitude. No gradient
    reaches the bit widths.
    """
    nonzero = ops.cast(ops.not_equal(quantized, 0.0), "float32")
    count = ops.stop_gradient(ops.sum(nonzero))
    mean = ops.stop_gradient(ops.maximum(ops.sum(ops.abs(quantized)) / ops.maximum(count, 1.0),
                                         ops.mean(ops.abs(weights)) + 1e-6))  # all zero: the float magnitudes
    l1 = ops.sum(ops.abs(weights)) / mean
    return count + l1 - ops.stop_gradient(l1)


def layer_ebops(uses: float, kernel_count: Any, input_magnitude: Any, kernel_magnitude: Any,
                bias_count: Any = 0.0, bias_magnitude: Any = 0.0) -> Any:
    """EBOPs of one multiply layer: ``uses * (N_w * a' * w' + N_b * b')`` (module docstring).

    Works on tensors (the differentiable term) and on plain numbers (the exact count: ``N_w * w'`` and
    ``N_b * b'`` then the sums of the values' own bits, with ``w' = b' = 1``).
    """
    return uses * (kernel_count * input_magnitude * kernel_magnitude + bias_count * bias_magnitude)
