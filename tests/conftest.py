import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"


@pytest.fixture
def rules_dir() -> Path:
    return RULES


@pytest.fixture
def write_rules(tmp_path):
    """Write rule-file text to a file and return its path."""

    def write(text: str, name: str = "rules.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits, split 60/20/20 (shared by the QAT and pruning tests)."""
    from qconvert.demo import digits_dataset

    return digits_dataset()


@pytest.fixture(scope="module")
def digits_fp32(digits):
    """The digits MLP baseline, trained once per module."""
    from qconvert.demo import digits_mlp, train_baseline

    return train_baseline(digits_mlp(), digits)


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory, digits, digits_fp32):
    """The digits MLP baseline as a .keras file (compiled: its loss travels with it) and its data as a .npz
    with train/validation/test splits."""
    import numpy as np

    folder = tmp_path_factory.mktemp("digits")
    model = folder / "mlp.keras"
    digits_fp32.save(model)
    data = folder / "digits.npz"
    np.savez(data, X_train=digits.x_train, y_train=digits.y_train, X_val=digits.x_val, y_val=digits.y_val,
             X_test=digits.x_test, y_test=digits.y_test)
    return model, data
