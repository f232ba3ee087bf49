"""One backend, end to end: convert → calibrate → short QAT → save/load → hls4ml export and verification.

Run by tests/test_backends.py as ``KERAS_BACKEND=B python backend_e2e.py B TMPDIR`` (a backend is chosen
when Keras is first imported, so each runs in its own process).
"""
import sys
from pathlib import Path

import keras
import numpy as np

import qconvert
from qconvert.demo import digits_dataset, digits_mlp, train_baseline
from qconvert.export import Hls4mlOptions, export
from qconvert.train.qat import TrainOptions, fine_tune

backend = sys.argv[1]
tmp = Path(sys.argv[2])
assert keras.backend.backend() == backend, keras.backend.backend()
data = digits_dataset()
fp32 = train_baseline(digits_mlp(0), data, epochs=3)  # bit-exactness, not accuracy, is checked here
q, report = qconvert.convert(fp32, "6bit-auto", calibration_data=data.calibration_rows(512))
assert report.sections["calibration"]["resolved"] > 0
q, result = fine_tune(q, data, TrainOptions(epochs=2, verbose=0))
q.save(tmp / "q.keras")
loaded = keras.saving.load_model(tmp / "q.keras")
np.testing.assert_array_equal(np.asarray(loaded.predict(data.x_test, verbose=0)), np.asarray(q.predict(data.x_test, verbose=0)))
res = export(loaded, Hls4mlOptions(tmp / "prj"), x=data.x_test, y=data.y_test)
print("RESULT", backend, result.batch_size, res.logits_exact_fraction, res.argmax_agreement, res.limits)
assert res.logits_exact_fraction == 1.0, res.limits
