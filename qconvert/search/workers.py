"""``search -j N``: worker 0 in this process, workers 1.. spawned (each with its own TensorFlow), one study.

The workers run the study's trials, or (``tasks``) share the re-training of the front (:mod:`.retrain`).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import QConvertError
from ..rules import Space, load_space
from .objective import SearchSettings, Workbench
from .retrain import Task, retrain
from .study import StudyOptions, open_study, run_worker

__all__ = ["run_workers"]


def _worker_process(settings: SearchSettings, space_path: str, options: StudyOptions, worker: int,
                    threads: int, error_file: str, tasks: list[Task] | None = None) -> None:
    """Entry point of a ``-j N`` worker process (spawned: its own TensorFlow): trials, or the re-trainings
    ``tasks``."""
    try:
        import optuna

        from ..runtime import worker_environment

        worker_environment(threads)
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial's error is in search.json
        space = load_space(space_path)
        if tasks is None:
            run_worker(settings, space, options, worker)
        else:
            retrain(open_study(settings, space, options, worker), settings, space, tasks, Workbench(settings, space))
    except QConvertError as exc:
        Path(error_file).write_text(str(exc))
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the group: the parent reports it
        raise SystemExit(130) from None


def run_workers(settings: SearchSettings, space: Space, options: StudyOptions, bench: Workbench | None = None,
                on_event: Callable[[str], None] | None = None, on_poll: Callable[[Any], None] | None = None,
                poll_seconds: float = 2.0, tasks: list[Task] | None = None) -> list[str]:
    """Run ``options.jobs`` workers on the study and wait for them; returns their error lines.

    Worker 0 runs in this process (its model and data already loaded in ``bench``; ``on_event`` after each of
    its trials), workers 1.. in spawned processes with their own TensorFlow. ``on_poll(study)`` is called every
    ``poll_seconds`` while spawned workers are still running after worker 0 has finished. With ``tasks``, the
    workers re-train instead (worker ``w`` the tasks ``w, w + N, ...``).
    """
    import multiprocessing
    import tempfile

    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // options.jobs)
    errors_dir = Path(tempfile.mkdtemp(prefix=".workers-", dir=options.outdir))
    procs = []
    messages: list[str] = []
    share = (lambda w: list(tasks[w::options.jobs])) if tasks is not None else (lambda w: None)
    try:
        for worker in range(1, options.jobs):
            if tasks is not None and not share(worker):
                continue
            proc = context.Process(target=_worker_process, args=(settings, space.source, options, worker, threads,
                                                                 str(errors_dir / f"{worker}.err"), share(worker)),
                                   daemon=False)
            proc.start()
            procs.append(proc)
        try:
            if tasks is None:
                run_worker(settings, space, options, 0, on_event=on_event, bench=bench)
            else:
                retrain(open_study(settings, space, options), settings, space, share(0),
                        bench or Workbench(settings, space), on_event)
        except QConvertError as exc:
            messages.append(str(exc))
        study = None
        while any(p.is_alive() for p in procs):
            if on_poll is not None:
                try:
                    study = study or open_study(settings, space, options)
                    on_poll(study)
                except Exception:
                    pass
            time.sleep(poll_seconds)
        messages += [f.read_text() for f in sorted(errors_dir.glob("*.err"))]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        shutil.rmtree(errors_dir, ignore_errors=True)
    return messages
