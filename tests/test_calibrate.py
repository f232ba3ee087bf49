"""Calibration: ``integer: auto`` resolved from weights and data, saturation figures, the CLI around them."""

import json
import math

import keras
import numpy as np
import pytest
from conftest import RULES
from kit import run_cli as run

import qconvert
from qconvert.errors import DataError, RuleError
from qconvert.model.calibrate import PERCENTILE, integer_bits_for
from qconvert.quantizers import parse_quantizer, spec_from_mapping


def quantizer_config(model: keras.Model, layer: str, key: str = "activation") -> dict:
    """The config of a Q-layer's quantizer (QActivation keeps the object, Q-layers a serialized dict)."""
    value = model.get_layer(layer).get_config()[key]
    return value["config"] if isinstance(value, dict) else value.get_config()


def mlp(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="fc1"),
                             keras.layers.Dense(4, activation="softmax", name="out")], name="mlp")


def layer_configs(model: keras.Model) -> list[str]:
    return [json.dumps(keras.saving.serialize_keras_object(layer), sort_keys=True, default=str) for layer in model.layers]


def identity_relu(scale: float) -> keras.Model:
    """Dense(4) with kernel scale·I and no bias, then ReLU: the relu sees scale · x exactly."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, use_bias=False, name="fc"),
                              keras.layers.ReLU(name="act")], name="ident")
    model.get_layer("fc").set_weights([np.eye(4, dtype="float32") * scale])
    return model


AUTO_RULES = """
version: 1
defaults:
  kernel: quantized_bits(6, auto, alpha=1)
  bias: {quantizer: quantized_bits, bits: 6, integer: auto, alpha: 1}
  activation: quantized_relu(6, auto)
"""


# --- the spec ----------------------------------------------------------------------------------------
def test_auto_in_both_spellings_round_trips_through_text():
    text = parse_quantizer("quantized_bits(6, auto, alpha=1)")
    mapping = spec_from_mapping({"quantizer": "quantized_bits", "bits": 6, "integer": "auto", "alpha": 1})
    assert text == mapping and text.is_auto
    assert str(text) == "quantized_bits(6,auto,alpha=1)"
    assert parse_quantizer(str(text)) == text
    relu = parse_quantizer("quantized_relu(4, auto)", "activation")
    assert relu.is_auto and not parse_quantizer("quantized_relu(4, 2)", "activation").is_auto
    # alpha='auto' is QKeras's own learned scale, not calibration, and stays a quoted string
    assert str(parse_quantizer("quantized_bits(6, 0, alpha='auto')")) == "quantized_bits(6,0,alpha='auto')"


@pytest.mark.parametrize("text", ["quantized_bits(auto, 0)", "quantized_hswish(6, auto)", "quantized_po2(auto)"])
def test_auto_only_where_calibration_resolves_it(text, write_rules):
    path = write_rules(f"version: 1\ndefaults:\n  kernel: {text}\n")
    with pytest.raises(RuleError) as err:
        qconvert.load_rules(path)
    assert ":3: defaults.kernel:" in str(err.value)


def test_calibrated_presets_pass_rules_check():
    res = run("rules", "check", RULES / "6bit-auto.yaml", RULES / "8bit-auto.yaml")
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("value, bits, signed, expected", [
    (0.3, 6, True, 0), (0.98, 6, True, 0),  # quantized_bits(6, 0) rounds up to 1 - 2^-5 + 2^-6 = 0.984375 without clipping
    (1.0, 6, True, 1),  # 1.0 itself would clip to 0.96875
    (2.5, 6, True, 2), (100.0, 6, True, 5), (100.0, 6, False, 6), (0.0, 6, False, 0), (6.0, 8, False, 3),
])
def test_integer_bits_hold_the_statistic_within_the_bit_width(value, bits, signed, expected):
    spec = parse_quantizer(f"quantized_bits({bits}, auto)") if signed else parse_quantizer(f"quantized_relu({bits}, auto)", "activation")
    assert integer_bits_for(value, spec) == expected


# --- resolving -------------------------------------------------------------------------------------
def test_weights_resolve_from_their_range_without_data(write_rules):
    model = mlp()
    kernel = np.zeros((8, 16), "float32")
    kernel[0, 0], kernel[1, 1] = 2.5, -0.7  # max |w| = 2.5 → integer 2
    model.get_layer("fc1").set_weights([kernel, np.full(16, 0.2, "float32")])
    rules = write_rules("version: 1\ndefaults:\n  kernel: quantized_bits(6, auto, alpha=1)\n"
                        "  bias: quantized_bits(6, auto, alpha=1)\n  activation: quantized_relu(6)\n")
    qmodel, report = qconvert.convert(model, rules)
    assert quantizer_config(qmodel, "fc1", "kernel_quantizer")["integer"] == 2
    assert quantizer_config(qmodel, "fc1", "bias_quantizer")["integer"] == 0
    entry = next(e for e in report.sections["calibration"]["entries"] if e["layer"] == "fc1" and e["role"] == "kernel")
    assert entry == entry | {"resolved": True, "integer": 2, "statistic": "max|w|", "value": 2.5, "clipped": 0.0}
    row = next(r for r in report.layers if r.name == "fc1")
    assert row.kernel == "quantized_bits(6,2,alpha=1)"  # the table shows the resolved number


def test_activation_auto_without_data_names_the_layer():
    with pytest.raises(DataError, match=r"layer 'relu': quantized_relu.*needs calibration data"):
        qconvert.convert(mlp(), qconvert.loads_rules(AUTO_RULES))


def test_activation_resolves_from_the_percentile_of_what_it_sees():
    model = identity_relu(3.0)
    x = np.random.default_rng(0).uniform(0, 1, size=(500, 4)).astype("float32")  # relu sees 3x in [0, 3)
    qmodel, report = qconvert.convert(model, qconvert.loads_rules(AUTO_RULES), calibration_data=x)
    expected = math.ceil(math.log2(np.percentile(3.0 * x, PERCENTILE)))
    assert expected == 2
    assert quantizer_config(qmodel, "act")["integer"] == 2
    assert report.sections["calibration"]["rows"] == 500


def test_clipped_fraction_is_what_the_quantizer_cannot_hold(write_rules):
    model = identity_relu(4.0)
    x = np.random.default_rng(1).uniform(0, 1, size=(1000, 4)).astype("float32")  # relu sees [0, 4)
    rules = write_rules("version: 1\ndefaults:\n  kernel: quantized_bits(8, 3)\n  activation: quantized_relu(6, 1)\n")
    _, report = qconvert.convert(model, rules, calibration_data=x)
    entry = next(e for e in report.sections["calibration"]["entries"] if e["layer"] == "act")
    hi = 2.0 - 2.0 ** (1 - 6) / 2  # quantized_relu(6, 1): steps of 2^-5 up to 2 - 2^-5; above 2 - 2^-6 clips
    assert entry["clipped"] == pytest.approx(float(np.mean(4.0 * x > hi)))  # about half of [0, 4)
    # p99.9 of what it sees is about 3.996, above 4 - 2^-5 (where quantized_relu(6, 2) starts to clip): 3 bits
    assert np.percentile(4.0 * x, PERCENTILE) > 4 - 2.0 ** -5
    assert entry["needs"] == 3 and entry["saturates"]
    assert any("act (activation)" in w and "integer 3" in w for w in report.sections["calibration"]["warnings"])


def test_one_input_feature_out_of_range_is_named_even_when_the_others_hide_it(write_rules):
    model = keras.Sequential([keras.Input((50,)), keras.layers.Dense(2, name="fc")])
    x = np.random.default_rng(2).uniform(-1, 1, size=(400, 50)).astype("float32")
    x[:, 7] *= 1000  # feature 7 has its own range: 2 % of all values, 100 % of its own
    rules = write_rules("version: 1\ninput: quantized_bits(16, 0)\ndefaults:\n  kernel: quantized_bits(8, 3)\n")
    _, report = qconvert.convert(model, rules, calibration_data=x)
    entry = next(e for e in report.sections["calibration"]["entries"] if e["role"] == "input")
    assert entry["worst_channel"] == 7 and entry["worst_clipped"] > 0.99 and entry["clipped"] < 0.03
    assert any("channel 7" in w for w in report.sections["calibration"]["warnings"])


def test_unsigned_weight_quantizer_counts_the_negative_weights_it_zeroes(write_rules):
    model = mlp()
    rules = write_rules("version: 1\ndefaults:\n  kernel: quantized_bits(6, auto, keep_negative=False, alpha=1)\n")
    _, report = qconvert.convert(model, rules)
    entry = next(e for e in report.sections["calibration"]["entries"] if e["layer"] == "fc1" and e["role"] == "kernel")
    negative = float(np.mean(model.get_layer("fc1").get_weights()[0] < -2.0 ** -6 / 2))
    assert entry["clipped"] == pytest.approx(negative) and negative > 0.3


def test_a_shared_activation_is_calibrated_on_every_call_and_a_nested_one_is_reached():
    inp = keras.Input((4,))
    relu = keras.layers.ReLU(name="shared")
    first = keras.layers.Dense(4, name="d1", kernel_initializer="identity", use_bias=False)
    second = keras.layers.Dense(4, name="d2", kernel_initializer=keras.initializers.Identity(6.0), use_bias=False)
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="di", kernel_initializer=keras.initializers.Identity(3.0),
                                                                     use_bias=False), keras.layers.ReLU(name="ri")], name="inner")
    out = keras.layers.Concatenate()([relu(first(inp)), relu(second(inp)), inner(inp)])
    model = keras.Model(inp, out)
    x = np.random.default_rng(0).uniform(0, 1, size=(300, 4)).astype("float32")
    qmodel, _report = qconvert.convert(model, qconvert.loads_rules(AUTO_RULES), calibration_data=x)
    # the second call sees 6x in [0, 6): integer 3, not the first call's 1
    assert quantizer_config(qmodel, "shared")["integer"] == 3
    # inside the nested model: 3x in [0, 3) → 2
    assert quantizer_config(qmodel.get_layer("inner"), "ri")["integer"] == 2


def test_relu6_saturation_is_said_without_data_and_auto_resolves_from_the_bound():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name="fc"), keras.layers.ReLU(max_value=6, name="r6")])
    _, report = qconvert.convert(model, RULES / "8bit.yaml")  # quantized_relu(8, 0, relu_upper_bound=6): [0, 1)
    [warning] = [w for w in report.sections["calibration"]["warnings"] if w.startswith("r6")]
    assert "holds [0, 1)" in warning and "up to 6" in warning and "integer 3" in warning
    rules = qconvert.loads_rules("version: 1\ndefaults:\n  kernel: quantized_bits(8, 0)\n  activation: quantized_relu(8, auto)\n")
    qmodel, report = qconvert.convert(model, rules)  # no data needed: the bound is known
    config = quantizer_config(qmodel, "r6")
    assert (config["integer"], config["relu_upper_bound"]) == (3, 6.0)
    assert not report.sections["calibration"]["warnings"]


def test_resolved_model_round_trips_and_converting_again_changes_nothing(tmp_path):
    from qconvert.demo import digits_dataset, digits_mlp

    data = digits_dataset()
    model = digits_mlp(0)
    qmodel, report = qconvert.convert(model, RULES / "6bit-auto.yaml", calibration_data=data.x_train[:512])
    assert report.sections["calibration"]["resolved"] > 0
    path = tmp_path / "q.keras"
    qmodel.save(path)
    loaded = keras.saving.load_model(path)
    assert layer_configs(loaded) == layer_configs(qmodel)
    np.testing.assert_array_equal(loaded.predict(data.x_val, verbose=0), qmodel.predict(data.x_val, verbose=0))
    again, _ = qconvert.convert(loaded, RULES / "6bit-auto.yaml")  # Q-layers stay: no data needed the second time
    assert layer_configs(again) == layer_configs(loaded)


def test_uncalibrated_twin_is_the_same_rules_at_integer_0(tmp_path):
    model = identity_relu(3.0)
    x = np.random.default_rng(0).uniform(0, 1, size=(100, 4)).astype("float32")
    twin, _ = qconvert.convert(model, qconvert.loads_rules(AUTO_RULES), uncalibrated=True)
    assert quantizer_config(twin, "act")["integer"] == 0
    calibrated, _ = qconvert.convert(model, qconvert.loads_rules(AUTO_RULES), calibration_data=x)
    assert quantizer_config(calibrated, "act")["integer"] == 2


# --- the CLI -----------------------------------------------------------------------------------------
def test_cli_calibrates_from_data_and_the_report_records_it(digits_files, tmp_path):
    out, report = tmp_path / "q.keras", tmp_path / "r.json"
    res = run(digits_files[0], "--rules", "6bit-auto", "--data", digits_files[1],
              "--calibration-rows", 300, "-o", out, "--report", report)
    assert res.exit_code == 0, res.output
    doc = json.loads(report.read_text())
    assert doc["calibration"]["rows"] == 300 and doc["calibration"]["resolved"] >= 8
    assert {"fp32", "ptq_uncalibrated", "ptq"} <= set(doc["accuracy"])
    assert "calibration (300 calibration rows" in res.output and "auto → integer 0" in res.output
    relu = quantizer_config(keras.saving.load_model(out), "relu2")
    entry = next(e for e in doc["calibration"]["entries"] if e["layer"] == "relu2")
    assert entry["resolved"] and relu["integer"] == entry["integer"]  # the saved model holds the resolved number


def test_cli_rules_show_prints_resolved_precisions(digits_files):
    res = run("rules", "show", digits_files[0], "--rules", "6bit-auto", "--data", digits_files[1])
    assert res.exit_code == 0, res.output
    plan_table = res.output.split("calibration (")[0]
    assert ",auto" not in plan_table and "quantized_relu(6," in plan_table  # every auto resolved in the plan
    assert "p99.9|x|" in res.output
    res = run("rules", "show", digits_files[0], "--rules", "6bit-auto")  # no data: a preview, still exit 0
    assert res.exit_code == 0 and "quantized_relu(6,auto)" in res.output


def test_cli_auto_without_data_is_one_line_and_writes_nothing(digits_files, tmp_path):
    out = tmp_path / "q.keras"
    res = run(digits_files[0], "--rules", "6bit-auto", "-o", out)
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "relu1" in res.output and "--data" in res.output
    assert not out.exists()


@pytest.mark.parametrize("kind", ["nan", "shape"])
def test_cli_bad_calibration_rows_exit_2_nothing_written(digits_files, tmp_path, kind):
    x = np.random.default_rng(0).uniform(size=(50, 64 if kind == "nan" else 10)).astype("float32")
    if kind == "nan":
        x[3, 7] = np.nan
    y = np.eye(10, dtype="float32")[np.arange(50) % 10]
    np.savez(tmp_path / "bad.npz", X_train=x, y_train=y)
    out = tmp_path / "q.keras"
    for args in ([digits_files[0], "--rules", "6bit-auto", "--data", tmp_path / "bad.npz", "-o", out],
                 ["rules", "show", digits_files[0], "--rules", "6bit-auto", "--data", tmp_path / "bad.npz"]):
        res = run(*args)
        assert res.exit_code == 2, res.output
        assert res.output.strip().count("\n") == 0 and ("NaN" in res.output or "shape" in res.output)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_migrate_refuses_auto_rules_in_one_line(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import keras\nm = keras.Sequential([keras.layers.Dense(4, activation='relu')])\n")
    res = run("migrate", src, "--rules", "6bit-auto")
    assert res.exit_code == 2 and "auto" in res.output and "qconvert MODEL" in res.output
    assert src.read_text().startswith("import keras\n")


@pytest.mark.slow
def test_calibrated_model_emulates_bit_exactly_in_hls4ml(digits_files, tmp_path):
    from qconvert.demo import digits_dataset
    from qconvert.export import Hls4mlOptions, export

    data = digits_dataset()
    model = keras.saving.load_model(digits_files[0])
    qmodel, report = qconvert.convert(model, RULES / "6bit-auto.yaml", calibration_data=data.x_train)
    assert {e["integer"] for e in report.sections["calibration"]["entries"] if e["role"] == "activation"} != {0}
    result = export(qmodel, Hls4mlOptions(tmp_path / "prj"), x=data.x_test, y=data.y_test)
    assert result.logits_exact_fraction == 1.0, result.limits
