"""New layers built holding their final weights (PresetWeights), and a conversion's Snapshot."""

import keras
import numpy as np
import pytest
from qkeras import QLSTM, QDense
from qkeras.quantizers import quantized_bits

from qconvert.model.preset import PresetWeights
from qconvert.model.snapshot import Snapshot


class StatsFirst(keras.layers.Layer):
    """Creates a non-trainable variable before its trainable ones: ``weights`` lists them in another order."""

    def build(self, input_shape):
        self.count = self.add_weight(shape=(), initializer="zeros", trainable=False, name="count")
        self.w = self.add_weight(shape=(input_shape[-1], 3), name="w")
        self.b = self.add_weight(shape=(3,), name="b")

    def call(self, x):
        return x @ self.w + self.b


def _qdense() -> QDense:
    q = quantized_bits(6, 0, alpha=1)
    return QDense(8, kernel_quantizer=q, bias_quantizer=q, name="fc")


def _qlstm() -> QLSTM:
    layer = QLSTM(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), name="lstm")
    layer.name = "lstm"  # qkeras-v3 hands ``name`` to the cell (the rewriter names the layer the same way)
    return layer


def _values(layer, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=tuple(v.shape)).astype(v.dtype) for v in layer.weights]


def _build_preset(layer, weights, input_shape, snapshot=None):
    preset = PresetWeights(layer, weights, snapshot)
    preset.install()
    try:
        layer.build(input_shape)
    finally:
        preset.restore()
    preset.finish()
    return preset


@pytest.mark.parametrize("make,input_shape", [
    (_qdense, (None, 5)),
    (lambda: StatsFirst(name="stats_first"), (None, 4)),
    (_qlstm, (None, 2, 4)),
])  # fmt: skip
def test_a_preset_layer_equals_one_built_then_set(make, input_shape):
    reference = make()
    reference.build(input_shape)
    weights = _values(reference)
    reference.set_weights(weights)

    layer = make()
    _build_preset(layer, weights, input_shape)
    assert [v.path for v in layer.weights] == [v.path for v in reference.weights]
    for got, want in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(got, want)
    assert keras.saving.serialize_keras_object(layer) == keras.saving.serialize_keras_object(reference)
    assert "add_weight" not in vars(layer) and all("add_weight" not in vars(s) for s in layer._flatten_layers())


def test_guesses_that_hold_skip_set_weights_and_wrong_ones_do_not():
    dense = _qdense()
    dense.build((None, 5))
    preset = _build_preset(_qdense(), _values(dense), (None, 5))
    assert sorted(preset.given.values()) == [0, 1]  # kernel and bias created with their values

    stats = StatsFirst(name="stats_first")
    stats.build((None, 4))
    weights = _values(stats)  # [w, b, count]: the count was created first, so the first guess was wrong
    layer = StatsFirst(name="stats_first")
    _build_preset(layer, weights, (None, 4))
    for got, want in zip(layer.get_weights(), weights):
        np.testing.assert_array_equal(got, want)


def test_snapshot_reads_each_layer_once_and_knows_preset_values():
    dense = keras.layers.Dense(3, name="d")
    dense.build((None, 2))
    snapshot = Snapshot()
    first = snapshot.weights(dense)
    dense.set_weights([np.ones((2, 3), "float32"), np.ones(3, "float32")])
    assert snapshot.weights(dense) is first and not np.all(first[0] == 1)  # read once: a snapshot
    assert snapshot.config(dense) is snapshot.config(dense)

    reference = _qdense()
    reference.build((None, 5))
    weights = _values(reference)
    layer = _qdense()
    _build_preset(layer, weights, (None, 5), snapshot)
    assert snapshot.value(layer.kernel) is weights[0]  # not read back
    np.testing.assert_array_equal(snapshot.value(reference.kernel), np.asarray(reference.kernel))  # unknown: read

    snapshot.remember(reference.bias, weights[1].astype("float64"))  # would need a conversion: not kept
    np.testing.assert_array_equal(snapshot.value(reference.bias), np.asarray(reference.bias))
