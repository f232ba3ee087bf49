"""--target-ebops: the differentiable cost term, the exact count, and the main job trained to a target."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import qconvert
from qconvert.cli import cli
from qconvert.model.cost import model_cost
from qconvert.rules import as_ruleset, loads_rules
from qconvert.train.learned import build_search_model
from qconvert.train.target import target_batch_size

HERE = Path(__file__).resolve().parent
RULES = {"version": 1, "input": "quantized_bits(8, 2)",
         "defaults": {"kernel": "quantized_bits(6, 0, alpha=1)", "bias": "quantized_bits(6, 0, alpha=1)",
                      "activation": "quantized_relu(6, 2)"},
         "rules": [{"match": {"activation": "softmax"}, "keep": True}]}


def _mlp():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8,), name="features"), keras.layers.Dense(6, activation="relu", name="fc1"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    model.get_layer("fc1").kernel.assign(np.where(np.arange(48).reshape(8, 6) % 5 == 0, 0.0, model.get_layer("fc1").kernel))
    return model


def _cnn():
    keras.utils.set_random_seed(2)
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                             keras.layers.MaxPooling2D(2, name="pool"), keras.layers.Flatten(name="flat"),
                             keras.layers.Dense(3, activation="softmax", name="out")])


def _gradient(fn, variables):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        value = fn()
    return [np.asarray(g) if g is not None else np.zeros(v.shape) for g, v in zip(tape.gradient(value, variables), variables)]


def _relaxed(search):
    return sum(layer.relaxed_ebops() for layer in search.multiplies.values())


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the gradient is taken with tf.GradientTape")
def test_cost_gradient_matches_finite_differences():
    qmodel, _ = qconvert.convert(_mlp(), as_ruleset(RULES))
    search = build_search_model(qmodel, 1.0)
    formats = [search.quantizers[n].format for n in ("features_quant", "relu")]
    formats += [f for n in ("fc1", "out") for f in (search.multiplies[n].kernel_format, search.multiplies[n].bias_format)]
    for f, bits in zip(formats, [5.3, 3.7, 4.2, 4.6, 3.4, 5.2]):  # away from .5: the rounding holds
        f.bits_var.assign(bits)
    variables = [v for f in formats for v in (f.bits_var, f.integer_var)]
    grads = _gradient(lambda: _relaxed(search), variables)
    h = 1e-3
    for var, grad in zip(variables, grads):
        start = float(var.numpy())
        var.assign(start + h)
        up = float(_relaxed(search))
        var.assign(start - h)
        down = float(_relaxed(search))
        var.assign(start)
        assert float(grad) == pytest.approx((up - down) / (2 * h), rel=1e-3, abs=1e-3), var.path
    # the oracle: d EBOPs / d a'(input) = N_w(fc1) * w'(fc1), the non-zero kernel values of fc1 times their magnitude bits
    k, _ = search.multiplies["fc1"].exact_quantized()
    assert float(grads[0]) == pytest.approx(np.count_nonzero(k) * (4.2 - 1), rel=1e-5)
    assert float(grads[0]) > 0 and float(grads[2]) > 0  # fewer bits, fewer EBOPs


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the gradient is taken with tf.GradientTape")
def test_weights_are_pushed_toward_zero_in_proportion_to_their_cost():
    qmodel, _ = qconvert.convert(_mlp(), as_ruleset(RULES))
    search = build_search_model(qmodel, 1.0)
    fc1 = search.multiplies["fc1"]
    (grad,) = _gradient(lambda: fc1.relaxed_ebops(), [fc1.kernel])
    k, _ = fc1.exact_quantized()
    w = fc1.kernel.numpy()
    expected = (8 - 1) * (6 - 1) * np.sign(w) / np.abs(k[k != 0]).mean()  # a' * w' * sign(w) / mean |q|
    np.testing.assert_allclose(grad, expected, rtol=1e-5)
    # its value: every non-zero value at the layer's width, an upper bound of the exact count (each at its own bits)
    b = fc1.exact_quantized()[1]
    declared = np.count_nonzero(k) * (8 - 1) * (6 - 1) + np.count_nonzero(b) * (6 - 1)
    assert float(fc1.relaxed_ebops()) == pytest.approx(declared, rel=1e-6)
    assert fc1.exact_ebops() < declared


@pytest.mark.parametrize("make", [_mlp, _cnn])
def test_search_model_computes_and_counts_as_the_qkeras_model(make):
    qmodel, _ = qconvert.convert(make(), as_ruleset(RULES))
    search = build_search_model(qmodel, 3.0)
    x = np.random.default_rng(0).normal(0, 2, size=(64, *qmodel.inputs[0].shape[1:])).astype("float32")
    np.testing.assert_array_equal(search.model.predict(x, verbose=0), qmodel.predict(x, verbose=0))
    assert search.exact_ebops() == {name: c.ebops for name, c in model_cost(qmodel).items()}


def test_a_layer_it_cannot_learn_is_one_error():
    rules = dict(RULES, defaults=dict(RULES["defaults"], kernel="quantized_bits(6, 0, alpha='auto_po2')"))
    qmodel, _ = qconvert.convert(_mlp(), as_ruleset(rules))
    with pytest.raises(qconvert.ConversionError, match=r"plain fixed-point formats; layer .fc1. has kernel"):
        build_search_model(qmodel, 1.0)


def test_the_default_batch_gives_16_steps_per_epoch_within_16_to_512():
    for n in (100, 1077, 12000, 10**6):
        b = target_batch_size(n)
        assert 16 <= b <= 512 and b & (b - 1) == 0  # a power of two
        assert b == 16 or b == 512 or n // b >= 16 > n // (2 * b)


# --- the main job, trained to a target once for the tests below -------------------------------------------
TARGET = 8000


@pytest.fixture(scope="module")
def trained(digits_files, tmp_path_factory):
    model, data = digits_files
    out = tmp_path_factory.mktemp("target")
    result = CliRunner().invoke(cli, [str(model), "-r", "6bit-auto", "-o", str(out / "q.keras"), "--report",
                                      str(out / "r.json"), "--data", str(data), "--epochs", "24", "--target-ebops",
                                      str(TARGET), "--lr", "2e-3"])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "r.json").read_text()), result.output


def test_the_target_is_reached_with_accuracy_well_above_chance(trained):
    out, report, output = trained
    section = report["training"]["target_ebops"]
    final = qconvert.load_model(out / "q.keras")
    ebops = sum(c.ebops for c in model_cost(final).values())
    assert ebops <= TARGET and ebops == section["ebops"]["final"] == report["totals"]["ebops"]
    assert section["ebops"]["start"] > 15 * TARGET  # the 6-bit start is far above it
    assert report["accuracy"]["qat"] > 0.75  # ten classes: chance is 0.1
    assert len(section["history"]["beta"]) == section["search_epochs"] == 18
    assert "target EBOPs 8,000" in output and "learned precisions" in output
    assert "qat_warning" not in report["accuracy"]  # a run that trained well is not questioned
    # the QAT line names both phases: the bit-width search's lr (given), then the fine-tuning's epochs and lr
    assert "QAT: 18 epochs learning bit widths at lr 0.002, then fine-tuning 6 epochs" in " ".join(output.split())


@pytest.mark.parametrize("qat, ptq, n, warned", [
    (0.15, 0.67, 4000, True),  # the collapse a 2-epoch --target-ebops run on the jets gave, exit 0 and silent
    (0.6565, 0.6859, 4000, False),  # a low target costs accuracy: 2.9 pp is not a failed training
    (0.50, 0.65, 20, False),  # 20 rows: 15 pp is within three standard errors
])
def test_qat_far_below_ptq_is_questioned(qat, ptq, n, warned):
    from qconvert.pipeline.stages import qat_warning

    warning = qat_warning(qat, ptq, n, target=True)
    assert (warning is not None) == warned
    if warned:
        assert f"{100 * (ptq - qat):.1f} pp below" in warning and "--epochs" in warning


def test_the_rule_file_converts_the_fp32_model_again_to_the_same_ebops(trained, digits_files):
    out, report, _ = trained
    rules_file = out / "q.rules.yaml"
    assert report["training"]["target_ebops"]["rules_file"] == str(rules_file)
    saved = qconvert.load_model(out / "q.keras")
    again, _ = qconvert.convert(keras.saving.load_model(digits_files[0]), loads_rules(rules_file.read_text()))
    assert [type(layer).__name__ for layer in again.layers] == [type(layer).__name__ for layer in saved.layers]
    again.set_weights(saved.get_weights())
    x = np.load(digits_files[1])["X_test"]
    np.testing.assert_array_equal(again.predict(x, verbose=0), saved.predict(x, verbose=0))
    assert {n: c.ebops for n, c in model_cost(again).items()} == {n: c.ebops for n, c in model_cost(saved).items()}


@pytest.mark.slow
def test_hls4ml_logits_are_bit_identical(trained, digits_files, tmp_path):
    from qconvert.export import Hls4mlOptions, export

    out, _, _ = trained
    npz = np.load(digits_files[1])
    result = export(qconvert.load_model(out / "q.keras"), Hls4mlOptions(tmp_path / "prj"), x=npz["X_test"], y=npz["y_test"])
    assert result.logits_exact_fraction == 1.0, result.limits


@pytest.mark.parametrize("args, message", [
    (["--target-ebops", "1000"], "--target-ebops needs --data and --epochs"),
    (["--target-ebops", "1000", "--data", "DATA"], "--target-ebops needs --data and --epochs"),
    (["--target-ebops", "5", "--data", "DATA", "--epochs", "3"], "below 138"),
    (["--target-ebops", "1000", "--data", "DATA", "--epochs", "1"], "--epochs of at least 2"),
])
def test_bad_requests_exit_2_with_one_clear_line(digits_files, tmp_path, args, message):
    model, data = digits_files
    args = [str(data) if a == "DATA" else a for a in args]
    result = CliRunner().invoke(cli, [str(model), "-r", "6bit-auto", "-o", str(tmp_path / "q.keras"), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "q.keras").exists()


@pytest.mark.slow
def test_it_trains_to_the_target_on_jax(digits_files, tmp_path):
    pytest.importorskip("jax")
    model, data = digits_files
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-m", "qconvert", str(model), "-r", "6bit-auto", "-o", str(tmp_path / "q.keras"),
                           "--report", str(tmp_path / "r.json"), "--data", str(data), "--epochs", "4",
                           "--target-ebops", "20000", "--batch-size", "256", "--lr", "3e-3"],
                          capture_output=True, text=True, env=env, timeout=900, cwd=HERE.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["versions"]["backend"] == "jax"
    assert report["training"]["target_ebops"]["ebops"]["final"] <= 20000
