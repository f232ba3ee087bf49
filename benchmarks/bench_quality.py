"""Accuracy per EBOP, side by side: qconvert's routes against HGQ2 0.2 on the same data, split and network.

    python benchmarks/bench_quality.py [--data jets.npz] [--digits] [--stand-in]
        [--routes fp32,6bit,6bit-pruned,hgq2,target,search] [--seeds 3] [--epochs 100] [--fp32-epochs 200]
        [--hgq2-epochs 300] [--betas 1e-6,1e-5,3e-5] [--targets auto] [--trials 40] [--search-epochs 20] [-j 2]
        [--quick] [--out DIR] [--qconvert-src CHECKOUT] [--venv DIR]

Data: ``--data`` (default ``examples/jet_tagging/jets_pythia.npz``, the simulated jets: 16 features, 5 classes,
its own train/validation/test split; the case is named after the file); ``--stand-in`` takes the synthetic
stand-in (``examples/jet_tagging/make_model.py``, 20k/10k/10k) instead; ``--digits`` adds scikit-learn's
digits (64 features, 10 classes, ``qconvert.demo.digits_dataset``'s 60/20/20 split; ``--data none
--digits``: digits alone). Every route of a case sees the same split; labels may be one-hot or integer.

The network is the seed's: inputs → 64 → 32 → 32 → classes (ReLU, softmax), layers ``fc1``, ``fc2``, ``fc3``,
``output``. Per seed (``--seeds``, 0, 1, 2, ...):

* ``fp32``: that network trained in FP32 (Adam 1e-3, the main job's automatic batch size, up to
  ``--fp32-epochs`` with early stopping on the validation loss, best weights kept); saved, it is the input
  of every qconvert route of that seed. EBOPs by ``qconvert.model.cost`` (float counts 32 bits).
* ``6bit`` / ``6bit-pruned``: the main job, ``qconvert FP32 --rules rules/6bit.yaml`` (resp.
  ``rules/6bit-pruned.yaml``: 75 % of every kernel's weights pruned to zero by magnitude during QAT)
  ``--data D --epochs E --seed S --report r.json``; test accuracy and EBOPs from the report
  (``accuracy.qat``, ``totals.ebops``).
* ``target``: the main job with ``--target-ebops N`` from ``--target-rules`` (default
  ``rules/8bit-auto.yaml``: the starting, largest precisions), for each N of ``--targets``; ``auto``: the
  mean EBOPs of each HGQ2 point of the case, by HGQ2's count and by value (below), and 1/20 of the uniform
  6-bit model's (the issue's targets).
* ``search``: ``qconvert search FP32 --rules SPACE`` (``examples/search/jet_tagger_space.yaml``, digits:
  ``digits_mlp_space.yaml``) ``--trials T --epochs E' -j J --seed S --reference none``; its Pareto front
  (by validation accuracy), each point's test accuracy and EBOPs from ``search.json``. Fronts of
  different seeds are pooled: the table and plot show the Pareto front of all their points (each
  point's seed is in the JSON), the wall time is a search's.
* ``hgq2``: HGQ2 0.2 (``benchmarks/hgq2_route.py``) at each β of ``--betas``, in the benchmark's own
  virtual environment (``--venv``, default ``benchmarks/.venv-hgq2``, made when missing: ``python -m venv``,
  ``pip install hgq2==0.2.0 jax jaxlib``; never qconvert's, as HGQ2 ships a top-level ``qkeras`` of its
  own). EBOPs by HGQ2's own count after its final ``trace_minmax`` (each weight at its declared width); the
  same model counted by value (each weight at the bits its value needs: qconvert's count of its own models,
  ``qconvert.model.cost.value_bits``) in the note and the JSON (``ebops_values``); JAX backend; batch size
  the main job's; ``--hgq2-epochs``.

A route that fails (a missing option, an error of the command) is a failed row with its one-line error,
never the end of the benchmark. Per route: mean test accuracy and EBOPs over the seeds that succeeded,
the wall time and CPU time of one run (mean over seeds; CPU = user + system of the route's processes, less
sensitive than wall time to other load on the machine). Printed: one table (rich); written to ``--out``
(default: a new temporary folder): ``bench_quality.png`` (test accuracy vs EBOPs, log x: qconvert's
points and search front, HGQ2's front, FP32 as a line; one panel per case) and ``bench_quality.json``
(every run, every aggregate, the checks, the settings and the versions). Below the table, issue 19's
checks on the means: the cheapest ``--target-ebops`` model within 0.5 pp of FP32 against 1/20 of the
uniform 6-bit model's EBOPs; at each HGQ2 point's EBOPs, the most accurate qconvert model with no more
EBOPs, its accuracy gap (goal >= -0.3 pp) and its wall time against HGQ2's (goal <= 3x); and the same at
the HGQ2 point's count by value.

``--qconvert-src``: the checkout whose qconvert the routes run (default this one), e.g. a branch's
worktree with a flag this one lacks. ``--quick``: one seed, 2 QAT epochs, 10 FP32 epochs, 3 HGQ2 epochs,
4 search trials of 2 epochs: a smoke test of every route, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quality_report import aggregate, checks, plot, render
from quality_routes import (
    QCONVERT_SRC,
    ROOT,
    RouteError,
    Run,
    _one_line,
    batch_size,
    hgq2,
    hgq2_python,
    hgq2_versions,
    load_split,
    main_job,
    search,
    train_fp32,
    write_case,
)

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
JETS = ROOT / "examples" / "jet_tagging" / "jets_pythia.npz"
HGQ2_VENV = ROOT / "benchmarks" / ".venv-hgq2"
ROUTES = ("fp32", "6bit", "6bit-pruned", "hgq2", "target", "search")
PRESETS = {"6bit": ("uniform 6-bit", ROOT / "rules" / "6bit.yaml"),
           "6bit-pruned": ("6-bit + 75 % pruned", ROOT / "rules" / "6bit-pruned.yaml")}


# --- the benchmark --------------------------------------------------------------------------------------
def attempt(runs: list[Run], case: str, route: str, label: str, seed: int, fn: Any) -> list[Run]:
    """``fn()`` (a Run or a list of them) appended to ``runs``; a failure becomes a failed Run with one line."""
    print(f"  {case} · {label} · seed {seed} ...", end="", flush=True)
    try:
        out = fn()
        new = out if isinstance(out, list) else [out]
        print(f" {new[0].wall_s:.0f} s")
    except Exception as exc:  # every route's failure is a row, never the end of the benchmark
        message = str(exc) if isinstance(exc, RouteError) else f"{type(exc).__name__}: {_one_line(str(exc))}"
        if not isinstance(exc, RouteError):
            traceback.print_exc(limit=3)
        new = [Run(case, route, label, seed, error=message)]
        print(f" FAILED: {message}")
    runs.extend(new)
    return new


def run_case(case: str, args: argparse.Namespace, folder: Path) -> list[Run]:
    folder.mkdir(parents=True, exist_ok=True)
    data = write_case(case, folder, Path(args.data))
    split = load_split(data)
    batch = batch_size(split)
    runs: list[Run] = []
    seeds = list(range(args.seeds))
    models = {s: folder / f"fp32_s{s}.keras" for s in seeds}
    for seed in seeds:  # the FP32 model is every qconvert route's input: trained whether or not it is shown
        attempt(runs, case, "fp32", "FP32", seed, lambda s=seed: train_fp32(case, split, s, args.fp32_epochs, models[s]))
    for route in ("6bit", "6bit-pruned"):
        if route in args.routes:
            label, rules = PRESETS[route]
            for seed in seeds:
                attempt(runs, case, route, label, seed, lambda s=seed, r=route, lb=label, ru=rules: main_job(
                    case, r, lb, s, models[s], data, folder, args.epochs, ru))
    if "hgq2" in args.routes:
        for beta in args.betas:
            for seed in seeds:
                attempt(runs, case, "hgq2", f"HGQ2 β={beta:g}", seed, lambda s=seed, b=beta: hgq2(
                    case, b, s, data, folder, hgq2_python(Path(args.venv)), args.hgq2_epochs, batch, args.hgq2_lr))
    if "target" in args.routes:
        for target in targets(args.targets, runs):
            label = f"target ≤ {target:,}"
            for seed in seeds:
                attempt(runs, case, "target", label, seed, lambda s=seed, t=target, lb=label: main_job(
                    case, "target", lb, s, models[s], data, folder, args.epochs, Path(args.target_rules),
                    ("--target-ebops", str(t)), target=t))
    if "search" in args.routes:
        for seed in seeds:
            attempt(runs, case, "search", "search front", seed, lambda s=seed: search(case, s, models[s], data, folder, args))
    return runs


def targets(spec: str, runs: list[Run]) -> list[int]:
    """``--targets``: numbers, or ``auto``: each HGQ2 point's mean EBOPs, by HGQ2's count and by value (as qconvert
    counts its own models), and 1/20 of the uniform 6-bit model's."""
    if spec != "auto":
        return [int(float(t)) for t in spec.split(",") if t]
    out = [int(row[key]) for row in aggregate(runs) if row["route"] == "hgq2"
           for key in ("ebops", "ebops_values") if row.get(key)]
    six = [row["ebops"] for row in aggregate(runs) if row["route"] == "6bit" and row["ebops"]]
    if six:
        out.append(int(six[0] / 20))
    return sorted(set(out)) or [10_000]  # neither ran


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(JETS), help="the jets .npz (default: %(default)s); none: digits only")
    p.add_argument("--stand-in", action="store_true", help="the synthetic stand-in instead of --data")
    p.add_argument("--digits", action="store_true", help="scikit-learn's digits as a second case")
    p.add_argument("--routes", default=",".join(ROUTES), help="a subset of %(default)s")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    p.add_argument("--epochs", type=int, default=100, help="QAT epochs of the main-job routes")
    p.add_argument("--fp32-epochs", type=int, default=200, help="most FP32 epochs (early stopping, patience 20)")
    p.add_argument("--hgq2-epochs", type=int, default=300)
    p.add_argument("--hgq2-lr", type=float, default=5e-3, help="HGQ2's Adam learning rate (its example's)")
    p.add_argument("--betas", default="1e-6,1e-5,3e-5")
    p.add_argument("--targets", default="auto", help="EBOPs targets, comma-separated, or auto")
    p.add_argument("--target-rules", default=str(ROOT / "rules" / "8bit-auto.yaml"))
    p.add_argument("--trials", type=int, default=40, help="search trials")
    p.add_argument("--search-epochs", type=int, default=20, help="QAT epochs of a search trial")
    p.add_argument("-j", "--jobs", type=int, default=2, help="search workers")
    p.add_argument("--qconvert-src", default=str(ROOT),
                   help="the checkout whose qconvert the routes run (default: this one; e.g. another branch's worktree)")
    p.add_argument("--venv", default=str(HGQ2_VENV), help="HGQ2's virtual environment (made when missing)")
    p.add_argument("--quick", action="store_true", help="1 seed, few epochs, 4 trials: a smoke test (explicit options win)")
    p.add_argument("--out", help="outputs here (default: a new temporary folder)")
    if p.parse_known_args(argv)[0].quick:  # new defaults: options given explicitly still win
        p.set_defaults(seeds=1, epochs=2, fp32_epochs=10, hgq2_epochs=3, trials=4, search_epochs=2)
    args = p.parse_args(argv)
    args.routes = [r for r in args.routes.split(",") if r]
    unknown = sorted(set(args.routes) - set(ROUTES))
    if unknown:
        p.error(f"unknown routes {unknown}; choose from {','.join(ROUTES)}")
    args.betas = [float(b) for b in args.betas.split(",") if b]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    QCONVERT_SRC[0] = Path(args.qconvert_src).resolve()
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_quality_"))
    folder.mkdir(parents=True, exist_ok=True)
    first = [] if args.data == "none" else ["stand-in"] if args.stand_in else [Path(args.data).stem]
    if first and not args.stand_in and not Path(args.data).exists():
        sys.exit(f"{args.data}: no such file (the simulated jets: examples/jet_tagging/simulate.py); "
                 "give --data, --stand-in, or --data none --digits")
    cases = first + (["digits"] if args.digits else [])
    if not cases:
        sys.exit("nothing to run: --data none without --digits")
    start = time.perf_counter()
    runs: list[Run] = []
    for case in cases:
        runs += run_case(case, args, folder / case)
    rows = aggregate(runs)
    render(rows, args)
    plot(rows, runs, folder / "bench_quality.png")
    import keras

    settings = {k: v for k, v in vars(args).items()}
    versions = {"keras": keras.__version__, "python": sys.version.split()[0]}
    if "hgq2" in args.routes and (Path(args.venv) / "bin" / "python").exists():
        versions["hgq2_venv"] = hgq2_versions(Path(args.venv) / "bin" / "python")
    document = {"settings": settings, "cases": cases, "wall_s": time.perf_counter() - start, "versions": versions,
                "rows": rows, "checks": checks(rows), "runs": [asdict(r) for r in runs]}
    out = folder / "bench_quality.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, default=str) + "\n")
    tmp.replace(out)
    print(f"plot {folder / 'bench_quality.png'}; figures {out}; {time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
