"""The converted model and its costs stay exactly what they were before the conversion was sped up.

``tests/golden/convert.json`` holds, for each model × rule file below, the SHA-256 of the
converted model's ``get_config()`` (every layer's config, names and graph) and of each layer's
serialized config, every weight's path, shape, dtype, trainability and the SHA-256 of its bytes, and the report's per-layer cost figures, as written by
the rewriter and cost model of commit abc6d12 (before the speed-up); the ``*-6bit`` entries of the models
with tanh or sigmoid were regenerated when the 6bit preset began to quantize them, and every entry's EBOPs (only
those) when the count began to take each weight at its own value's bits. The test converts the same
models again and compares. Regenerate only for a deliberate change of output:

    PYTHONPATH=$PWD python tests/test_convert_golden.py --write
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras
import numpy as np
import pytest
from models import branching_bn, conv1d_families, conv2d_families, nested_shared, random_inputs, seed_fp32

import qconvert

GOLDEN = Path(__file__).resolve().parent / "golden" / "convert.json"
RULES = Path(__file__).resolve().parent.parent / "rules"


def recurrent() -> keras.Model:
    """LSTM → GRU → SimpleRNN → Dense: the Q-layers whose weights live in a cell (a sub-layer)."""
    inp = keras.Input((6, 3), name="sequence")
    x = keras.layers.LSTM(5, return_sequences=True, name="lstm")(inp)
    x = keras.layers.GRU(4, return_sequences=True, name="gru")(x)
    x = keras.layers.SimpleRNN(3, name="rnn")(x)
    out = keras.layers.Dense(2, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="recurrent")


MODELS = {
    "seed": seed_fp32,
    "conv2d": conv2d_families,
    "conv1d": conv1d_families,
    "branching": branching_bn,
    "nested": nested_shared,
    "recurrent": recurrent,
}
CASES = [(m, "6bit") for m in MODELS] + [
    ("seed", "mixed_jet_tagger"), ("seed", "ternary"), ("seed", "binary"), ("seed", "6bit-auto"),
    ("branching", "6bit-auto"), ("conv2d", "4bit"), ("branching", "8bit"),
]  # fmt: skip


def _source(model_name: str) -> keras.Model:
    """The model, with names and weights that do not depend on what ran before in the process."""
    keras.backend.clear_session()  # auto-generated names ("sequential", "input_layer") start again
    model = MODELS[model_name]()
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.5, size=w.shape).astype(w.dtype) for w in model.get_weights()]
    for i, w in enumerate(model.weights):
        if "moving_variance" in w.path:
            weights[i] = np.abs(weights[i]) + 0.5
    model.set_weights(weights)
    return model


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _config_digest(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=repr).encode()).hexdigest()


def fingerprint(model_name: str, rules: str) -> dict:
    """What must not change: the converted model's config and weights, and the report's costs."""
    model = _source(model_name)
    data = random_inputs(model, 64) if "auto" in rules else None
    qmodel, report = qconvert.convert(model, RULES / f"{rules}.yaml", calibration_data=data)
    layers = [[layer.name, type(layer).__name__, _config_digest(keras.saving.serialize_keras_object(layer))]
              for layer in qmodel._flatten_layers(include_self=False)]
    config = {"model": _config_digest(qmodel.get_config()), "layers": layers}
    weights = [[w.path, list(w.shape), str(w.dtype), bool(w.trainable), _digest(np.asarray(w))] for w in qmodel.weights]
    rows = [dataclasses.asdict(row) for row in report.layers]
    totals = dataclasses.asdict(report.totals)
    return {"config": config, "weights": weights, "rows": rows, "totals": totals,
            "calibration": report.sections.get("calibration")}


def _case_id(case: tuple[str, str]) -> str:
    return f"{case[0]}-{case[1]}"


@pytest.fixture(scope="module")
def golden() -> dict:
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_conversion_is_unchanged(case, golden):
    want = golden[_case_id(case)]
    got = json.loads(json.dumps(fingerprint(*case), default=repr))
    for g, w in zip(got["config"]["layers"], want["config"]["layers"]):
        assert g == w, f"layer {w[0]} changed"
    assert got["config"] == want["config"]  # the whole model: the same layers, in the same graph
    assert len(got["weights"]) == len(want["weights"])
    for g, w in zip(got["weights"], want["weights"]):
        assert g == w, f"weight {w[0]} changed"
    assert got["rows"] == want["rows"]
    assert got["totals"] == want["totals"]
    assert got["calibration"] == want["calibration"]


if __name__ == "__main__" and "--write" in sys.argv:
    out = {_case_id(case): json.loads(json.dumps(fingerprint(*case), default=repr)) for case in CASES}
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
