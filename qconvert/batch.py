"""Many models in one run: find them, convert each in a worker, report.

``qconvert batch DIR|FILES|GLOB --rules R -o OUT`` is :func:`run_batch`:

1. :func:`discover` walks the inputs and judges each file by its content
   (:func:`qconvert.model.load.sniff`): ``.keras`` archives, full-model HDF5
   files and Keras 2 JSON architectures are models; a weights-only ``.h5``
   beside a JSON architecture belongs to it and is not a model of its own (an
   orphan one is reported as skipped); a file with a model suffix and unreadable
   content is a failure found before any worker starts. No Keras import.
2. Each model is converted by :func:`convert_one` (load, plan, rewrite, save
   ``OUT/<relative path>.keras`` atomically with its provenance), in this
   process or in ``jobs`` worker processes (spawned, each importing Keras once).
   Every error a model can cause becomes its result: one bad model never stops
   the rest.
3. The results are a :class:`BatchReport`: a table, JSON (``models`` and
   ``totals``) and a Markdown summary. Exit code 0 when nothing failed, else 1.

``resume`` skips a model whose output exists and records the same rule file
(SHA-256) and the same input (SHA-256). ``verify`` converts the model a second
time with every quantizer a pass-through (same plan, ``float`` quantizers) and
checks that it computes what the FP32 model computes on random inputs.
"""

from __future__ import annotations

import glob
import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .batch_report import BatchReport, ModelResult
from .errors import ModelLoadError, OutputError, QConvertError, SettingsError
from .rules import WEIGHT_ROLES, ActivationPolicy, RuleSet, Settings, as_ruleset
from .runtime import worker_environment

__all__ = [
    "VERIFY_TOLERANCE",
    "BatchOptions",
    "BatchReport",
    "Discovery",
    "ModelJob",
    "ModelResult",
    "convert_one",
    "discover",
    "pass_through",
    "run_batch",
]


#: ``--verify``: the pass-through model may differ from FP32 by this much, relative to the output scale
#: (BatchNormalization folding reorders float arithmetic; nothing else may change an output).
VERIFY_TOLERANCE = 1e-4
_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".json")
_GLOB_CHARS = set("*?[")


# --- data -------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelJob:
    """One model to convert: where it is, how it is stored, where its output goes."""

    path: str
    relative: str
    kind: str  # keras | h5_model | json_model
    output: str
    weights: str | None = None

@dataclass(frozen=True)
class BatchOptions:
    """What every model of a batch shares; picklable, sent to the workers."""

    rules: RuleSet
    safe_mode: bool = True
    custom_objects: tuple[str, ...] = ()
    verify: bool = False


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found: the models to convert (``jobs``), the files judged failed or skipped
    without loading anything (``early``), and the common root the outputs mirror."""

    jobs: tuple[ModelJob, ...]
    early: tuple[ModelResult, ...]  # found failed or skipped without loading anything
    root: str

# --- finding the models ---------------------------------------------------------------
def _expand(inputs: Sequence[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Every (file, base folder) the inputs name: folders walked, globs expanded, files as given."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                found += [(Path(dirpath) / f, path) for f in sorted(filenames) if not f.startswith(".")]
        elif path.is_file():
            found.append((path, path.parent))
        elif _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise ModelLoadError(f"{text}: no file matches")
            parts = Path(text).parts  # the base: the folders before the first wildcard
            fixed = parts[: next(i for i, part in enumerate(parts) if _GLOB_CHARS & set(part))]
            base = Path(*fixed) if fixed else Path(".")
            found += [(Path(m), base) for m in matches if Path(m).is_file()]
        else:
            raise ModelLoadError(f"{text}: no such file or folder")
    return found


def _common_root(bases: Iterable[Path]) -> Path:
    resolved = [b.resolve() for b in bases]
    return Path(os.path.commonpath(resolved)) if resolved else Path.cwd()


def _output_paths(models: list[tuple[Path, str]], out: Path) -> dict[Path, Path]:
    """``OUT/<relative path>.keras``; models that would share one output keep their suffix: ``a.h5.keras``."""
    plain = {path: Path(relative).with_suffix(".keras") for path, relative in models}
    taken: dict[Path, int] = {}
    for target in plain.values():
        taken[target] = taken.get(target, 0) + 1
    return {path: out / (Path(relative + ".keras") if taken[plain[path]] > 1 else plain[path])
            for path, relative in models}


def discover(inputs: Sequence[str | os.PathLike], out: str | os.PathLike) -> Discovery:
    """The models among ``inputs`` (folders, files, globs), judged by content. No Keras import.

    Raises :class:`ModelLoadError` when an input names nothing, or no model is found.
    """
    from .model.load import find_weights, sniff

    out_dir = Path(out).resolve()
    listed = [(f, b) for f, b in _expand(inputs) if not f.resolve().is_relative_to(out_dir)]
    root = _common_root(b for _, b in listed)
    seen: set[Path] = set()
    sniffed: dict[Path, Any] = {}
    for path, _ in listed:
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        if path.suffix.lower() in _MODEL_SUFFIXES:
            sniffed[path] = sniff(path)
    claimed: dict[Path, Path] = {}  # weights file → its JSON architecture
    for path, what in sniffed.items():
        if what.kind == "json_model":
            weights = find_weights(path)
            if weights is not None and sniffed.get(weights) is not None and sniffed[weights].kind == "h5_weights":
                claimed[weights] = path
    models: list[tuple[Path, str]] = []
    early: list[ModelResult] = []
    for path, what in sniffed.items():
        relative = path.resolve().relative_to(root).as_posix()
        if what.kind in ("keras", "h5_model", "json_model"):
            models.append((path, relative))
        elif what.kind == "corrupt":
            early.append(ModelResult(str(path), "failed", error=f"{path}: {what.reason}", kind="corrupt"))
        elif what.kind == "h5_weights" and path not in claimed:
            early.append(ModelResult(str(path), "skipped", kind="h5_weights",
                                     error="weights only, no architecture (no .json beside it claims it)"))
    if not models and not early:
        names = ", ".join(os.fspath(i) for i in inputs)
        raise ModelLoadError(f"{names}: no model files found (.keras, .h5 with a model, Keras 2 .json)")
    outputs = _output_paths(models, Path(out))
    jobs = []
    for path, relative in models:
        kind = sniffed[path].kind
        weights = find_weights(path) if kind == "json_model" else None
        jobs.append(ModelJob(str(path), relative, kind, str(outputs[path]), str(weights) if weights else None))
    return Discovery(tuple(jobs), tuple(early), str(root))


# --- one model ------------------------------------------------------------------------
def pass_through(ruleset: RuleSet) -> RuleSet:
    """The same rules with every quantizer a pass-through (``float``): the same plan, no quantization."""
    from .quantizers import FLOAT

    def settings(s: Settings) -> Settings:
        changes: dict[str, Any] = {}
        for name in WEIGHT_ROLES:
            if getattr(s, name) is not None:
                changes[name] = FLOAT
        if s.activation is not None:
            changes["activation"] = ActivationPolicy(
                default=FLOAT if s.activation.default is not None else None,
                by_function=tuple((fn, FLOAT) for fn, _ in s.activation.by_function),
            )
        return replace(s, **changes)

    return replace(ruleset, input=None, defaults=settings(ruleset.defaults),
                   rules=tuple(replace(r, settings=settings(r.settings)) for r in ruleset.rules))


def _random_inputs(model: Any, n: int = 32, seed: int = 0) -> list[Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = []
    for tensor in model.inputs:
        shape = [n] + [d if d is not None else 8 for d in tuple(tensor.shape)[1:]]
        arrays.append(rng.normal(0, 1, size=shape).astype("float32"))
    return arrays


def _max_abs_diff(a: Any, b: Any) -> tuple[float, float]:
    """Largest |a - b| over all outputs, and the largest |b| (the scale)."""
    import numpy as np

    outs_a = a if isinstance(a, (list, tuple)) else [a]
    outs_b = b if isinstance(b, (list, tuple)) else [b]
    diff = max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(outs_a, outs_b))
    scale = max(float(np.max(np.abs(np.asarray(y)))) for y in outs_b)
    return diff, scale


def _verify(job: ModelJob, options: BatchOptions, custom: dict[str, Any]) -> float:
    """Max |pass-through conversion − FP32| on random inputs; the written model must load back."""
    from .model.load import load_model
    from .pipeline import convert

    model = load_model(job.path, safe_mode=options.safe_mode, custom_objects=custom, weights=job.weights)
    qmodel, _ = convert(model, pass_through(options.rules))
    x = _random_inputs(model)
    inputs = x if len(x) > 1 else x[0]
    diff, scale = _max_abs_diff(qmodel(inputs), model(inputs))
    load_model(job.output, safe_mode=options.safe_mode, custom_objects=custom)  # the output is a loadable model
    if diff > VERIFY_TOLERANCE * max(1.0, scale):
        raise QConvertError(f"verify: with pass-through quantizers the converted model differs from the FP32 model "
                            f"by {diff:.3g} (max |output| {scale:.3g})")
    return diff


def _error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, QConvertError):
        return text
    return f"unexpected {type(exc).__name__}: {text[:400]}"  # a qconvert bug or an exotic file; reported, not raised


def convert_one(job: ModelJob, options: BatchOptions) -> ModelResult:
    """Convert one model; every error becomes a ``failed`` result (nothing is raised)."""
    start = time.perf_counter()
    base = ModelResult(job.path, "failed", kind=job.kind, weights=job.weights)
    try:
        from .model.load import resolve_custom_objects
        from .pipeline import convert_file

        custom = resolve_custom_objects(options.custom_objects)
        Path(job.output).parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras's advice on Keras 2 configs, once per model: noise in a batch
            result = convert_file(job.path, options.rules, output=job.output, weights=job.weights,
                                  custom_objects=custom, safe_mode=options.safe_mode)
            diff = _verify(job, options, custom) if options.verify else None
    except Exception as exc:  # one bad model never stops the rest
        return replace(base, error=_error_text(exc), seconds=time.perf_counter() - start)
    except SystemExit as exc:  # a user's custom-objects module may call sys.exit
        return replace(base, error=f"exited while loading: {exc}", seconds=time.perf_counter() - start)
    converted = sum(1 for row in result.report.layers if row.action == "quantize")  # not Q-layers already there
    return replace(base, status="converted", layers_converted=converted,
                   seconds=time.perf_counter() - start, output=job.output, max_abs_diff=diff)


def _up_to_date(job: ModelJob, sha256: str) -> bool:
    """``resume``: the output exists, from the same rule file and the same input."""
    from .model.save import read_provenance
    from .pipeline import file_sha256

    provenance = read_provenance(job.output) if Path(job.output).is_file() else None
    if not provenance:
        return False
    rules = provenance.get("rules") or {}
    source = provenance.get("input") or {}
    return rules.get("sha256") == sha256 and source.get("sha256") == file_sha256(Path(job.path))


# --- the batch ------------------------------------------------------------------------
def run_batch(
    inputs: Sequence[str | os.PathLike],
    rules: RuleSet | str | os.PathLike,
    out: str | os.PathLike,
    *,
    jobs: int = 1,
    resume: bool = False,
    verify: bool = False,
    safe_mode: bool = True,
    custom_objects: Sequence[str] = (),
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[ModelResult], None] | None = None,
    worker_init: Callable[[], None] = worker_environment,
) -> BatchReport:
    """Convert every model ``inputs`` hold into ``out``; the results in input order.

    ``on_start(n)`` is told how many models there are, ``on_result`` each result as
    it arrives (a progress bar). ``worker_init`` runs once in each worker process
    (``jobs > 1``); it must be a module-level function (workers are spawned).
    """
    if jobs < 1:
        raise QConvertError(f"jobs must be at least 1. Received: jobs={jobs}")
    ruleset = as_ruleset(rules)
    if ruleset.needs_data:
        raise SettingsError(f"batch: {ruleset.source} resolves activation or input 'integer: auto' from data, which a "
                            "batch does not take (its models take different inputs): use a preset without auto for "
                            "them (6bit, 8bit), or convert each model with qconvert MODEL --rules ... --data D")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    found = discover(inputs, out_dir)
    start = time.perf_counter()
    if on_start is not None:
        on_start(len(found.jobs) + len(found.early))
    results: dict[str, ModelResult] = {}

    def done(result: ModelResult) -> None:
        results[result.path] = result
        if on_result is not None:
            on_result(result)

    for result in found.early:
        done(result)
    todo = []
    for job in found.jobs:
        if resume and _up_to_date(job, ruleset.sha256):
            done(ModelResult(job.path, "skipped", error="already converted with these rules (--resume)",
                             output=job.output, kind=job.kind, weights=job.weights))
        else:
            todo.append(job)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = BatchOptions(ruleset, safe_mode, tuple(custom_objects), verify)
    if jobs == 1 or len(todo) <= 1:
        for job in todo:
            done(convert_one(job, options))
    else:
        _run_pool(todo, options, min(jobs, len(todo)), worker_init, done)
    order = [r.path for r in found.early] + [j.path for j in found.jobs]
    models = tuple(sorted((results[p] for p in order), key=lambda r: r.path))
    rules_info = {"source": ruleset.source, "sha256": ruleset.sha256, "description": ruleset.description}
    from .pipeline import versions

    return BatchReport(rules_info, str(out_dir), jobs, models, time.perf_counter() - start, verify,
                       versions() if found.jobs else {})


def _run_pool(todo: list[ModelJob], options: BatchOptions, workers: int, worker_init: Callable[[], None],
              done: Callable[[ModelResult], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=worker_init) as pool:
        futures = {pool.submit(convert_one, job, options): job for job in todo}
        for future in as_completed(futures):
            job = futures[future]
            try:
                done(future.result())
            except Exception as exc:  # the worker died (out of memory, a crash in native code)
                done(ModelResult(job.path, "failed", error=f"worker process failed: {_error_text(exc)}",
                                 kind=job.kind, weights=job.weights))
