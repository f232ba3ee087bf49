"""Keras 2 full-model .h5 files (through Keras 3's legacy loader) and the JAX backend."""

import os
import subprocess
import sys
import textwrap
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


@pytest.mark.slow
def test_jax_backend_smoke(tmp_path):
    """Convert on JAX: the seed model, and a pass-through branching model that must equal FP32."""
    pytest.importorskip("jax")
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT / 'tests')!r})
        import keras, numpy as np, qconvert
        assert keras.backend.backend() == "jax"
        from models import seed_fp32, branching_bn, random_inputs
        q, report = qconvert.convert(seed_fp32(), {str(ROOT / 'rules' / '6bit.yaml')!r})
        assert [type(l).__name__ for l in q.layers][:2] == ["QDense", "QActivation"]
        rules = qconvert.loads_rules('''
        version: 1
        defaults: {{kernel: float, bias: float, activation: {{relu: float, tanh: float, leaky_relu: float}}, batchnorm: fold}}
        ''')
        fp32 = branching_bn()
        qb, _ = qconvert.convert(fp32, rules)
        x = random_inputs(fp32)
        np.testing.assert_allclose(np.asarray(qb(x)), np.asarray(fp32(x)), rtol=1e-4, atol=1e-5)
        q.save({str(tmp_path / 'jax.keras')!r})
        print("jax ok", report.totals.bops)
        """
    )
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "jax ok" in proc.stdout
