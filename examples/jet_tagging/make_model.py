"""Build the seed's FP32 jet-tagging baseline (16 → 64 → 32 → 32 → 5) and save it as .h5.

The shipped ``keras_model_fp32.h5`` was made with this script. Its weights come
from a short fit on a *synthetic stand-in* (Gaussian clusters of the same shape,
16 features, 5 classes), not on the OpenML jets: it is an example for the
converter, not a physics result.

    python examples/jet_tagging/make_model.py [OUT.h5]
    python examples/jet_tagging/make_model.py --data jets.npz    # the stand-in as data for --data

``--data`` writes 40,000 stand-in jets split 50/25/25 into ``X_train``/``y_train``, ``X_val``/``y_val``
and ``X_test``/``y_test`` (the split the benchmarks use).
"""

from __future__ import annotations

import os
import sys
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # Keras is imported where a model is built: run.py's data errors come in a second


def synthetic_jets(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 1.0, size=(5, 16))
    labels = rng.integers(0, 5, size=n)
    x = centers[labels] + rng.normal(0.0, 1.5, size=(n, 16))
    return x.astype("float32"), np.eye(5, dtype="float32")[labels]


def write_stand_in(path: str, n: int = 40000, seed: int = 0) -> str:
    """The synthetic stand-in as a .npz with train (50 %), validation (25 %) and test (25 %) splits."""
    x, y = synthetic_jets(n, seed=seed)
    a, b = n // 2, 3 * n // 4
    np.savez(path, X_train=x[:a], y_train=y[:a], X_val=x[a:b], y_val=y[a:b], X_test=x[b:], y_test=y[b:])
    return path


def baseline() -> Any:
    """The seed's FP32 jet tagger (a ``keras.Sequential``), untrained."""
    import keras

    model = keras.Sequential(name="jet_tagger_fp32")
    model.add(keras.Input(shape=(16,)))
    model.add(keras.layers.Dense(64, name="fc1", activation="relu"))
    model.add(keras.layers.Dense(32, name="fc2", activation="relu"))
    model.add(keras.layers.Dense(32, name="fc3", activation="relu"))
    model.add(keras.layers.Dense(5, name="output", activation="softmax"))
    return model


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--data":
        print(f"wrote {write_stand_in(sys.argv[2])}")
        sys.exit(0)
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "keras_model_fp32.h5")
    import keras

    keras.utils.set_random_seed(0)
    x, y = synthetic_jets(20000)
    model = baseline()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=1024, epochs=5, validation_split=0.25, verbose=0)
    model.save(out)
    print(f"wrote {out}")
