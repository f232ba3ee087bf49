"""hls4ml handoff figures: emulation vs Keras for the seed's jet model and a small Conv2D model.

    python benchmarks/bench_hls4ml.py [--samples 20000]

Prints, per model: logits bit-identical fraction, argmax agreement, accuracy Keras vs hls4ml, max
|diff| of the softmax outputs, the softmax table size, samples whose top-2 logits tie in the table,
and the seconds hls4ml took to write and compile (g++) the project.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "jet_tagging"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=20000, help="synthetic jet samples")
    args = parser.parse_args()

    import numpy as np
    from make_model import synthetic_jets

    import qconvert
    from qconvert.demo import digits_cnn, digits_dataset, train_baseline
    from qconvert.export import Hls4mlOptions, export
    from qconvert.train.qat import TrainOptions, fine_tune

    rules = ROOT / "rules" / "6bit.yaml"
    jet, _ = qconvert.convert(ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5", rules)
    xj, yj = synthetic_jets(args.samples)
    data = digits_dataset(image=True)
    cnn, _ = qconvert.convert(train_baseline(digits_cnn(), data, epochs=25), rules)
    cnn, _ = fine_tune(cnn, data, TrainOptions(epochs=15, lr=3e-3, batch_size=64, loss="categorical_crossentropy", verbose=0))
    xc = np.concatenate([data.x_train, data.x_val, data.x_test])
    yc = np.concatenate([data.y_train, data.y_val, data.y_test])
    with tempfile.TemporaryDirectory() as tmp:
        for name, model, x, y in (("jet 6-bit", jet, xj, yj), ("digits Conv2D 6-bit", cnn, xc, yc)):
            r = export(model, Hls4mlOptions(Path(tmp) / name.replace(" ", "_")), x=x, y=y)
            print(f"{name}: {r.n_samples} samples; logits exact {r.logits_exact_fraction:.4%}; "
                  f"argmax agreement {r.argmax_agreement:.4%}; accuracy Keras {r.accuracy_keras:.4f} "
                  f"vs hls4ml {r.accuracy_hls4ml:.4f}; max |diff| {r.max_abs_diff:.4g}; "
                  f"softmax table {r.softmax.table_size}; compile {r.compile_seconds:.1f} s")
            print(f"  limits: {r.limits}")


if __name__ == "__main__":
    main()
