"""One backend, end to end: convert → calibrate → pruned QAT → save/load → hls4ml export and verification,
and a float pass-through of a branching model.

Run by tests/test_backends.py as ``KERAS_BACKEND=B python backend_e2e.py B TMPDIR`` (a backend is chosen
when Keras is first imported, so each runs in its own process). One process per backend carries every
backend-specific check, so each backend's start-up and first traces are paid once.
"""
# ruff: noqa: E402  (Keras and QKeras are imported first, as the CLI imports them)
import importlib.util
import sys
from pathlib import Path

from qconvert.runtime import quiet_backends

quiet_backends()  # Keras, then QKeras without the other backends' frameworks (checked at the end)

import keras
import numpy as np

import qconvert
from qconvert.demo import digits_dataset, digits_mlp, preset, train_baseline
from qconvert.export import Hls4mlOptions, export
from qconvert.rules import loads_rules
from qconvert.train.prune import make_pruning_callback, prune_targets
from qconvert.train.qat import TrainOptions, evaluate, fine_tune

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import branching_bn, random_inputs

backend = sys.argv[1]
tmp = Path(sys.argv[2])
assert keras.backend.backend() == backend, keras.backend.backend()

# float rules on a branching model with BatchNormalization: the conversion keeps its function
fp32 = branching_bn()
passthrough, _ = qconvert.convert(fp32, loads_rules(
    "version: 1\ndefaults: {kernel: float, bias: float, activation: {relu: float, tanh: float, leaky_relu: float}, "
    "batchnorm: fold}\n"))
x = random_inputs(fp32)
np.testing.assert_allclose(keras.ops.convert_to_numpy(passthrough(x)), keras.ops.convert_to_numpy(fp32(x)), rtol=1e-4,
                           atol=1e-5)

# the digits MLP: calibrated 6-bit, pruned to 75 % during a short QAT; the oracle for "QAT learns on this backend":
# the same model pruned in one shot (smallest magnitudes to zero, no training) has a higher validation loss
data = digits_dataset()
fp32 = train_baseline(digits_mlp(0), data, epochs=3)  # bit-exactness, not accuracy, is checked here
rules = loads_rules(preset("6bit-auto").read_text() + "  prune: {sparsity: 0.75, end_epoch: 2}\n")
q, report = qconvert.convert(fp32, rules, calibration_data=data.calibration_rows(512))
assert report.sections["calibration"]["resolved"] > 0
one_shot = keras.models.clone_model(q)
one_shot.set_weights(q.get_weights())
for name in ("fc1", "fc2", "fc3", "output"):
    kernel = np.asarray(keras.ops.convert_to_numpy(one_shot.get_layer(name).kernel))
    one_shot.get_layer(name).kernel.assign(np.where(np.abs(kernel) > np.quantile(np.abs(kernel), 0.75), kernel, 0.0))
pruned_only = evaluate(one_shot, data, data.x_val, data.y_val, "categorical_crossentropy").loss
q, result = fine_tune(q, data, TrainOptions(epochs=6, verbose=0),  # pruned by epoch 2; the best of epochs 3-6 is kept
                      callbacks=[make_pruning_callback(prune_targets(qconvert.plan(fp32, rules), 6))], monitor_from=3)
qat = evaluate(q, data, data.x_val, data.y_val, "categorical_crossentropy").loss
print("HISTORY", result.best_epoch, {k: [round(v, 3) for v in vs] for k, vs in result.history.items() if "loss" in k})
for name in ("fc1", "fc2", "fc3", "output"):
    kernel = np.asarray(keras.ops.convert_to_numpy(q.get_layer(name).kernel))
    assert abs(np.mean(kernel == 0) - 0.75) <= 1 / kernel.size, (name, np.mean(kernel == 0))
q.save(tmp / "q.keras")
loaded = keras.saving.load_model(tmp / "q.keras")
np.testing.assert_array_equal(np.asarray(loaded.predict(data.x_test, verbose=0)), np.asarray(q.predict(data.x_test, verbose=0)))
res = export(loaded, Hls4mlOptions(tmp / "prj"), x=data.x_test, y=data.y_test)
print("RESULT", backend, result.batch_size, res.logits_exact_fraction, res.argmax_agreement, pruned_only, qat, res.limits)
assert res.logits_exact_fraction == 1.0, res.limits
assert qat < pruned_only, (qat, pruned_only)

# QKeras was imported without torch under TensorFlow and JAX (2.6 s of every start-up); nothing since needed it,
# and it imports as usual when asked for
if backend != "torch" and importlib.util.find_spec("torch") is not None:
    assert "torch" not in sys.modules
    import torch

    assert float(torch.ones(3).sum()) == 3.0
