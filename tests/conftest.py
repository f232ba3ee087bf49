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


def jets_npz(path: Path, rows: int = 20000) -> Path:
    """A synthetic jet-shaped training set (16 features, 5 classes) for the kill-and-resume tests."""
    import numpy as np

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, rows)
    x = (rng.normal(size=(5, 16))[labels] + rng.normal(0, 1.5, size=(rows, 16))).astype("float32")
    np.savez(path, X_train=x, y_train=np.eye(5, dtype="float32")[labels])
    return path


def kill_after_first_checkpoint(args: list[str], state: Path) -> dict:
    """Run the CLI ``args`` in a child process, SIGKILL it once ``state`` (CKPT/state.json) exists; return that state."""
    import json
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(args, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return json.loads(state.read_text())


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
