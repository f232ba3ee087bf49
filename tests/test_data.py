"""Data input: formats, label detection, splits, and clear errors for bad data."""

import numpy as np
import pytest
from click.testing import CliRunner

from qconvert.cli import cli
from qconvert.errors import DataError
from qconvert.train.data import check_fits_model, label_kind, load_data


def _xy(n=40, d=16, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    return rng.normal(size=(n, d)).astype("float32"), labels, np.eye(classes, dtype="float32")[labels]


def test_npz_with_all_splits(tmp_path):
    x, _, y = _xy()
    path = tmp_path / "d.npz"
    np.savez(path, X_train=x[:20], y_train=y[:20], X_val=x[20:30], y_val=y[20:30], X_test=x[30:], y_test=y[30:])
    data = load_data(path)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (20, 10, 10)
    assert data.label_kind == "onehot" and data.n_classes == 5
    assert data.eval_split[0] == "test"
    np.testing.assert_array_equal(data.x_val, x[20:30])


def test_validation_split_is_held_out_with_the_seed(tmp_path):
    x, ints, _ = _xy(n=100)
    path = tmp_path / "d.npz"
    np.savez(path, X_train=x, y_train=ints)
    a, b = load_data(path, seed=3), load_data(path, seed=3)
    assert len(a.x_val) == 25 and len(a.x_train) == 75  # the seed's 0.25
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(a.x_val, load_data(path, seed=4).x_val)
    assert a.label_kind == "integer" and a.eval_split[0] == "validation"
    assert sorted(map(tuple, np.concatenate([a.x_train, a.x_val]))) == sorted(map(tuple, x))  # nothing lost


def test_npy_pair_and_csv(tmp_path):
    x, ints, y = _xy(n=30, d=3)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "y.npy", y)
    pair = load_data(f"{tmp_path / 'X.npy'},{tmp_path / 'y.npy'}")
    assert pair.label_kind == "onehot" and pair.x_train.shape[1:] == (3,)
    csv_path = tmp_path / "d.csv"
    lines = ["a,b,label,c"] + [f"{r[0]},{r[1]},{lbl},{r[2]}" for r, lbl in zip(x, ints)]
    csv_path.write_text("\n".join(lines) + "\n")
    data = load_data(csv_path)
    assert data.label_kind == "integer" and data.x_train.shape[1:] == (3,)
    full = np.concatenate([data.x_train, data.x_val])
    assert sorted(map(tuple, np.round(full, 5))) == sorted(map(tuple, np.round(x[:, [0, 1, 2]], 5)))


def test_label_kinds():
    assert label_kind(np.eye(3)[[0, 2, 1]]) == "onehot"
    assert label_kind(np.array([0, 2, 1])) == "integer"
    assert label_kind(np.array([[0.5], [1.2]])) == "values"


@pytest.mark.parametrize(
    "arrays, needle",
    [
        ({"X_train": np.zeros((0, 4)), "y_train": np.zeros((0,))}, "empty"),
        ({"X_train": np.zeros((5, 4)), "y_train": np.zeros((4,))}, "5 samples but 4 labels"),
        ({"X_train": np.array([[0.0, np.nan]] * 8), "y_train": np.zeros(8)}, "NaN"),
        ({"X_train": np.zeros((8, 4))}, "needs X_train and y_train"),
        ({"X_train": np.zeros((8, 4)), "y_train": np.zeros(8), "X_val": np.zeros((2, 4))}, "must come together"),
        ({"X_train": np.zeros((8, 4)), "y_train": np.zeros(8), "X_val": np.zeros((2, 3)), "y_val": np.zeros(2)}, "shape"),
    ],
)
def test_bad_npz_raises_a_clear_data_error(tmp_path, arrays, needle):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=needle):
        load_data(path)


def test_unreadable_and_missing_files(tmp_path):
    garbage = tmp_path / "x.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load_data(garbage)
    with pytest.raises(DataError, match="no such data file"):
        load_data(tmp_path / "missing.npz")
    with pytest.raises(DataError, match="unsupported data format"):
        load_data(_touch(tmp_path / "x.parquet"))


def _touch(path):
    path.write_bytes(b"")
    return path


def test_fit_against_the_model():
    x, _, y = _xy(n=20, d=16)
    from qconvert.train.data import Dataset

    data = Dataset("d", x, y, x, y)
    check_fits_model(data, (None, 16), 5)
    with pytest.raises(DataError, match=r"samples have shape \(16,\), the model takes \(8,\)"):
        check_fits_model(data, (None, 8), 5)
    with pytest.raises(DataError, match="5 classes, the model outputs 3"):
        check_fits_model(data, (None, 16), 3)
    values = Dataset("d", x, np.linspace(0, 1, 20), x, np.linspace(0, 1, 20), label_kind="values")
    check_fits_model(values, (None, 16), 1)  # one output: a regression target
    with pytest.raises(DataError, match=r"not class indices \(0.0526316 at sample 1\).*integer classes 0..4"):
        check_fits_model(values, (None, 16), 5)


def test_cli_bad_data_exits_2_and_writes_nothing(tmp_path, request):
    from models import seed_fp32

    model = tmp_path / "m.keras"
    seed_fp32().save(model)
    rules = request.config.rootpath / "rules" / "6bit.yaml"
    cases = {}
    wrong_shape = tmp_path / "wrong_shape.npz"
    np.savez(wrong_shape, X_train=np.zeros((8, 4)), y_train=np.eye(5)[[0] * 8])
    cases[wrong_shape] = "the model takes (16,)"
    nans = tmp_path / "nans.npz"
    np.savez(nans, X_train=np.full((8, 16), np.nan), y_train=np.eye(5)[[0] * 8])
    cases[nans] = "NaN"
    unreadable = tmp_path / "unreadable.npz"
    unreadable.write_text("garbage")
    cases[unreadable] = "cannot read"
    halves = tmp_path / "halves.npz"  # 0.5, 1.5, ...: one number per jet for a 5-class model, not class indices
    np.savez(halves, X_train=np.zeros((8, 16)), y_train=np.arange(8) % 5 + 0.5)
    cases[halves] = "labels are not class indices"
    for data, needle in cases.items():
        before = sorted(p.name for p in tmp_path.iterdir())
        result = CliRunner().invoke(cli, [str(model), "-r", str(rules), "--data", str(data), "--epochs", "1"])
        assert result.exit_code == 2, result.output
        assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == before
    usage = CliRunner().invoke(cli, [str(model), "-r", str(rules), "--epochs", "2"])
    assert usage.exit_code == 2 and "--epochs needs --data" in usage.output


@pytest.mark.parametrize("test_right, warned", [(0.5, True), (1.0, False)])
def test_a_validation_split_far_above_the_test_split_is_questioned(tmp_path, test_right, warned):
    """Labels made from the model's own predictions: validation rows all right, test rows right at ``test_right``."""
    import json

    from kit import run_cli
    from models import random_inputs, seed_fp32

    model = seed_fp32()
    model_path = tmp_path / "m.keras"
    model.save(model_path)
    x = random_inputs(model, 600, seed=1)
    predicted = model.predict(x, verbose=0).argmax(axis=1)
    wrong = (predicted + 1) % 5
    n_right = int(200 * test_right)
    y_test = np.concatenate([predicted[400:400 + n_right], wrong[400 + n_right:]])
    np.savez(tmp_path / "d.npz", X_train=x[:200], y_train=predicted[:200], X_val=x[200:400], y_val=predicted[200:400],
             X_test=x[400:], y_test=y_test)
    result = run_cli(model_path, "-r", "6bit", "--data", tmp_path / "d.npz", "-o", tmp_path / "q.keras",
                     "--report", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    accuracy = json.loads((tmp_path / "r.json").read_text())["accuracy"]
    assert accuracy["fp32_validation"] == 1.0 and accuracy["fp32"] == pytest.approx(test_right)
    assert ("warning" in accuracy) == warned
    assert ("may have been trained or chosen on validation rows" in " ".join(result.stdout.split())) == warned
