"""Sequence models: causal convolutions (TCN-style), and their hls4ml emulation checked against Keras."""

from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import qconvert
from qconvert.cli import cli
from qconvert.export import Hls4mlOptions, export

ROOT = Path(__file__).resolve().parent.parent
SIX_BIT = ROOT / "rules" / "6bit.yaml"
#: wide enough that the quantized model computes what the float one does, to ~1e-4
WIDE = "version: 1\ndefaults:\n  kernel: quantized_bits(24, 4, alpha=1)\n  bias: quantized_bits(24, 4, alpha=1)\n"


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def tcn(dilation: int = 2) -> keras.Model:
    """Three causal Conv1D (one strided, one dilated), global pooling, a Dense head."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((32, 3), name="x")
    x = keras.layers.Conv1D(8, 3, padding="causal", activation="relu", name="c1")(inp)
    x = keras.layers.Conv1D(8, 3, padding="causal", strides=2, activation="relu", name="c2")(x)
    x = keras.layers.Conv1D(8, 2, padding="causal", dilation_rate=dilation, name="c3")(x)
    x = keras.layers.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(inp, keras.layers.Dense(4, name="out")(x), name="tcn")


def sequences(n=64, seed=0):
    return np.random.default_rng(seed).normal(0, 1, size=(n, 32, 3)).astype("float32")


def test_causal_conv1d_becomes_left_padding_and_a_valid_qconv(write_rules, tmp_path):
    fp32 = tcn()
    qmodel, report = qconvert.convert(fp32, write_rules(WIDE))
    names = [layer.name for layer in qmodel.layers]
    assert names[:3] == ["x", "c1_causal_pad", "c1"]
    assert qmodel.get_layer("c3_causal_pad").padding == (2, 0)  # dilation 2 × (kernel 2 - 1)
    assert all(qmodel.get_layer(n).padding == "valid" for n in ("c1", "c2", "c3"))
    assert "causal" in next(row.note for row in report.layers if row.name == "c1")
    x = sequences()
    np.testing.assert_allclose(np.asarray(qmodel(x)), np.asarray(fp32(x)), atol=1e-4)  # what Keras pads, not more
    path = tmp_path / "q.keras"
    qmodel.save(path)
    np.testing.assert_array_equal(np.asarray(qconvert.load_model(path)(x)), np.asarray(qmodel(x)))  # round trip


def test_causal_model_runs_after_cli_convert_with_data(tmp_path):
    fp32 = tcn()
    fp32.save(tmp_path / "tcn.keras")
    x = sequences(128)
    np.savez(tmp_path / "d.npz", X_train=x, y_train=np.arange(128) % 4)
    result = run(tmp_path / "tcn.keras", "--rules", SIX_BIT, "-o", tmp_path / "q.keras", "--data", tmp_path / "d.npz")
    assert result.exit_code == 0, result.output
    assert np.asarray(qconvert.load_model(tmp_path / "q.keras")(x)).shape == (128, 4)


@pytest.mark.slow
def test_causal_tcn_emulates_bit_exactly_in_hls4ml(tmp_path):
    qmodel, _ = qconvert.convert(tcn(dilation=1), SIX_BIT)  # hls4ml has no dilated Conv1D
    result = export(qmodel, Hls4mlOptions(tmp_path / "prj"), x=sequences(200))
    assert result.exact_fraction == 1.0 and result.first_divergent_layer is None, result.limits
