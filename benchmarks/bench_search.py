"""`qconvert search` on the digits MLP and the jet tagger's stand-in: the front against uniform 6-bit QAT.

    python benchmarks/bench_search.py [--cases mlp,jet] [--trials 40] [--epochs 30] [-j 2]
                                      [--throughput] [--overhead] [--plots DIR] [--out DIR]
    python benchmarks/bench_search.py --converge [--cases jet] [--trials 12] [--epochs 5] [--retrain-epochs 30]
                                      [--pruners dominance,halving] [-j 1]

Per case, through the CLI (the commands a user types):

1. ``qconvert search`` over ``examples/search/<case>_space.yaml`` (per-layer kernel bits and sparsity,
   the activation and input widths, integer bits calibrated), with the reference
   ``6bit + input quantized_bits(16, 6)``: the seed's uniform 6-bit QAT with hls4ml's default 16-bit input
   (ap_fixed<16,6>), measured in the same run with the same epochs and seed;
2. the cheapest front point with validation accuracy >= the reference's - 0.5 pp, its EBOPs against 1/4
   of the reference's;
3. that point's ``front/NN.yaml`` through the main job (``qconvert MODEL --rules front/NN.yaml --data D
   --epochs E --hls4ml DIR``): its test accuracy and EBOPs against the search's, and the hls4ml logits'
   bit-identical fraction.

``--throughput``: the same small study (16 trials, 10 epochs, no early stopping, no reference) with
``-j 1`` and ``-j 2``; trials per hour of each, from the command's wall time and in steady state (from
the study's trial timestamps). ``--overhead``: one trial
(:meth:`qconvert.search.objective.Workbench.run`, ``--epochs`` epochs) against a bare ``model.fit`` of the
same converted model, epochs, batch size and validation data, in one process, median of 3.

``--converge``: per case and per ``--pruners`` kind, a short search (``--trials`` x ``--epochs``), then the same
study continued with ``--resume --retrain-epochs E`` (its front and the reference re-trained through the main job
for E epochs): the front before and after re-training (validation and test accuracy, EBOPs), the chosen point of
each, the wall time of each step, and the chosen re-trained point's ``front/NN.yaml`` command run through the main
job (test accuracy and EBOPs against the search's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "jet_tagging"))
QCONVERT = [sys.executable, "-m", "qconvert"]
REFERENCE = "input: quantized_bits(16, 6)\n"
SPACES = {"mlp": ROOT / "examples" / "search" / "digits_mlp_space.yaml",
          "jet": ROOT / "examples" / "search" / "jet_tagger_space.yaml"}


def write_case(name: str, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """The FP32 model file and the data .npz (train/val/test) of a case."""
    import numpy as np

    if name == "jet":
        from make_model import write_stand_in

        model = ROOT / "examples" / "jet_tagging" / "keras_model_fp32.h5"
        return model, Path(write_stand_in(str(folder / "jet.npz"), seed=seed))
    else:
        from qconvert.demo import digits_dataset, digits_mlp, train_baseline

        data = digits_dataset(seed=seed)
        model = folder / "mlp_fp32.keras"
        train_baseline(digits_mlp(seed), data, seed=seed).save(model)
        split = {"X_train": data.x_train, "y_train": data.y_train, "X_val": data.x_val, "y_val": data.y_val,
                 "X_test": data.x_test, "y_test": data.y_test}
    npz = folder / f"{name}.npz"
    np.savez(npz, **split)
    return model, npz


def reference_rules(folder: Path) -> Path:
    text = (ROOT / "rules" / "6bit.yaml").read_text()
    path = folder / "6bit-in16.yaml"
    path.write_text(text.replace("defaults:", REFERENCE + "defaults:", 1))
    return path


def run(args: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(QCONVERT + args, capture_output=True, text=True)
    if proc.returncode not in (0, 1):
        sys.exit(f"failed ({proc.returncode}): qconvert {' '.join(args)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def front_case(name: str, folder: Path, args: argparse.Namespace) -> None:
    model, npz = write_case(name, folder)
    ref = reference_rules(folder)
    out = folder / f"search_{name}"
    wall = run(["search", str(model), "--rules", str(SPACES[name]), "--data", str(npz), "-o", str(out),
                "--trials", str(args.trials), "--epochs", str(args.epochs), "-j", str(args.jobs),
                "--reference", str(ref)])
    result = json.loads((out / "search.json").read_text())
    reference = next(iter(result["references"].values()))
    trials = {t["number"]: t for t in result["trials"]}
    front = [trials[n] for n in result["front"]]
    counts = result["counts"]
    print(f"\n== {name}: {args.trials} trials x {args.epochs} epochs, -j {args.jobs}: {wall:.0f} s wall "
          f"({', '.join(f'{v} {k.lower()}' for k, v in counts.items())})")
    print(f"FP32            val {result['fp32']['val_accuracy']:.4f}  test {result['fp32']['test_accuracy']:.4f}")
    print(f"6-bit reference val {reference['val_accuracy']:.4f}  test {reference['test_accuracy']:.4f}  "
          f"EBOPs {reference['ebops']:,.0f}")
    print("front (by EBOPs):")
    for i, t in enumerate(front):
        print(f"  {i:02d} trial {t['number']:3d}  val {t['val_accuracy']:.4f}  test {t['test_accuracy']:.4f}  "
              f"EBOPs {t['ebops']:>9,.0f}  ({t['ebops'] / reference['ebops']:.3f} of 6-bit)  {t['params']}")
    ok = [t for t in front if t["val_accuracy"] >= reference["val_accuracy"] - 0.005]
    if not ok:
        print("no front point within 0.5 pp of the 6-bit reference")
        return
    point = ok[0]
    index = front.index(point)
    print(f"cheapest within 0.5 pp of 6-bit (validation): front/{index:02d}.yaml, trial {point['number']}: "
          f"val {100 * (point['val_accuracy'] - reference['val_accuracy']):+.2f} pp, test "
          f"{100 * (point['test_accuracy'] - reference['test_accuracy']):+.2f} pp, EBOPs "
          f"{point['ebops']:,.0f} = 1/{reference['ebops'] / point['ebops']:.1f} of 6-bit "
          f"({'meets' if point['ebops'] <= reference['ebops'] / 4 else 'misses'} the 1/4 target)")
    report = folder / f"main_{name}.json"
    wall = run([str(model), "--rules", str(out / "front" / f"{index:02d}.yaml"), "--data", str(npz), "--epochs",
                str(args.epochs), "--seed", "0", "-o", str(folder / f"main_{name}.keras"), "--report", str(report),
                "--hls4ml", str(folder / f"hls4ml_{name}")])
    main = json.loads(report.read_text())
    hls = main["hls4ml"]
    print(f"main job on front/{index:02d}.yaml ({wall:.0f} s): test accuracy {main['accuracy']['qat']:.4f} "
          f"(search {point['test_accuracy']:.4f}), EBOPs {main['totals']['ebops']:,.0f} (search {point['ebops']:,.0f}, "
          f"{'equal' if main['totals']['ebops'] == point['ebops'] else 'DIFFERENT'}); hls4ml logits bit-identical "
          f"{100 * hls['logits_exact_fraction']:.1f} % of {hls['n_samples']}, limits: {hls['limits'] or 'none'}")
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "pareto.png", Path(args.plots) / f"pareto_{name}.png")


def converge_case(name: str, pruner: str, folder: Path, args: argparse.Namespace) -> None:
    """A short search, then its front re-trained for --retrain-epochs: the figures before and after, timed."""
    model, npz = write_case(name, folder)
    ref = reference_rules(folder)
    out = folder / f"converge_{name}_{pruner}"
    base = ["search", str(model), "--rules", str(SPACES[name]), "--data", str(npz), "-o", str(out),
            "--trials", str(args.trials), "--epochs", str(args.epochs), "-j", str(args.jobs), "--reference", str(ref),
            "--pruner", pruner]
    wall = run(base)
    short = json.loads((out / "search.json").read_text())
    wall_retrain = run([*base, "--resume", "--retrain-epochs", str(args.retrain_epochs)])
    result = json.loads((out / "search.json").read_text())
    trials = {t["number"]: t for t in result["trials"]}
    reference = next(iter(result["references"].values()))
    epochs_run = sum(t.get("epochs_run", 0) for t in short["trials"])
    print(f"\n== {name}, --pruner {pruner}: {args.trials} trials x {args.epochs} epochs, -j {args.jobs}: {wall:.0f} s "
          f"({', '.join(f'{v} {k.lower()}' for k, v in short['counts'].items())}; {epochs_run} of "
          f"{args.trials * args.epochs} trial epochs run); re-training {len(result['search_front'])} front points + "
          f"the reference for {args.retrain_epochs} epochs: {wall_retrain:.0f} s")
    print(f"FP32            val {result['fp32']['val_accuracy']:.4f}  test {result['fp32']['test_accuracy']:.4f}")
    for label, r in (("6-bit reference", reference), (f"  re-trained {args.retrain_epochs}", reference["retrained"])):
        print(f"{label:<16}val {r['val_accuracy']:.4f}  test {r['test_accuracy']:.4f}  EBOPs {r['ebops']:,.0f}")
    print(f"search front ({args.epochs} epochs) -> re-trained ({args.retrain_epochs} epochs), by search EBOPs:")
    for n in result["search_front"]:
        t, r = trials[n], trials[n]["retrained"]
        mark = " front" if n in result["front"] else " (dominated after re-training)"
        print(f"  trial {n:3d}  val {t['val_accuracy']:.4f} -> {r['val_accuracy']:.4f}  test {t['test_accuracy']:.4f} -> "
              f"{r['test_accuracy']:.4f}  EBOPs {t['ebops']:>9,.0f} -> {r['ebops']:>9,.0f}{mark}")
    before, after = trials[short["chosen"]], trials[result["chosen"]]
    print(f"chosen in the search: trial {before['number']} val {before['val_accuracy']:.4f} test "
          f"{before['test_accuracy']:.4f} EBOPs {before['ebops']:,.0f}; after re-training: trial {after['number']} val "
          f"{after['retrained']['val_accuracy']:.4f} test {after['retrained']['test_accuracy']:.4f} EBOPs "
          f"{after['retrained']['ebops']:,.0f}")
    report = folder / f"converge_main_{name}_{pruner}.json"
    wall_main = run([str(model), "--rules", str(out / after["rules_file"]), "--data", str(npz), "--epochs",
                     str(args.retrain_epochs), "--seed", "0", "-o", str(folder / f"converge_{name}_{pruner}.keras"),
                     "--report", str(report)])
    main = json.loads(report.read_text())
    same = (main["accuracy"]["qat"] == after["retrained"]["test_accuracy"]
            and main["totals"]["ebops"] == after["retrained"]["ebops"])
    print(f"main job on {after['rules_file']} ({wall_main:.0f} s): test {main['accuracy']['qat']:.4f}, EBOPs "
          f"{main['totals']['ebops']:,.0f}: {'identical' if same else 'DIFFERENT'} to the re-trained point")
    if args.plots:
        Path(args.plots).mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "pareto.png", Path(args.plots) / f"pareto_{name}_{pruner}_retrained.png")


def throughput(folder: Path) -> None:
    model, npz = write_case("mlp", folder)
    rates = {}
    for jobs in (1, 2):
        out = folder / f"throughput_j{jobs}"
        trials = 16
        wall = run(["search", str(model), "--rules", str(SPACES["mlp"]), "--data", str(npz), "-o", str(out),
                    "--trials", str(trials), "--epochs", "10", "-j", str(jobs), "--reference", "none",
                    "--no-early-stop"])
        steady = _trial_span(out / "study.db")
        rates[jobs] = (trials / wall * 3600, trials / steady * 3600)
        print(f"-j {jobs}: {trials} trials in {wall:.0f} s of command = {rates[jobs][0]:.0f} trials/hour; "
              f"{steady:.0f} s from the first trial's start to the last one's end = {rates[jobs][1]:.0f} trials/hour")
    print(f"throughput -j 2 / -j 1: {rates[2][0] / rates[1][0]:.2f}x by the command's wall time (the workers' start-up "
          f"included), {rates[2][1] / rates[1][1]:.2f}x in steady state (target >= 1.7x)")


def _trial_span(db: Path) -> float:
    """Seconds from the first trial's start to the last trial's end (the study's own timestamps)."""
    import optuna

    study = optuna.load_study(study_name="qconvert-search", storage=f"sqlite:///{db}")
    return (max(t.datetime_complete for t in study.trials) - min(t.datetime_start for t in study.trials)).total_seconds()


def overhead(folder: Path, epochs: int) -> None:
    import keras

    from qconvert.model.calibrate import DEFAULT_ROWS
    from qconvert.pipeline import convert
    from qconvert.rules import load_rules
    from qconvert.search import load_space
    from qconvert.search.objective import SearchSettings, Workbench
    from qconvert.train.compiled import compile_for_training
    from qconvert.train.qat import resolve_batch_size, resolve_lr

    model, npz = write_case("mlp", folder)
    space = load_space(SPACES["mlp"])
    bench = Workbench(SearchSettings(model=str(model), space=str(SPACES["mlp"]), data=str(npz), epochs=epochs), space)
    ruleset = load_rules(reference_rules(folder))
    data, options = bench.dataset, bench.train_options()
    batch = resolve_batch_size(None, len(data.x_train))
    options = type(options)(**{**options.__dict__, "batch_size": batch, "lr": resolve_lr(None, batch)})
    trial_s, fit_s = [], []
    for _ in range(3):
        start = time.perf_counter()
        bench.run(ruleset)
        trial_s.append(time.perf_counter() - start)
        qmodel, _ = convert(bench.model, ruleset, calibration_data=data.calibration_rows(DEFAULT_ROWS))
        compile_for_training(qmodel, options, bench.loss, 1, (data.x_train, data.y_train))
        keras.utils.set_random_seed(0)
        start = time.perf_counter()
        qmodel.fit(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=epochs,
                   batch_size=batch, verbose=0)
        fit_s.append(time.perf_counter() - start)
    t, f = statistics.median(trial_s), statistics.median(fit_s)
    print(f"one trial (convert, calibrate, QAT, evaluate val+test, EBOPs): {t:.2f} s; bare model.fit of the same "
          f"{epochs} epochs: {f:.2f} s; ratio {t / f:.2f}x (target <= 1.2x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="mlp,jet")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--overhead", action="store_true")
    parser.add_argument("--converge", action="store_true", help="short searches, then their fronts re-trained")
    parser.add_argument("--retrain-epochs", type=int, default=30)
    parser.add_argument("--pruners", default="dominance", help="--converge: the --pruner kinds to compare")
    parser.add_argument("--plots", help="copy each case's pareto.png here")
    parser.add_argument("--out", help="keep the outputs here (default: a temporary folder)")
    args = parser.parse_args()
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_search_"))
    folder.mkdir(parents=True, exist_ok=True)
    for name in [c for c in args.cases.split(",") if c]:
        if args.converge:
            for pruner in args.pruners.split(","):
                converge_case(name, pruner, folder, args)
        else:
            front_case(name, folder, args)
    if args.throughput:
        throughput(folder)
    if args.overhead:
        overhead(folder, args.epochs)


if __name__ == "__main__":
    main()
