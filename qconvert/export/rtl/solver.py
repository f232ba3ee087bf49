"""da4ml's constant-matrix solver in a child process: Ctrl-C, a time budget and a size budget that always end a run.

A Dense or convolution becomes a constant-matrix-vector product (CMVM) that da4ml solves as an adder graph
(``da4ml.cmvm.api.solve``, numba code). A large matrix can take minutes, and numba code does not return to
Python until it is done, so Ctrl-C went unheard. :class:`Solver` runs the solves in one spawned child process
(``python -m qconvert.export.rtl.child``: it imports da4ml and numba, not TensorFlow) and waits for each answer in slices of 0.1 s: Ctrl-C kills the
child and raises :class:`~qconvert.errors.Interrupted` at once; a solve past ``timeout`` seconds is killed and
refused in one line naming the layer.

Rows of a product with the same input intervals and latencies (the windows of a convolution away from its
padding) share one solve. A matrix of more than :data:`EXHAUSTIVE_MAX` entries is solved at one decomposition
depth instead of da4ml's search over every depth (``search_all_decompose_dc``): measured on a 256×32 6-bit
Dense, 25 s instead of 155 s for 0.1 % more LUTs (247,979 against 247,650 in da4ml's estimate of the whole
digits CNN of ``benchmarks/bench_rtl_ends.py``).

:func:`check_size` is the size budget: the multiplies the fully unrolled RTL would implement, counted from the
weights before anything is traced.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ...errors import ExportError, Interrupted
from ...targets import DEFAULT_MAX_MULTIPLIES, DEFAULT_SOLVE_TIMEOUT
from .layers import RtlRefusal, weights

__all__ = ["DEFAULT_MAX_MULTIPLIES", "DEFAULT_SOLVE_TIMEOUT", "EXHAUSTIVE_MAX", "Interrupts", "Solver", "check_size", "describe",
           "multiplies", "seconds_text", "serve"]

#: Entries of a constant matrix up to which every decomposition depth is tried (da4ml's default search).
EXHAUSTIVE_MAX = 2048
_KERNELS = {"QDense": ("kernel",), "Dense": ("kernel",), "QConv1D": ("kernel",), "QConv2D": ("kernel",),
            "Conv1D": ("kernel",), "Conv2D": ("kernel",), "QDepthwiseConv2D": ("depthwise",),
            "QSeparableConv1D": ("depthwise", "pointwise"), "QSeparableConv2D": ("depthwise", "pointwise")}  # fmt: skip
_ATTRS = {"kernel": "kernel", "depthwise": "depthwise_kernel", "pointwise": "pointwise_kernel"}


def multiplies(layer: Any) -> int:
    """The multiplies ``layer`` unrolls in the RTL: its nonzero quantized weights times its output positions
    (1 for a Dense on a vector; a Dense on a sequence or image is applied at each position). 0 for a layer
    without a kernel."""
    roles = _KERNELS.get(type(layer).__name__)
    if not roles:
        return 0
    positions = int(np.prod([int(d) for d in layer.output.shape[1:-1]] or [1]))
    count = 0
    for role in roles:
        w = weights(layer, role, _ATTRS[role])
        count += int(np.count_nonzero(w)) * positions if w is not None else 0
    return count


def check_size(qmodel: Any, max_multiplies: int) -> dict[str, int]:
    """The multiplies of each layer that has any (:func:`multiplies`), or :class:`RtlRefusal` naming the largest
    layer when their sum is past ``max_multiplies``."""
    counts = {layer.name: n for layer in qmodel.layers if (n := multiplies(layer))}
    total = sum(counts.values())
    if total > max_multiplies:
        name = max(counts, key=lambda k: counts[k])
        kind = type(qmodel.get_layer(name)).__name__
        raise RtlRefusal(f"layer '{name}' ({kind}): the RTL would unroll {total:,} multiplies, {counts[name]:,} of them "
                         f"in this layer, past the budget of {max_multiplies:,} (--max-multiplies); prune it (--prune), "
                         f"narrow or shrink it, or build it with hls4ml (--hls4ml, with a --reuse-factor)")
    return counts


def serve(read_fd: int, write_fd: int) -> None:
    """The child (``python -m qconvert.export.rtl.child R W``): answer each ``(kernel, qintervals, latencies,
    options)`` read from fd ``R`` with ``("ok", Pipeline)`` or ``("error", text)`` on fd ``W``, until None or EOF."""
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which ends this process
    parent = os.getppid()
    if sys.platform.startswith("linux"):  # killed with the parent, whatever ends it (SIGTERM, the OOM killer)
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        return
    from da4ml.cmvm.api import solve
    from da4ml.cmvm.types import QInterval
    from numba.typed import List

    jobs, answers = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    try:
        while (job := jobs.recv()) is not None:
            kernel, qintervals, latencies, options = job
            try:  # the argument types of da4ml's own call, so numba's cached compilation is reused
                sol = solve(kernel, qintervals=List([QInterval(*q) for q in qintervals]), latencies=List(latencies),
                            **options)
                answers.send(("ok", sol))
            except Exception as exc:
                answers.send(("error", f"{type(exc).__name__}: {exc}"))
    except (EOFError, OSError):  # the parent went away (a closed or broken pipe)
        pass


class Interrupts:
    """Ctrl-C during the RTL stage, remembered (a context manager, main thread only: elsewhere it does nothing).

    Python raises KeyboardInterrupt wherever the main thread happens to be, and one raised inside a garbage
    collector callback (TensorFlow's and JAX's register some) is printed and dropped: the run went on and exited 0.
    The handler both raises and sets :attr:`pending`, which :meth:`check` turns into :class:`Interrupted` at the
    next step. ``where()`` says what was under way."""

    def __init__(self, where: Callable[[], str]):
        self.where = where
        self.pending = False
        self._previous: Any = None

    def __enter__(self) -> Interrupts:
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.pending = True
        raise KeyboardInterrupt

    def check(self) -> None:
        """Raise :class:`Interrupted` when Ctrl-C came, even if its KeyboardInterrupt was dropped."""
        if self.pending:
            raise Interrupted(f"RTL interrupted {self.where()}")


class Solver:
    """One child process that solves constant matrices for the RTL trace (a context manager: leaving it ends
    the child). ``timeout``: seconds one solve may take. ``progress``: called with a line of text now and then.

    ``solves``: per layer (its ``where``), ``(matrix rows, columns, product rows, distinct solves, exhaustive)`` of
    its last product; ``seconds``: per layer, the seconds its products took (the solves in the child and applying
    their solutions here; the time budget is the solves'); ``warm_seconds``: how long the child
    took to start and solve its first (2×2) matrix, once the first product needed it.
    """

    def __init__(self, timeout: float = DEFAULT_SOLVE_TIMEOUT, progress: Callable[[str], None] | None = None,
                 interrupts: Interrupts | None = None):
        self.timeout = timeout
        self.interrupts = interrupts
        self.progress = progress or (lambda line: None)
        self.solves: dict[str, tuple[int, int, int, int, bool]] = {}
        self.seconds: dict[str, float] = {}
        self.warm_seconds: float | None = None  # set by the first product (see warm)
        self._proc: Any = None
        self._jobs: Any = None
        self._answers: Any = None

    def __enter__(self) -> Solver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """End the child (killed: it may be inside a solve)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._jobs.close()
            self._answers.close()
            self._proc = self._jobs = self._answers = None

    def _child(self) -> tuple[Any, Any, Any]:
        """(the child process, the connection jobs go to, the one answers come from), started on first use: a fresh
        interpreter (a fork would copy TensorFlow's threads; multiprocessing's spawn would import the caller's
        ``__main__`` again)."""
        if self._proc is None:
            from multiprocessing.connection import Connection

            job_r, job_w = os.pipe()
            ans_r, ans_w = os.pipe()
            self._proc = subprocess.Popen([sys.executable, "-m", "qconvert.export.rtl.child", str(job_r), str(ans_w)],
                                          pass_fds=(job_r, ans_w), stdin=subprocess.DEVNULL)
            os.close(job_r)
            os.close(ans_w)
            self._jobs, self._answers = Connection(job_w, readable=False), Connection(ans_r, writable=False)
        return self._proc, self._jobs, self._answers

    def warm(self) -> float:
        """Start the child and solve a 2×2 matrix with the argument types of every later solve; returns the seconds
        (minutes when numba compiles da4ml's solver for the first time in this environment, about 3 s when it
        loads its cache)."""
        from da4ml.trace import FixedVariableArrayInput

        start = time.perf_counter()
        x = FixedVariableArrayInput(2).quantize(0, 4, 0)
        key = _row_key(np.asarray(x._vars))
        self.solve(np.array([[1.0, 2.0], [3.0, -1.0]], dtype=np.float32), [q[:3] for q in key], [q[3] for q in key],
                   _options(x, exhaustive=True), "a 2×2 warm-up matrix", timeout=math.inf)
        return time.perf_counter() - start

    def solve(self, kernel: np.ndarray, qintervals: list[tuple[float, float, float]], latencies: list[float],
              options: dict[str, Any], where: str, timeout: float | None = None) -> Any:
        """da4ml's ``solve(kernel, qintervals=..., latencies=..., **options)`` in the child; its ``Pipeline``.
        ``timeout``: seconds (default: the solver's; the warm-up has none, a first compile takes minutes).

        Raises :class:`RtlRefusal` past the timeout, :class:`Interrupted` on Ctrl-C (KeyboardInterrupt, the child
        ended, when the solver has no :class:`Interrupts`), :class:`ExportError` when the solver fails or its process
        dies."""
        if self.interrupts is not None:
            self.interrupts.check()
        proc, jobs, answers = self._child()
        jobs.send((np.ascontiguousarray(kernel, dtype=np.float32), qintervals, latencies, options))
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        try:
            while not answers.poll(0.1):
                if proc.poll() is not None:
                    code = proc.returncode
                    self.close()
                    raise ExportError(f"{where}: da4ml's solver process ended (exit code {code})")
                if time.monotonic() > deadline:
                    self.close()
                    rows, cols = kernel.shape
                    raise RtlRefusal(f"{where}: da4ml did not solve its {rows}×{cols} constant matrix within "
                                     f"{limit:g} s (--solve-timeout); prune it (--prune), narrow its weights, "
                                     f"or build it with hls4ml (--hls4ml)")
        except KeyboardInterrupt:
            self.close()
            if self.interrupts is None:  # a caller with its own Ctrl-C handling (a search trial's LUT figure)
                raise
            raise Interrupted(f"RTL interrupted while da4ml solved {where}; nothing of the RTL is written yet") from None
        status, value = answers.recv()
        if status != "ok":
            raise ExportError(f"{where}: da4ml's solver failed: {value}")
        return value

    def matmul(self, x: Any, w: np.ndarray, where: str) -> Any:
        """``x @ w`` for a da4ml ``FixedVariableArray`` ``x`` (..., K) and a constant ``w`` (K, C): each row's
        product through one solve per distinct (input intervals, latencies), as da4ml's own product computes it."""
        from da4ml.trace import FixedVariableArray

        w = np.asarray(w)
        if x.collapsed:  # constants: da4ml multiplies them out
            return x @ w
        if self.warm_seconds is None:
            self.progress("starting da4ml's constant-matrix solver ...")
            self.warm_seconds = self.warm()
        k = w.shape[0]
        rows = np.asarray(x._vars).reshape(-1, k)
        groups: dict[tuple, list[int]] = {}
        for i, row in enumerate(rows):
            groups.setdefault(_row_key(row), []).append(i)
        exhaustive = w.size <= EXHAUSTIVE_MAX and bool((x.solver_options or {}).get("search_all_decompose_dc", True))
        options = _options(x, exhaustive)
        self.solves[where] = (k, int(w.shape[1]), len(rows), len(groups), exhaustive)
        self.progress(f"{where}: {describe(self.solves[where])} ...")
        start = time.perf_counter()
        out = np.empty((len(rows), w.shape[1]), dtype=object)
        for key, members in groups.items():
            sol = self.solve(w, [q[:3] for q in key], [q[3] for q in key], options, where)
            for i in members:
                out[i] = sol(rows[i])
            if self.interrupts is not None:
                self.interrupts.check()
        seconds = time.perf_counter() - start
        self.seconds[where] = self.seconds.get(where, 0.0) + seconds
        self.progress(f"{where}: solved in {seconds_text(seconds)}")
        return FixedVariableArray(out.reshape(*x.shape[:-1], w.shape[1]), x.solver_options)


def _row_key(row: np.ndarray) -> tuple[tuple[float, float, float, float], ...]:
    """(low, high, step, latency) of each da4ml variable of a product's input row: what its solve depends on."""
    return tuple((float(v.low), float(v.high), float(v.step), float(v.latency)) for v in row)


def _options(x: Any, exhaustive: bool) -> dict[str, Any]:
    """da4ml's solver options for a product with input ``x``, completed as its own product completes them (the
    adder and carry sizes of the input's hardware model), so every call has the same argument types."""
    options = {key: value for key, value in (x.solver_options or {}).items() if key != "offload_fn"}
    hwconf = np.asarray(x._vars).ravel()[0].hwconf
    options.setdefault("adder_size", hwconf.adder_size)
    options.setdefault("carry_size", hwconf.carry_size)
    options["search_all_decompose_dc"] = exhaustive
    return options


def describe(solves: tuple[int, int, int, int, bool] | None) -> str:
    """``"256×32 matrix"``, ``"64 rows × 9×16 matrix, 3 distinct solves"``, with ``", one decomposition depth"``
    when the search over depths was skipped; ``""`` for a layer without a product."""
    if solves is None:
        return ""
    k, c, n, distinct, exhaustive = solves
    text = f"{k}×{c} matrix" if n == 1 else f"{n} rows × {k}×{c} matrix, {distinct} distinct solve{'s' * (distinct > 1)}"
    return text + ("" if exhaustive else ", one decomposition depth")


def seconds_text(seconds: float) -> str:
    """``"0.4 s"``, ``"25 s"``, ``"2 min 05 s"``, ``"no limit"`` (infinity)."""
    if not math.isfinite(seconds):
        return "no limit"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{math.floor(seconds / 60)} min {seconds % 60:02.0f} s"
