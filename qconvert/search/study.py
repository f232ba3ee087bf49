"""The study: Optuna storage, sampler, workers, resume, reference runs.

Storage (``--storage``):

* none given: an SQLite file in the output folder, ``OUTDIR/study.db``; an
  interrupted search continues with ``--resume``;
* an Optuna RDB URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``);
* anything else is a path to an Optuna **journal file** (``JournalFileBackend``),
  the storage for many machines on one shared file system (``journal:PATH`` also
  works).

Every worker, local (``-j N``) or on another machine with the same ``--storage``
and ``--study``, asks the study for its next trial, so trials are disjoint. A
finished trial is one atomic write to the storage; a worker that dies leaves its
trial ``RUNNING``, and the next worker to start a trial marks it ``FAIL`` when
its process is gone (same host) or its heartbeat (written each epoch) is older
than ``stale_after`` seconds (``UNCLAIMED_GRACE`` for one whose worker died
before its first heartbeat). The study stops when ``trials`` trials have
finished (complete or stopped early; failed ones do not count).

Sampler: Optuna's TPE (multivariate, ``constant_liar`` for parallel workers),
seeded with ``seed + worker`` so one worker with a seed always proposes the
same trials (with a shared ``--storage`` the host and process are mixed in, so
that workers on other machines do not propose the same ones); with ``--max-drop`` the single objective is the cost with the
constraint ``accuracy >= FP32 - max_drop`` (``Trial.set_constraint``).
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import QConvertError, StudyError
from ..rules import Dimension, Space
from .objective import SearchSettings, Workbench
from .pruning import DominanceStop, RungStop, RungStudies, TrialStop

__all__ = [
    "StudyOptions",
    "count_trials",
    "fail_dead_trials",
    "open_storage",
    "open_study",
    "run_worker",
    "suggest",
]

#: Settings that must match to resume or join a study (the rest, e.g. -j, may change).
_IDENTITY = ("model", "space_sha256", "data", "epochs", "seed", "cost", "max_drop", "batch_size", "lr",
             "lr_schedule", "calibration_rows")
_FAILURES_BEFORE_GIVING_UP = 3


@dataclass(frozen=True)
class StudyOptions:
    """Where the study lives and how much of it to run."""

    outdir: str
    trials: int = 40
    jobs: int = 1
    storage: str | None = None  # None: OUTDIR/study.db
    study: str = "qconvert-search"
    resume: bool = False
    references: tuple[str, ...] = ("6bit",)
    stale_after: float = 900.0  # seconds without a heartbeat before another worker fails a RUNNING trial

    @property
    def storage_url(self) -> str:
        return self.storage if self.storage is not None else f"sqlite:///{Path(self.outdir).resolve() / 'study.db'}"


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``: an RDB URL, or a journal file path (``journal:`` prefix optional)."""
    import optuna

    if "://" in url:
        kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}} if url.startswith("sqlite") else {}
        try:
            return optuna.storages.RDBStorage(url, **kwargs)
        except Exception as exc:  # SQLAlchemy's many error types: an unusable URL, a missing driver
            raise StudyError(f"--storage {url}: cannot open: {' '.join(str(exc).split())[:200]}") from None
    path = Path(url.removeprefix("journal:"))
    if path.is_dir():
        raise StudyError(f"--storage {url}: is a folder; give a journal file in it (e.g. {path / 'study.journal'}) "
                            "or an RDB URL")
    if not path.parent.is_dir():
        raise StudyError(f"--storage {url}: folder {path.parent} does not exist")
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def _identity(settings: SearchSettings, space: Space) -> dict[str, Any]:
    import hashlib

    text = Path(space.source).read_bytes() if Path(space.source).is_file() else space.source.encode()
    values = asdict(settings)
    values["space_sha256"] = hashlib.sha256(text).hexdigest()
    values["model"] = str(Path(settings.model).resolve())
    values["data"] = _data_identity(settings.data)
    return {k: values[k] for k in _IDENTITY}


def _data_identity(spec: str) -> str:
    """The data files (``a.npz`` or ``X.npy,y.npy``) by their contents: a moved file is the same data, a changed
    one is not."""
    import hashlib

    digests = []
    for part in str(spec).split(","):
        digest = hashlib.sha256()
        try:
            with Path(part).open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        except OSError:
            return str(spec)  # load_data says what is wrong with it
        digests.append(f"{Path(part).name}:{digest.hexdigest()[:16]}")
    return ",".join(digests)


def _sampler(settings: SearchSettings, options: StudyOptions, worker: int) -> Any:
    import optuna

    startup = max(5, min(20, options.trials // 4))
    seed = settings.seed + worker
    if options.storage is not None:  # processes on other machines join the study: each draws its own trials
        seed += zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_000
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=options.jobs > 1,
                                      n_startup_trials=startup)


def metric_names(settings: SearchSettings) -> list[str]:
    """The study's objective names, in order: ``val_accuracy`` and the cost, or the cost alone under ``--max-drop``."""
    return [settings.cost] if settings.max_drop is not None else ["val_accuracy", settings.cost]


def open_study(settings: SearchSettings, space: Space, options: StudyOptions, worker: int = 0,
               create: bool = False) -> Any:
    """Load (or with ``create``, create or join) the study. Raises :class:`QConvertError` for a study made with
    other settings, or an existing embedded study without ``resume``."""
    import optuna

    storage = open_storage(options.storage_url)
    directions = ["minimize"] if settings.max_drop is not None else ["maximize", "minimize"]
    identity = _identity(settings, space)
    if create:
        existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
        if (options.study in existing and options.storage is None and not options.resume
                and existing[options.study].n_trials):
            raise StudyError(f"{options.outdir}: already holds search {options.study!r} "
                                f"({existing[options.study].n_trials} trials); --resume continues it, "
                                "or choose another -o")
        study = optuna.create_study(storage=storage, study_name=options.study, directions=directions,
                                    sampler=_sampler(settings, options, worker), load_if_exists=True)
        saved = study.user_attrs.get("identity")
        if saved is not None and saved != identity and not count_trials(study) and options.storage is None:
            optuna.delete_study(study_name=options.study, storage=storage)  # nothing finished in it: start afresh
            study = optuna.create_study(storage=storage, study_name=options.study, directions=directions,
                                        sampler=_sampler(settings, options, worker))
            saved = None
        if saved is None:
            study.set_user_attr("identity", identity)
            study.set_user_attr("dimensions", [d.name for d in space.dimensions])
            with warnings.catch_warnings():  # experimental in Optuna 5: optuna-dashboard labels the axes with them
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(metric_names(settings))
        elif saved != identity:
            diff = ", ".join(f"{k} {saved.get(k)!r} (now {identity[k]!r})" for k in _IDENTITY if saved.get(k) != identity[k])
            raise StudyError(f"study {options.study!r} in {options.storage_url} was made with other settings: {diff}; "
                                "use another --study or -o")
        return study
    return optuna.load_study(study_name=options.study, storage=storage, sampler=_sampler(settings, options, worker))


def suggest(trial: Any, dim: Dimension) -> Any:
    """The trial's value for one dimension (Optuna's suggest_* by the dimension's kind)."""
    if dim.kind == "categorical":
        # Optuna stores categorical choices as given; mappings are passed as their YAML text and mapped back
        labels = [_label(c) for c in dim.choices]
        picked = trial.suggest_categorical(dim.name, labels)
        return dim.choices[labels.index(picked)]
    if dim.kind == "int":
        return trial.suggest_int(dim.name, int(dim.low), int(dim.high), step=int(dim.step or 1), log=dim.log)
    value = trial.suggest_float(dim.name, dim.low, dim.high, step=dim.step, log=dim.log)
    return round(value, 12)


def _label(choice: Any) -> Any:
    if choice is None or isinstance(choice, (bool, int, float, str)):
        return choice
    import yaml

    return yaml.safe_dump(choice, default_flow_style=True, sort_keys=True).strip()


def params_of(trial: Any, space: Space) -> dict[str, Any]:
    """A finished trial's values by dimension (categorical labels mapped back to the choices)."""
    out: dict[str, Any] = {}
    for dim in space.dimensions:
        if dim.name not in trial.params:
            continue
        value = trial.params[dim.name]
        if dim.kind == "categorical":
            labels = [_label(c) for c in dim.choices]
            value = dim.choices[labels.index(value)] if value in labels else value
        out[dim.name] = value
    return out


def count_trials(study: Any, running: bool = False) -> int:
    """Trials that count towards ``--trials``: complete and stopped early (and, with ``running``, running)."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.PRUNED) + ((TrialState.RUNNING,) if running else ())
    return len(study.get_trials(deepcopy=False, states=states))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: Seconds a RUNNING trial may go without its worker's first heartbeat (written right after Optuna creates it).
UNCLAIMED_GRACE = 30.0


def unclaimed_trials(study: Any) -> int:
    """RUNNING trials no worker has written a heartbeat to yet: live ones a moment old, or dead ones
    :func:`fail_dead_trials` fails after :data:`UNCLAIMED_GRACE` seconds."""
    from optuna.trial import TrialState

    return sum("heartbeat" not in t.user_attrs for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def fail_dead_trials(study: Any, stale_after: float) -> list[int]:
    """Mark ``FAIL`` the running trials whose worker is gone: a dead process on this host, or no heartbeat for
    ``stale_after`` seconds. Returns their numbers."""
    from optuna.trial import TrialState

    host, now, failed = socket.gethostname(), time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        dead = attrs.get("host") == host and "pid" in attrs and attrs["pid"] != os.getpid() and not _alive(attrs["pid"])
        if "heartbeat" in attrs:
            stale = now - float(attrs["heartbeat"]) > stale_after
        else:  # never claimed: its worker died between Optuna's creating it and the objective's first writes
            stale = now - (trial.datetime_start.timestamp() if trial.datetime_start else now) > UNCLAIMED_GRACE
        if dead or stale:
            try:
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            except (RuntimeError, ValueError):  # another worker finished or failed it at the same moment
                continue
            failed.append(trial.number)
    return failed


def _finished_curves(study: Any) -> list[dict[str, Any]]:
    from optuna.trial import TrialState

    return [{"number": t.number, "cost_estimate": t.user_attrs.get("cost_estimate", math.inf),
             "curve": t.user_attrs.get("curve", ())}
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]


def reference_label(name: str) -> str:
    """How a reference shows in the table and plot: a preset by its name, a file by its stem (with its folder
    when the stem is a number, as for ``front/03.yaml``)."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        return name
    return f"{path.parent.name}/{path.stem}" if path.stem.isdigit() and path.parent.name else path.stem


def _reference_outcomes(study: Any, bench: Workbench, names: Sequence[str],
                        on_event: Callable[[str], None] | None) -> None:
    """Run each reference preset once per study (kept in the study's user attributes)."""
    from ..rules import load_rules

    if "fp32" not in study.user_attrs:
        study.set_user_attr("fp32", {"val_accuracy": bench.fp32[0], "test_accuracy": bench.fp32[1]})
    for name in names:
        key = f"reference:{reference_label(name)}"
        if key in study.user_attrs:
            continue
        if on_event is not None:
            on_event(f"reference {name}")
        ruleset = load_rules(name)
        try:
            outcome = bench.run(ruleset).to_dict()
        except QConvertError as exc:
            outcome = {"error": str(exc)}
        study.set_user_attr(key, outcome)


def _beat(trial: Any, stale_after: float) -> None:
    """Record the trial's heartbeat, at most every ``stale_after / 10`` seconds (each write is a transaction)."""
    now = time.time()
    if now - float(trial.user_attrs.get("heartbeat", 0.0)) >= stale_after / 10:
        trial.set_user_attr("heartbeat", now)


def run_worker(settings: SearchSettings, space: Space, options: StudyOptions, worker: int = 0,
               on_event: Callable[[str], None] | None = None, bench: Workbench | None = None) -> int:
    """Run trials of the study in this process until it has ``options.trials``; returns how many this worker ran.

    Worker 0 also runs the reference presets (once per study). Raises the trials' error when the first
    ``3`` trials this worker runs all fail the same way (a setting wrong for every trial).
    """
    import optuna

    study = open_study(settings, space, options, worker)
    bench = bench or Workbench(settings, space)
    if worker == 0:
        _reference_outcomes(study, bench, options.references, on_event)
    host, pid = socket.gethostname(), os.getpid()
    n_val = len(bench.dataset.x_val)
    ran = failures = successes = 0
    last_error: QConvertError | None = None
    buckets = None
    if settings.pruner in ("halving", "hyperband"):  # Optuna's pruner within cost buckets (search.pruning)
        buckets = RungStudies(open_storage(options.storage_url), options.study, _identity(settings, space),
                              settings.pruner, settings.epochs, settings.warmup, settings.seed)

    def objective(trial: Any) -> Any:
        nonlocal last_error
        last_error = None
        trial.set_user_attr("host", host)
        trial.set_user_attr("pid", pid)
        trial.set_user_attr("worker", worker)
        trial.set_user_attr("heartbeat", time.time())
        params = {dim.name: suggest(trial, dim) for dim in space.dimensions}
        training = space.training(params)
        if training:
            trial.set_user_attr("training", training)
        stop: TrialStop | None = None
        try:
            ruleset = space.ruleset(params, source=f"{space.source} (trial {trial.number})")
            sparsity, target = bench.target_sparsity(ruleset), training.get("target_ebops")

            def beat(epoch: int, accuracy: float) -> None:
                _beat(trial, options.stale_after)

            if buckets is not None:
                stop = RungStop.create(buckets, trial.number, sparsity, beat, target, bench.masks_final(ruleset))
            else:
                stop = DominanceStop.create(_finished_curves(study) if settings.early_stop else (), sparsity,
                                            settings.warmup, n_val, beat, target)
            outcome = bench.run(ruleset, [stop], training=training)
        except (QConvertError, ValueError, ArithmeticError) as exc:
            last_error = exc if isinstance(exc, QConvertError) else QConvertError(f"trial {trial.number}: {exc}")
            trial.set_user_attr("error", " ".join(str(exc).split())[:500])
            if stop is not None:
                stop.close(None)
            raise
        stop.close(outcome.val_accuracy)
        for key, value in outcome.to_dict().items():
            trial.set_user_attr(key, value)
        if stop.stopped_at is not None:
            trial.set_user_attr("stopped", stop.reason)
            raise optuna.TrialPruned(stop.reason)
        if settings.max_drop is not None:
            # feasible (<= 0) when within max_drop of FP32; TPE reads it (Optuna 5's Trial.set_constraint)
            trial.set_constraint("accuracy", bench.fp32[0] - settings.max_drop / 100.0 - outcome.val_accuracy)
            return outcome.cost(settings.cost)
        return outcome.val_accuracy, outcome.cost(settings.cost)

    while True:
        fail_dead_trials(study, options.stale_after)
        if count_trials(study, running=True) >= options.trials:
            if not unclaimed_trials(study):
                break
            time.sleep(1.0)  # a trial no worker has claimed may be a dead one's: it must not end the study
            continue
        study.optimize(objective, n_trials=1, catch=(QConvertError, ValueError, ArithmeticError))
        ran += 1
        if last_error is not None:
            failures += 1
            if failures >= _FAILURES_BEFORE_GIVING_UP and successes == 0:
                raise StudyError(f"the first {failures} trials failed: {last_error}")
        else:
            failures, successes = 0, successes + 1
        if on_event is not None:
            on_event("trial")
    return ran
