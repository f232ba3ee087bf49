"""Every activation-quantizer option the hls4ml bridge meets is computed exactly or refused in one line naming
the layer and the option (issue 20.1), and the main job finds that refusal before training (issue 20.10).

The refused inputs, in our own words: a hidden tanh or sigmoid quantized ``symmetric=1``, a linear activation
``quantized_bits(8, 0, symmetric=1)``, a ``quantized_relu`` with ``use_sigmoid``, a ``quantized_bits`` with
``qnoise_factor`` below 1, ``use_real_tanh``/``use_real_sigmoid`` (hls4ml's tables, not QKeras's grid), a
``relu_upper_bound`` that QKeras applies (``is_quantized_clip=False``, a QKeras-2 model's) inside the type's
range. A ReLU6 as the ``-auto`` presets make it (``quantized_relu(8, 3)``, bound 6, QKeras's default
``is_quantized_clip``) clips at the type's largest value in QKeras and in hls4ml: exact. The oracle for "the
option is what is refused": the same model and rules without that option pass the same pre-flight.
"""


import keras
import numpy as np
import pytest
from kit import assert_clean_error, run_cli

import qconvert
from qconvert.errors import ExportError
from qconvert.export import Hls4mlOptions, export, preflight
from qconvert.rules import loads_rules


def tagger(activation: str) -> keras.Model:
    """8 features → Dense 8 → the activation as its own layer → Dense 4 softmax (seeded weights)."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), name="features")
    x = keras.layers.Dense(8, name="fc")(inp)
    x = (keras.layers.ReLU(max_value=float(activation[4:]), name="act") if activation in ("relu6", "relu4")
         else keras.layers.Activation(activation, name="act"))(x)
    return keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="head")(x), name=f"{activation}_tagger")


def rules(function: str, quantizer: str) -> str:
    return ("version: 1\ndefaults:\n  kernel: quantized_bits(8, 2, alpha=1)\n  bias: quantized_bits(8, 2, alpha=1)\n"
            f"  activation: {{{function}: '{quantizer}'}}\n")


CASES = [  # (model's activation, rule key, the quantizer with the option, the same without it, the option)
    ("tanh", "tanh", "quantized_tanh(8, symmetric=1)", "quantized_tanh(8)", "symmetric"),
    ("sigmoid", "sigmoid", "quantized_sigmoid(8, symmetric=1)", "quantized_sigmoid(8)", "symmetric"),
    ("linear", "linear", "quantized_bits(8, 0, symmetric=1)", "quantized_bits(8, 0)", "symmetric"),
    ("linear", "linear", "quantized_bits(8, 0, qnoise_factor=0.5)", "quantized_bits(8, 0)", "qnoise_factor"),
    ("relu", "relu", "quantized_relu(4, 0, use_sigmoid=1)", "quantized_relu(4, 0)", "use_sigmoid"),
    ("tanh", "tanh", "quantized_tanh(8, use_real_tanh=1)", "quantized_tanh(8)", "use_real_tanh"),
    ("sigmoid", "sigmoid", "quantized_sigmoid(8, use_real_sigmoid=1)", "quantized_sigmoid(8)", "use_real_sigmoid"),
]


@pytest.mark.parametrize("activation, key, with_option, without, option", CASES)
def test_an_option_hls4ml_does_not_compute_is_refused_naming_layer_and_option(tmp_path, activation, key, with_option,
                                                                              without, option):
    model = tagger(activation)
    refused, _ = qconvert.convert(model, loads_rules(rules(key, with_option)))
    options = Hls4mlOptions(tmp_path / "prj")
    with pytest.raises(ExportError) as err:
        preflight(refused, options)
    message = str(err.value)
    assert "\n" not in message and "layer 'act'" in message and option in message, message
    with pytest.raises(ExportError, match=option):
        export(refused, options)  # the export refuses it the same way, before writing or compiling anything
    assert not (tmp_path / "prj").exists()
    accepted, _ = qconvert.convert(model, loads_rules(rules(key, without)))
    preflight(accepted, options)  # without the option: nothing to refuse


@pytest.mark.slow
def test_the_main_job_refuses_before_training(tmp_path):
    """``--epochs`` with ``--hls4ml`` and a refused option: one line, exit 2, no training, nothing written."""
    tagger("tanh").save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X_train=rng.normal(size=(256, 8)).astype("float32"), y_train=rng.integers(0, 4, 256))
    (tmp_path / "r.yaml").write_text(rules("tanh", "quantized_tanh(8, symmetric=1)"))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(tmp_path / "m.keras", "--rules", tmp_path / "r.yaml", "--data", tmp_path / "d.npz",
                     "--epochs", "50", "-o", tmp_path / "q.keras", "--hls4ml", tmp_path / "prj")
    assert_clean_error(result, "layer 'act'", "symmetric")
    assert "QAT" not in result.output and "accuracy on" not in result.output  # refused before any training
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no model, checkpoint or project left behind


def test_a_relu_bound_applied_by_the_live_quantizer_is_refused_though_its_config_omits_the_flag(tmp_path):
    """qkeras-v3's quantized_relu.get_config() leaves out is_quantized_clip; the object (a QKeras-2 model's, loaded)
    still clips at relu_upper_bound. The bridge reads the object, so the bound is refused, not silently dropped."""
    from qconvert.runtime import import_qkeras

    qkeras = import_qkeras()
    q = qkeras.quantized_relu(6, 3, relu_upper_bound=6.0, is_quantized_clip=False)
    assert "is_quantized_clip" not in q.get_config()
    assert float(np.asarray(q(np.array([7.5], "float32")))[0]) == 6.0  # QKeras clips at the bound
    inp = keras.Input((8,), name="features")
    x = qkeras.QActivation(q, name="act")(qkeras.QDense(8, kernel_quantizer="quantized_bits(6, 1, alpha=1)",
                                                         bias_quantizer="quantized_bits(6, 1, alpha=1)", name="fc")(inp))
    with pytest.raises(ExportError, match=r"layer 'act'.*relu_upper_bound=6 with is_quantized_clip=False"):
        preflight(keras.Model(inp, x), Hls4mlOptions(tmp_path / "prj"))


def test_a_relu_bound_qkeras_applies_is_refused_and_one_it_ignores_is_not():
    from qconvert.export.precision import uncomputed_parameter

    cfg = {"bits": 8, "integer": 3, "relu_upper_bound": 6.0}
    assert uncomputed_parameter("quantized_relu", cfg) is None  # is_quantized_clip (default True) wins in QKeras
    assert uncomputed_parameter("quantized_relu", {**cfg, "is_quantized_clip": True}) is None
    refused = uncomputed_parameter("quantized_relu", {**cfg, "is_quantized_clip": False})
    assert refused.startswith("relu_upper_bound=6 with is_quantized_clip=False (below 7.96875")
    assert uncomputed_parameter("quantized_relu", {**cfg, "integer": 2, "is_quantized_clip": False}) is None  # 3.97


@pytest.mark.slow
def test_relu6_of_the_auto_presets_is_bit_exact(tmp_path):
    """ReLU(max_value=6) at ``quantized_relu(8, 3)`` (what ``8bit-auto`` calibrates it to; the rewriter adds
    ``relu_upper_bound=6``): preflight passes and the logits are bit for bit on inputs that cross 6."""
    qmodel, _ = qconvert.convert(tagger("relu6"), loads_rules(rules("relu", "quantized_relu(8, 3)")))
    assert qmodel.get_layer("act").activation.get_config()["relu_upper_bound"] == 6.0
    x = np.random.default_rng(0).normal(0, 8, size=(1000, 8)).astype("float32")
    fc = keras.Model(qmodel.inputs, qmodel.get_layer("fc").output)
    assert np.mean(np.asarray(fc(x)) > 6) > 0.05  # the bound is crossed
    preflight(qmodel, Hls4mlOptions(tmp_path / "prj"))
    result = export(qmodel, Hls4mlOptions(tmp_path / "prj"), x=x)
    assert result.logits_exact_fraction == 1.0, result.limits


@pytest.mark.slow
def test_drawn_quantizer_options_are_bit_exact_or_refused_naming_one_of_them(tmp_path):
    """Property: 36 seeded draws (and 5 pinned) of activation and kernel quantizers with random options (symmetric,
    keep_negative, alpha, negative_slope, use_sigmoid, qnoise_factor, relu_upper_bound,
    use_real_tanh/sigmoid, use_stochastic_rounding). Each alone, in a one-block model, passes the pre-flight or is
    refused in one line naming its layer and one of its drawn options; every block that passes, chained into one
    model (one compile), is bit-exact layer by layer in hls4ml — a "cause unknown" fails."""
    from quantizer_draws import Block, block_rules, chain, draw, save_results, try_alone

    rng = np.random.default_rng(2026)
    bits6 = "quantized_bits(6, 1, alpha=1)"
    pinned = [  # options these 36 draws leave untried alone, or only beside another refused one
        Block("relu", "quantized_relu(4, 1, negative_slope=0.25)", bits6, ("negative_slope=0.25",)),
        Block("relu", "quantized_relu(6, 2, negative_slope=0.125)", bits6, ("negative_slope=0.125",)),
        Block("tanh", "quantized_tanh(6, use_real_tanh=1)", bits6, ("use_real_tanh=1",)),
        Block("sigmoid", "quantized_sigmoid(6, use_real_sigmoid=1)", bits6, ("use_real_sigmoid=1",)),
        Block("linear", "quantized_bits(6, 1)", "quantized_bits(6, 1, alpha='auto')", (), ("alpha='auto'",)),
    ]
    blocks = [draw(rng) for _ in range(36)] + pinned
    kept, refused, outcomes = try_alone(blocks, lambda qmodel: preflight(qmodel, Hls4mlOptions(tmp_path / "probe")),
                                        ExportError)
    assert len(kept) >= 8 and len(refused) >= 5, (kept, refused)  # both sides of the property are exercised
    model = chain([blocks[i] for i in kept], kept)
    qmodel, _ = qconvert.convert(model, loads_rules(block_rules([blocks[i] for i in kept], kept)))
    x = np.random.default_rng(0).normal(0, 2, size=(1000, 8)).astype("float32")
    result = export(qmodel, Hls4mlOptions(tmp_path / "prj"), x=x)
    assert result.exact_fraction == 1.0 and result.limits.startswith("none"), (result.limits, [blocks[i] for i in kept])
    assert all(result.layers_exact[f"a{i}"] == 1.0 for i in kept), result.layers_exact
    save_results("hls4ml", {"blocks": outcomes, "n_samples": result.n_samples, "exact_fraction": result.exact_fraction})
