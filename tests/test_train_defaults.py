"""Training defaults that fit the data, the convergence verdict, and distillation."""

import json
from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

import qconvert
from qconvert.cli import cli
from qconvert.demo import preset
from qconvert.train.distill import DistillationLoss, pack_targets
from qconvert.train.qat import Distill, TrainOptions, assess_convergence, fine_tune, resolve_batch_size, resolve_lr


@pytest.mark.parametrize("rows, expected", [(1077, 32), (1257, 32), (100, 16), (40_000, 1024), (500_000, 1024),
                                            (8_000, 128)])
def test_automatic_batch_size_gives_enough_steps_and_keeps_the_seeds_1024(rows, expected):
    assert resolve_batch_size(None, rows) == expected
    assert resolve_batch_size(77, rows) == 77  # the user's choice wins
    if expected < 1024 and expected > 16:
        assert rows / expected >= 32


def test_learning_rate_scales_with_the_square_root_of_the_batch():
    assert resolve_lr(None, 1024) == pytest.approx(1e-4)  # the seed's case is unchanged
    assert resolve_lr(None, 256) == pytest.approx(2e-4)
    assert resolve_lr(3e-3, 32) == 3e-3


def test_convergence_verdicts():
    falling = {"val_loss": [1.0 - 0.02 * i for i in range(30)]}
    flat = {"val_loss": [1.0 - 0.02 * i for i in range(10)] + [0.8] * 20}
    assert assess_convergence(falling, 100, False)["converged"] is False
    assert "still falling" in assess_convergence(falling, 100, False)["reason"]
    assert assess_convergence(flat, 100, False)["converged"] is True
    few = assess_convergence(flat, 1, False)
    assert few["converged"] is False and "30 optimizer steps" in few["reason"] and "--batch-size" in few["advice"]
    assert assess_convergence(falling, 100, True)["converged"] is True  # early stopping: it stopped improving


def test_distillation_loss_is_cross_entropy_plus_the_softened_kl():
    import keras

    labels = np.array([[1.0, 0, 0], [0, 1.0, 0]], "float32")
    teacher = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], "float32")
    student = np.array([[0.5, 0.3, 0.2], [0.2, 0.6, 0.2]], "float32")
    t, alpha = 2.0, 0.25
    loss = DistillationLoss(3, temperature=t, alpha=alpha)
    got = float(loss(pack_targets(labels, "onehot", teacher), student))

    def soften(p):
        q = p ** (1 / t)
        return q / q.sum(axis=1, keepdims=True)

    ce = -np.log(student[labels.astype(bool)])
    kl = np.sum(soften(teacher) * (np.log(soften(teacher)) - np.log(soften(student))), axis=1)
    assert got == pytest.approx(float(np.mean((1 - alpha) * ce + alpha * t * t * kl)), rel=1e-5)
    assert keras.losses.deserialize(keras.losses.serialize(loss)).get_config() == loss.get_config()


@pytest.fixture(scope="module")
def fp32(digits_fp32):
    return digits_fp32


def test_distilled_qat_trains_and_resumes_from_its_checkpoint(digits, fp32, tmp_path):
    options = TrainOptions(epochs=2, seed=0, verbose=0, distill=Distill(), checkpoint_dir=tmp_path / "ckpt")
    qmodel, _ = qconvert.convert(fp32, preset("4bit"))
    qmodel, first = fine_tune(qmodel, digits, options, teacher=fp32)
    assert first.distill == {"temperature": 2.0, "alpha": 0.5} and len(first.history["accuracy"]) == 2
    assert all(np.isfinite(first.history["val_loss"]))
    _resumed_model, resumed = fine_tune(qconvert.convert(fp32, preset("4bit"))[0], digits,
                                       TrainOptions(epochs=3, seed=0, verbose=0, distill=Distill(),
                                                    checkpoint_dir=tmp_path / "ckpt", resume=True), teacher=fp32)
    assert resumed.resumed_from == 2 and resumed.epochs_run == 3


def test_distill_needs_class_labels():
    from qconvert.errors import DataError

    with pytest.raises(DataError, match="class labels"):
        pack_targets(np.array([0.3, 1.7]), "values", np.zeros((2, 3), "float32"))


def test_cli_prints_the_chosen_batch_size_and_the_verdict(digits, fp32, tmp_path):
    fp32.save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", X_train=digits.x_train, y_train=digits.y_train, X_val=digits.x_val, y_val=digits.y_val)
    report = tmp_path / "r.json"
    res = CliRunner().invoke(cli, [str(tmp_path / "m.keras"), "--rules", "6bit", "--data", str(tmp_path / "d.npz"),
                                   "--epochs", "2", "-o", str(tmp_path / "q.keras"), "--report", str(report),
                                   "--resume"])  # nothing to resume: said, then trained from the start
    assert res.exit_code == 0, res.output
    assert "batch size 32, lr 0.000566" in res.output and "not converged: only 68 optimizer steps" in res.output
    assert "QAT: --resume: no checkpoint in" in res.output and "trained from the start" in res.output
    training = json.loads(report.read_text())["training"]
    assert training["resumed_from"] == 0 and training["resume_note"].startswith("--resume: no checkpoint in")
    assert training["batch_size"] == 32 and training["optimizer_steps"] == 68
    assert training["convergence"]["converged"] is False
    res = CliRunner().invoke(cli, [str(tmp_path / "m.keras"), "--rules", "6bit", "--distill"])
    assert res.exit_code == 2 and "--distill needs --epochs" in res.output


def test_resume_with_other_settings_is_refused_in_one_line(digits, fp32, tmp_path):
    from qconvert.errors import DataError

    ckpt = tmp_path / "ckpt"
    qmodel, _ = qconvert.convert(fp32, preset("4bit"))
    fine_tune(qmodel, digits, TrainOptions(epochs=1, seed=0, verbose=0, distill=Distill(), checkpoint_dir=ckpt), teacher=fp32)
    for other, words in ((TrainOptions(epochs=2, verbose=0, checkpoint_dir=ckpt, resume=True), "--distill with T=2, alpha=0.5"),
                         (TrainOptions(epochs=2, verbose=0, checkpoint_dir=ckpt, resume=True, distill=Distill(), lr=0.01),
                          "--lr")):
        with pytest.raises(DataError, match=r"delete .* to start over") as err:
            fine_tune(qconvert.convert(fp32, preset("4bit"))[0], digits, other, teacher=fp32)
        assert words in str(err.value)


def test_binary_sigmoid_model_with_0_1_labels_evaluates():
    import keras

    from qconvert.train.data import Dataset
    from qconvert.train.qat import evaluate

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    data = Dataset("b", x, y, x, y, label_kind="integer")
    metrics = evaluate(model, data, x, y, "binary_crossentropy")
    # the oracles: Keras's own binary cross-entropy and the thresholded predictions
    p = model.predict(x, verbose=0)[:, 0]
    assert metrics.accuracy == pytest.approx(np.mean((p > 0.5) == (y > 0.5)))
    expected_loss = float(keras.losses.binary_crossentropy(y[:, None], p[:, None]).numpy().mean())
    assert metrics.loss == pytest.approx(expected_loss, rel=1e-4)


def test_ctrl_c_names_the_checkpoint_and_resume_continues_from_it(digits, fp32, tmp_path):
    """Ctrl-C (a KeyboardInterrupt inside Keras's fit) becomes one message naming the checkpoint and --resume; the
    CLI prints it and exits 130. Resuming continues from the last finished epoch."""
    import keras

    from qconvert.errors import Interrupted

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    ckpt = tmp_path / "ckpt"
    options = TrainOptions(epochs=3, seed=0, verbose=0, checkpoint_dir=ckpt)
    with pytest.raises(Interrupted) as caught:
        fine_tune(qconvert.convert(fp32, preset("4bit"))[0], digits, options, callbacks=[CtrlC()])
    assert str(caught.value) == (f"QAT interrupted during epoch 2 of 3; the checkpoint in {ckpt} holds epoch 1: "
                                 "run the same command with --resume to continue")
    _, resumed = fine_tune(qconvert.convert(fp32, preset("4bit"))[0], digits, replace(options, resume=True))
    assert resumed.resumed_from == 1 and resumed.epochs_run == 3
    assert resumed.resume_note == f"resumed from epoch 1 of the checkpoint in {ckpt}"


@pytest.mark.parametrize("distill", [None, Distill()])
def test_training_state_made_before_fit_trains_as_keras_alone(digits, distill):
    """compile_for_training creates Adam's and the metrics' variables before fit (so TensorFlow traces the
    training step once, not twice); the oracle is the same model compiled without that step: after two epochs
    the weights and the history are the same bit for bit."""
    import keras

    from qconvert.demo import digits_mlp
    from qconvert.train.compiled import compile_for_training
    from qconvert.train.distill import distill_accuracy

    options = TrainOptions(epochs=2, lr=1e-3, batch_size=64, distill=distill)
    y = digits.y_train if distill is None else pack_targets(digits.y_train, "onehot", np.full_like(digits.y_train, 0.1))
    runs = []
    for made_up_front in (False, True):
        keras.utils.set_random_seed(0)
        model = digits_mlp(0)
        if made_up_front:
            compile_for_training(model, options, "categorical_crossentropy", 1, (digits.x_train, y))
            assert model.optimizer.built and all(float(v.numpy()) == 0 for m in model.metrics for v in m.variables)
        else:  # the same compile, its variables left to fit
            loss = ("categorical_crossentropy" if distill is None else
                    DistillationLoss(10, distill.temperature, distill.alpha, from_logits=False))
            metrics = ["accuracy"] if distill is None else [keras.metrics.MeanMetricWrapper(distill_accuracy, name="accuracy")]
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=metrics)
            assert not model.optimizer.built
        history = model.fit(digits.x_train, y, epochs=2, batch_size=64, shuffle=False, verbose=0).history
        runs.append((model.get_weights(), history))
    for a, b in zip(runs[0][0], runs[1][0]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][1] == runs[1][1] and set(runs[0][1]) == {"loss", "accuracy"}
