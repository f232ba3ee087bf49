"""The shipped presets: at each width, the plain preset and its ``-auto`` twin quantize the same layers and
functions (only the integer bits and the input quantizer differ)."""

import keras
import pytest
from models import activation_families, branching_bn, conv1d_families, conv2d_families, nested_shared, seed_fp32

import qconvert
from qconvert.rules.presets import preset_names


def recurrent() -> keras.Model:
    inp = keras.Input((6, 3), name="sequence")
    x = keras.layers.LSTM(5, return_sequences=True, name="lstm")(inp)
    x = keras.layers.GRU(4, return_sequences=True, name="gru")(x)
    x = keras.layers.SimpleRNN(3, name="rnn")(x)
    return keras.Model(inp, keras.layers.Dense(2, name="out")(x), name="recurrent")


MODELS = (seed_fp32, branching_bn, conv2d_families, conv1d_families, nested_shared, activation_families, recurrent)


def coverage(model: keras.Model, preset: str) -> dict:
    """Per layer: what the plan does to it and which of its weights and activations end quantized."""
    out = {}
    for item in qconvert.plan(model, preset).layers:
        if item.class_name == "InputLayer":
            continue  # the -auto presets add an input quantizer: their one intended difference
        split = item.split
        out[item.path] = (item.action, item.target, tuple((role, spec.is_float) for role, spec in item.quantizers),
                          None if split is None else (split.name, split.status))
    return out


def test_every_width_has_a_plain_and_a_calibrated_preset():
    names = set(preset_names())
    assert {f"{bits}bit" for bits in (4, 6, 8)} | {f"{bits}bit-auto" for bits in (4, 6, 8)} <= names


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_plain_and_auto_presets_cover_the_same_layers_and_functions(bits):
    for build in MODELS:
        model = build()
        plain, auto = coverage(model, f"{bits}bit"), coverage(model, f"{bits}bit-auto")
        assert plain == auto, (model.name, {k: (plain.get(k), auto.get(k)) for k in plain.keys() | auto.keys()
                                            if plain.get(k) != auto.get(k)})
        if build is activation_families:  # the ReLU family, tanh and sigmoid are quantized in both
            quantized = {path[-1] for path, (action, *_rest) in plain.items() if action == "quantize"}
            assert {"act_relu", "act_relu6", "act_tanh", "act_sigmoid", "relu_max6", "leaky_layer"} <= quantized
