"""The routes of ``bench_quality.py``: the data and the FP32 network, qconvert's commands, HGQ2's.

A route run is a :class:`Run` (or a list of them: a search's front); a failure raises :class:`RouteError`
with its one-line reason. Imported by bench_quality.py (benchmarks/ is run as scripts: the script's folder
is first on the path); nothing here imports Keras before it is called.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "jet_tagging"))
HGQ2_SCRIPT = ROOT / "benchmarks" / "hgq2_route.py"
HGQ2_PACKAGES = ["hgq2==0.2.0", "jax", "jaxlib"]
JET_SPACE = ROOT / "examples" / "search" / "jet_tagger_space.yaml"
DIGITS_SPACE = ROOT / "examples" / "search" / "digits_mlp_space.yaml"


@dataclass
class Run:
    """One run of one route on one seed (or one point of a search's front). ``error``: why it failed."""

    case: str
    route: str
    label: str
    seed: int
    test_accuracy: float | None = None
    ebops: float | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RouteError(Exception):
    """A route failed; the message is its one-line reason."""


# --- data and the FP32 network ------------------------------------------------------------------------
def write_case(case: str, folder: Path, data: Path) -> Path:
    """The case's .npz (train/val/test): ``data`` itself, or the stand-in / digits written to ``folder``."""
    import numpy as np

    if case not in ("stand-in", "digits"):
        return data
    if case == "stand-in":
        from make_model import write_stand_in

        return Path(write_stand_in(str(folder / "stand_in.npz"), seed=0))
    from qconvert.demo import digits_dataset

    d = digits_dataset(seed=0)
    path = folder / "digits.npz"
    np.savez(path, X_train=d.x_train, y_train=d.y_train, X_val=d.x_val, y_val=d.y_val, X_test=d.x_test, y_test=d.y_test)
    return path


def load_split(path: Path) -> dict[str, Any]:
    import numpy as np

    with np.load(path) as npz:
        return {k: npz[k] for k in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")}


def n_classes(split: dict[str, Any]) -> int:
    y = split["y_train"]
    return int(y.shape[1]) if y.ndim == 2 and y.shape[1] > 1 else int(max(split[k].max() for k in ("y_train", "y_val", "y_test"))) + 1


def network(n_in: int, n_out: int) -> Any:
    """The seed's jet tagger, inputs → 64 → 32 → 32 → classes (examples/jet_tagging/make_model.py)."""
    import keras

    return keras.Sequential([
        keras.Input((n_in,)),
        keras.layers.Dense(64, activation="relu", name="fc1"),
        keras.layers.Dense(32, activation="relu", name="fc2"),
        keras.layers.Dense(32, activation="relu", name="fc3"),
        keras.layers.Dense(n_out, activation="softmax", name="output"),
    ], name="fp32")


def batch_size(split: dict[str, Any]) -> int:
    from qconvert.train.qat import resolve_batch_size

    return resolve_batch_size(None, len(split["X_train"]))


def train_fp32(case: str, split: dict[str, Any], seed: int, epochs: int, path: Path) -> Run:
    """The FP32 model of a seed, saved to ``path``; its test accuracy and EBOPs."""
    import keras
    import numpy as np

    from qconvert.model.cost import model_cost

    start, cpu = time.perf_counter(), time.process_time()
    keras.utils.set_random_seed(seed)
    onehot = split["y_train"].ndim == 2 and split["y_train"].shape[1] > 1
    model = network(split["X_train"].shape[1], n_classes(split))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"],
                  loss="categorical_crossentropy" if onehot else "sparse_categorical_crossentropy")
    stop = keras.callbacks.EarlyStopping(patience=20, restore_best_weights=True)
    history = model.fit(split["X_train"], split["y_train"], validation_data=(split["X_val"], split["y_val"]),
                        epochs=epochs, batch_size=batch_size(split), callbacks=[stop], verbose=0)
    model.save(path)
    predicted = model.predict(split["X_test"], batch_size=4096, verbose=0).argmax(axis=1)
    truth = split["y_test"].argmax(axis=1) if onehot else split["y_test"].astype(int).ravel()
    ebops = sum(c.ebops for c in model_cost(model).values())
    run = Run(case, "fp32", "FP32", seed, float(np.mean(predicted == truth)), float(ebops),
              time.perf_counter() - start, time.process_time() - cpu,
              extra={"epochs_run": len(history.history["loss"])})
    keras.backend.clear_session()
    return run


# --- subprocesses ---------------------------------------------------------------------------------------
def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith(("I0000", "W0000"))]
    return lines[-1][:300] if lines else "no output"


QCONVERT_SRC = [ROOT]  # the checkout whose qconvert the routes run (--qconvert-src)


def qconvert_env() -> dict[str, str]:
    """This process's environment, with the routes' qconvert checkout first on the path; no bytecode written
    there (it may be another branch's worktree)."""
    path = os.pathsep.join(filter(None, [str(QCONVERT_SRC[0]), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


def hgq2_env() -> dict[str, str]:
    """The environment of HGQ2's processes: the JAX backend, nothing of qconvert's on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "KERAS_BACKEND": "jax"}


def command(args: list[str], log: Path, env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Run ``args`` in ``cwd``; (wall s, CPU s, stdout). Output is kept in ``log``; a failure raises RouteError
    with the command's last line of output (qconvert's one-line error)."""
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    log.write_text(f"$ {' '.join(args)}\n# exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    if proc.returncode not in (0, 1):
        raise RouteError(f"exit {proc.returncode}: {_one_line(proc.stderr or proc.stdout)}")
    return wall, cpu, proc.stdout


def qconvert(args: list[str], log: Path) -> tuple[float, float]:
    # In the checkout: ``python -m`` puts the working directory first on the path.
    wall, cpu, _ = command([sys.executable, "-m", "qconvert", *args], log, qconvert_env(), QCONVERT_SRC[0])
    return wall, cpu


def main_job(case: str, route: str, label: str, seed: int, model: Path, data: Path, folder: Path, epochs: int,
             rules: Path, extra_args: tuple[str, ...] = (), target: int | None = None) -> Run:
    """``qconvert MODEL --rules R --data D --epochs E --seed S [extra] --report r.json``: test accuracy, EBOPs."""
    name = f"{route}{'_' + extra_args[-1] if extra_args else ''}_s{seed}"
    report = folder / f"{name}.json"
    report.unlink(missing_ok=True)
    wall, cpu = qconvert([str(model), "--rules", str(rules), "--data", str(data), "--epochs", str(epochs),
                          "--seed", str(seed), *extra_args, "-o", str(folder / f"{name}.keras"),
                          "--report", str(report)], folder / f"{name}.log")
    if not report.exists():
        raise RouteError("no report written")
    r = json.loads(report.read_text())
    if r.get("accuracy", {}).get("split") != "test":
        raise RouteError(f"accuracies are on the {r.get('accuracy', {}).get('split')} split, not test")
    return Run(case, route, label, seed, r["accuracy"]["qat"], r["totals"]["ebops"], wall, cpu,
               extra={"fp32": r["accuracy"]["fp32"], "training": {k: r["training"].get(k) for k in
                      ("epochs_run", "batch_size", "lr", "optimizer_steps", "stopped_early")},
                      **({"target": target} if target is not None else {}),
                      **({"target_ebops": r["training"]["target_ebops"]} if "target_ebops" in r.get("training", {}) else {})})


def search(case: str, seed: int, model: Path, data: Path, folder: Path, args: argparse.Namespace) -> list[Run]:
    out = folder / f"search_s{seed}"
    space = DIGITS_SPACE if case == "digits" else JET_SPACE
    wall, cpu = qconvert(["search", str(model), "--rules", str(space), "--data", str(data), "-o", str(out),
                          "--trials", str(args.trials), "--epochs", str(args.search_epochs), "-j", str(args.jobs),
                          "--seed", str(seed), "--reference", "none"], folder / f"search_s{seed}.log")
    result = json.loads((out / "search.json").read_text())
    trials = {t["number"]: t for t in result["trials"]}
    front = [trials[n] for n in result["front"]]
    if not front:
        raise RouteError(f"no finished trial ({result.get('counts')})")
    return [Run(case, "search", "search front", seed, t.get("test_accuracy"), t["ebops"], wall, cpu,
                extra={"trial": t["number"], "val_accuracy": t["val_accuracy"], "params": t.get("params"),
                       "trials": args.trials, "counts": result.get("counts")}) for t in front]


# --- HGQ2 -----------------------------------------------------------------------------------------------
@functools.cache
def hgq2_python(venv: Path) -> Path:
    """The HGQ2 environment's interpreter; the environment is made (venv + pip) when missing or broken."""
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import hgq, jax, keras; assert keras.__version__.startswith('3')"]
    if python.exists() and subprocess.run(check, capture_output=True, env=hgq2_env()).returncode == 0:
        return python
    print(f"making the HGQ2 environment {venv} (pip install {' '.join(HGQ2_PACKAGES)}) ...", flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    for step in ([base, "-m", "venv", "--clear", str(venv)], [str(python), "-m", "pip", "install", "-q", *HGQ2_PACKAGES],
                 check):
        proc = subprocess.run(step, capture_output=True, text=True, env=hgq2_env())
        if proc.returncode:
            raise RouteError(f"making {venv}: {' '.join(step[:4])}: {_one_line(proc.stderr or proc.stdout)}")
    return python


def hgq2_versions(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                         env=hgq2_env())
    return {p["name"]: p["version"] for p in json.loads(out.stdout or "[]")}


def hgq2(case: str, beta: float, seed: int, data: Path, folder: Path, python: Path, epochs: int, batch: int,
         lr: float) -> Run:
    label = f"HGQ2 β={beta:g}"
    wall, cpu, stdout = command([str(python), str(HGQ2_SCRIPT), "--data", str(data), "--beta", repr(beta),
                                 "--epochs", str(epochs), "--seed", str(seed), "--batch-size", str(batch),
                                 "--lr", repr(lr)], folder / f"hgq2_b{beta:g}_s{seed}.log", hgq2_env(),
                                folder)
    r = json.loads(stdout.strip().splitlines()[-1])
    return Run(case, "hgq2", label, seed, r["test_accuracy"], r["ebops"], wall, cpu,
               extra={k: v for k, v in r.items() if k not in ("test_accuracy", "ebops")})
