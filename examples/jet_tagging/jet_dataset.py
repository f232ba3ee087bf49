"""The data set simulate.py writes from its jets' features: the classes (the labels' order) and the 16
feature names (the columns' order), the stratified 60/20/20 split standardized on the train split, the
.npz written atomically, and a per-class table of telling features.

Needs numpy and scikit-learn, not the simulation wheels. simulate.py's docstring ("The data set") says
what the .npz holds.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

CLASSES = ("g", "q", "W", "Z", "t")
FEATURES = ("zlogz", "c1_b0_mmdt", "c1_b1_mmdt", "c1_b2_mmdt", "c2_b1_mmdt", "c2_b2_mmdt", "d2_b1_mmdt",
            "d2_b2_mmdt", "d2_a1_b1_mmdt", "d2_a1_b2_mmdt", "m2_b1_mmdt", "m2_b2_mmdt", "n2_b1_mmdt", "n2_b2_mmdt",
            "mass_mmdt", "multiplicity")


def build_dataset(features: dict[str, np.ndarray], seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of the .npz: stratified 60/20/20 split (``random_state = seed``), standardized on train."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([features[c] for c in CLASSES])
    y = np.concatenate([np.full(len(features[c]), i, dtype=np.int64) for i, c in enumerate(CLASSES)])
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.25, stratify=y_rest,
                                                      random_state=seed)
    scaler = StandardScaler().fit(x_train)
    std = {name: scaler.transform(a).astype(np.float32) for name, a in
           (("X_train", x_train), ("X_val", x_val), ("X_test", x_test))}
    return {**std, "y_train": y_train, "y_val": y_val, "y_test": y_test,
            "feature_names": np.array(FEATURES), "class_names": np.array(CLASSES),
            "scaler_mean": scaler.mean_, "scaler_scale": scaler.scale_}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` to ``path``, atomically (a temporary file beside it, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the committed file private
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sanity_table(features: dict[str, np.ndarray]) -> str:
    """Per-class means of a few telling features, as text."""
    cols = ("mass_mmdt", "multiplicity", "d2_b1_mmdt", "n2_b1_mmdt", "c2_b1_mmdt", "zlogz")
    lines = ["class " + " ".join(f"{c:>13}" for c in cols)]
    for cls in CLASSES:
        f = features[cls]
        lines.append(f"{cls:<5} " + " ".join(f"{f[:, FEATURES.index(c)].mean():13.3f}" for c in cols))
    return "\n".join(lines)
