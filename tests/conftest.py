"""Shared pytest set-up: Keras on TensorFlow before anything imports it, the heaviest test files first
(:data:`HEAVY_FIRST`), and the rule, digits and digits-baseline fixtures that test modules share."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"


#: Test files in the order xdist hands them to its workers, heaviest first (CPU seconds per file, measured at 2042436
#: with a per-test hook: 264, 235, 164, 158, 153, 148, 133, 110, 108, 107, 89, 80, 72, 62, 61): each file runs on one
#: worker (``--dist loadfile``), so starting with the long ones keeps both workers busy to the end. Files not listed
#: follow in collection order. ``--no-loadscope-reorder`` (pyproject) keeps xdist from re-sorting by test count.
#: test_rtl_trace.py, split off test_rtl.py later, took 17 of its 89 s on one process (``--durations``): it follows it.
HEAVY_FIRST = ("test_search.py", "test_hls4ml_families.py", "test_target_ebops.py", "test_hls4ml.py",
               "test_search_converge.py", "test_backends.py", "test_hls4ml_cases.py", "test_prune.py",
               "test_sequence.py", "test_examples.py", "test_hls4ml_branches.py", "test_hls4ml_quantizer_options.py",
               "test_hls4ml_graphs.py", "test_search_write.py", "test_rtl.py", "test_rtl_trace.py")


def pytest_collection_modifyitems(items):
    """Heavy test files first (:data:`HEAVY_FIRST`); the order of tests within a file is kept."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_configure(config):
    """In each process that runs tests (not xdist's controller): Keras and QKeras imported as the CLI imports
    them, before test modules import them (see qconvert.runtime.import_qkeras)."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        return
    from qconvert.runtime import quiet_backends

    quiet_backends()


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


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, split 60/20/20 (shared by every test on this worker; read it, do not change it)."""
    from qconvert.demo import digits_dataset

    return digits_dataset()


@pytest.fixture(scope="session")
def _digits_baseline(tmp_path_factory, digits) -> Path:
    """The digits MLP baseline, trained once per test process and saved (compiled: its loss travels with it)."""
    from qconvert.demo import digits_mlp, train_baseline

    path = tmp_path_factory.mktemp("digits_baseline") / "mlp.keras"
    train_baseline(digits_mlp(), digits).save(path)
    return path


@pytest.fixture(scope="module")
def digits_fp32(_digits_baseline):
    """The digits MLP baseline: a fresh copy per module (loaded from the worker's one trained baseline)."""
    import keras

    return keras.saving.load_model(_digits_baseline)


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory, digits, _digits_baseline):
    """The digits MLP baseline as a .keras file (compiled: its loss travels with it) and its data as a .npz
    with train/validation/test splits (a copy per module: tests may write beside them)."""
    import shutil

    import numpy as np

    folder = tmp_path_factory.mktemp("digits")
    model = folder / "mlp.keras"
    shutil.copyfile(_digits_baseline, model)
    data = folder / "digits.npz"
    np.savez(data, X_train=digits.x_train, y_train=digits.y_train, X_val=digits.x_val, y_val=digits.y_val,
             X_test=digits.x_test, y_test=digits.y_test)
    return model, data
