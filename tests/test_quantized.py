"""The cost model's NumPy ``quantized_bits`` gives, bit for bit, what QKeras's quantizer gives."""

import itertools

import numpy as np
import pytest
from qkeras.quantizers import quantized_bits, quantized_relu, ternary

from qconvert.model.quantized import fixed_quantized_bits, quantized_values


def _inputs(bits: int, integer: int) -> np.ndarray:
    """Random values at several scales, every rounding boundary of the grid (ties included), the clipping
    edges, zeros, tiny and huge values."""
    rng = np.random.default_rng(bits * 100 + integer)
    step = 2.0 ** (integer - max(bits - 1, 0))
    grid = np.arange(-2 ** bits - 2, 2 ** bits + 2) * step
    values = [
        rng.normal(0, 1, 500), rng.normal(0, 0.05, 200), rng.normal(0, 2.0 ** integer * 3, 200),
        grid, grid + step / 2, grid - step / 2, grid + step / 4,
        [0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30, 3.0e38, np.nextafter(np.float32(step / 2), np.float32(0))],
    ]  # fmt: skip
    return np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in values]).astype(np.float32)


SETTINGS = list(itertools.product(
    [1, 2, 4, 6, 16],  # bits
    [0, 3, -2],  # integer
    [0, 1],  # symmetric
    [True, False],  # keep_negative
    [None, 1, 0.375],  # alpha
))  # fmt: skip


@pytest.mark.parametrize("bits,integer,symmetric,keep_negative,alpha", SETTINGS)
def test_numpy_quantized_bits_equals_qkeras(bits, integer, symmetric, keep_negative, alpha):
    q = quantized_bits(bits, integer, symmetric=symmetric, keep_negative=keep_negative, alpha=alpha)
    x = _inputs(bits, integer)
    ours, theirs = fixed_quantized_bits(q, x), np.asarray(q(x))
    assert ours is not None and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)
    assert np.count_nonzero(ours) == np.count_nonzero(theirs)


@pytest.mark.parametrize("qnoise_factor,use_ste", [(0.3, True), (0.3, False), (1.0, False), (0.0, True)])
def test_noise_factor_and_straight_through_forms(qnoise_factor, use_ste):
    q = quantized_bits(6, 1, alpha=1, qnoise_factor=qnoise_factor, use_ste=use_ste)
    x = _inputs(6, 1)
    np.testing.assert_array_equal(fixed_quantized_bits(q, x), np.asarray(q(x)))


@pytest.mark.parametrize("quantizer", [
    quantized_bits(6, 0, alpha="auto"), quantized_bits(6, 0, alpha="auto_po2"),
    quantized_bits(6, 0, use_stochastic_rounding=True), quantized_relu(6), ternary(alpha=1),
])  # fmt: skip
def test_other_quantizers_are_called(quantizer):
    x = _inputs(6, 0)
    assert fixed_quantized_bits(quantizer, x) is None
    values = quantized_values([("w", x, quantizer)])["w"]
    if not getattr(quantizer, "use_stochastic_rounding", False):
        np.testing.assert_array_equal(values, np.asarray(quantizer(x)))


def test_no_quantizer_gives_the_values():
    x = _inputs(4, 0)
    np.testing.assert_array_equal(quantized_values([("w", x, None), ("b", x, "linear")])["w"], x)
    np.testing.assert_array_equal(quantized_values([("b", x, "linear")])["b"], x)
