"""Keras 2 full-model .h5 files (through Keras 3's legacy loader) and the JAX backend."""

from pathlib import Path

import numpy as np
import pytest

import qconvert

ROOT = Path(__file__).resolve().parent.parent


def _tf_keras_seed(path: Path) -> np.ndarray:
    """Build and save the seed's baseline with tf_keras (Keras 2); return its outputs on fixed inputs."""
    tf_keras = pytest.importorskip("tf_keras")
    tf_keras.utils.set_random_seed(1)
    model = tf_keras.Sequential(
        [
            tf_keras.layers.Dense(64, input_shape=(16,), name="fc1", activation="relu"),
            tf_keras.layers.Dense(32, name="fc2", activation="relu"),
            tf_keras.layers.Dense(32, name="fc3", activation="relu"),
            tf_keras.layers.Dense(5, name="output", activation="softmax"),
        ]
    )
    model.save(path, save_format="h5")
    x = np.random.default_rng(3).normal(size=(200, 16)).astype("float32")
    return x, model.predict(x, verbose=0)


def test_keras2_full_model_h5_loads_equal_to_tf_keras_and_converts(tmp_path):
    path = tmp_path / "keras2.h5"
    x, expected = _tf_keras_seed(path)
    model = qconvert.load_model(path)
    np.testing.assert_allclose(np.asarray(model(x)), expected, atol=1e-5)
    qmodel, report = qconvert.convert(path, ROOT / "rules" / "6bit.yaml")
    assert [l.name for l in qmodel.layers] == ["fc1", "relu1", "fc2", "relu2", "fc3", "relu3", "output", "softmax"]
    assert report.totals.leftovers == 0
