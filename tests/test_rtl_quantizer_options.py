"""The RTL half of issue 20.1's property: every quantizer option the da4ml trace meets is traced bit-exactly or
refused in one line naming the layer and the option (or the quantizer, where no option makes it traceable).

The same seeded draws as test_hls4ml_quantizer_options.py (symmetric, keep_negative, alpha, negative_slope,
use_sigmoid, qnoise_factor, relu_upper_bound, use_real_tanh/sigmoid, use_stochastic_rounding), each alone in a
one-block model through ``trace_model``; the blocks it accepts, chained into one model, equal Keras bit for bit
layer by layer in da4ml's software interpreter (the logic the Verilog is written from; test_rtl.py checks the
Verilog against it with Verilator).
"""

import keras
import numpy as np
import pytest
from kit import keras_logits
from quantizer_draws import Block, block_rules, chain, draw, save_results, try_alone

import qconvert
from qconvert.export.rtl.trace import RtlRefusal, trace_model
from qconvert.rules import loads_rules

BITS6 = "quantized_bits(6, 1, alpha=1)"
PINNED = [  # what the draws leave untried alone: options the trace refuses, and two it computes
    Block("linear", "quantized_bits(6, 1, qnoise_factor=0.5)", BITS6, ("qnoise_factor=0.5",)),
    Block("linear", "quantized_bits(6, 1, symmetric=1)", BITS6, ("symmetric=1",)),
    Block("linear", "quantized_bits(5, 1, keep_negative=0)", BITS6, ("keep_negative=0",)),
    Block("relu", "quantized_relu(4, 1, negative_slope=0.25)", BITS6, ("negative_slope=0.25",)),
    Block("relu", "quantized_relu(6, 2, relu_upper_bound=2.0)", BITS6, ("relu_upper_bound=2.0",)),
    Block("linear", "quantized_bits(6, 1)", "quantized_bits(6, 1, alpha='auto_po2')", (), ("alpha='auto_po2'",)),
]


def _interpreted(inp, out, x: np.ndarray) -> np.ndarray:
    from da4ml.trace import comb_trace

    return comb_trace(inp, out.ravel()).predict(x.reshape(len(x), -1))


@pytest.mark.slow
def test_drawn_quantizer_options_trace_bit_exact_or_are_refused_naming_one_of_them():
    rng = np.random.default_rng(2026)
    blocks = [draw(rng) for _ in range(36)] + PINNED
    kept, refused, outcomes = try_alone(blocks, trace_model, RtlRefusal, whole_quantizer=True)
    assert len(kept) >= 8 and len(refused) >= 8, (kept, refused)  # both sides of the property are exercised
    first = len(blocks) - len(PINNED)  # symmetric and keep_negative traced; the others refused (a learned kernel
    assert [first + k in refused for k in range(len(PINNED))] == [True, False, False, True, True, True]  # scale too)
    qmodel, _ = qconvert.convert(chain([blocks[i] for i in kept], kept),
                                 loads_rules(block_rules([blocks[i] for i in kept], kept)))
    traced = trace_model(qmodel)
    x = np.random.default_rng(0).normal(0, 2, size=(1000, 8)).astype("float32")
    xq = np.asarray(keras.ops.convert_to_numpy(traced.input_quantizer(x)), dtype="float64")
    for i in kept:  # layer by layer: the first block that differs is the one to blame
        got = _interpreted(traced.inp, traced.layers[f"a{i}"], xq)
        assert np.array_equal(got, keras_logits(qmodel, f"a{i}", xq)), blocks[i]
    logits = _interpreted(traced.inp, traced.out, xq)
    assert np.array_equal(logits, keras_logits(qmodel, "head", xq))
    save_results("rtl", {"blocks": outcomes, "n_samples": len(xq),
                         "exact_fraction": float(np.mean(np.all(logits == keras_logits(qmodel, "head", xq), axis=1)))})
