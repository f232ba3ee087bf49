"""hls4ml's C++ emulation of a written project, compiled with g++ and run in a child process.

hls4ml loads the compiled project into the calling process: an assertion in the generated C++ (or a
segmentation fault) would abort whatever runs it. :func:`emulate` therefore compiles in the caller and
runs the emulation in a forked child; results come back through a file, and a crash becomes one
:class:`~qconvert.errors.VerificationError` line naming the layer and how it failed.

The emulation library is built with g++ ``-O1`` instead of the ``-O3`` of hls4ml's ``build_lib.sh``
(:data:`EMULATION_OPT`): most of a compile is g++'s front end on hls4ml's templates, and ``-O3`` spends
the rest unrolling their loops. Measured on this project's 2-core machine: the jet tagger's project
compiles in 13.0 s instead of 16.6 s, a chain of every layer family (168 hls4ml calls) in 22.4 s instead of
32.7 s. The arithmetic is the same (``ap_fixed`` is integer arithmetic; no ``-ffast-math`` either way),
which every bit-exact test checks; synthesis (``build_prj.tcl``) does not use this script. The script also
gets a precompiled header of the headers every project parses (:mod:`.pch`): the jet tagger's library then
compiles in 5.8 s of CPU instead of 8.7 s.
"""

from __future__ import annotations

import faulthandler
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError, VerificationError
from .pch import precompiled_header
from .quiet import quiet

__all__ = ["EMULATION_OPT", "crash_message", "emulate"]

#: g++'s optimization level for the emulation library (see the module docstring).
EMULATION_OPT = "-O1"
_HLS4ML_OPT = re.compile(r'^CFLAGS="-O3\b', re.MULTILINE)
_FLAGS_END = re.compile(r"^LDFLAGS=.*$", re.MULTILINE)

_ASSERTION = re.compile(r"Assertion `(?P<what>.*)' failed")
_CONFIG = re.compile(r"CONFIG_T = config(?P<index>\d+)\b")


def emulate(hls_model: Any, xs: np.ndarray, where: Path, io_type: str) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Write and compile ``hls_model`` (an hls4ml ``ModelGraph``) with trace hooks, run it on ``xs`` in a child.

    ``xs``: ``(n, *input_shape)`` inputs, already in the input type. Returns the model's outputs, one ``(n, units)``
    float64 array each in the model's order, and every traced layer's output by layer name, ``(n, values)``.
    ``where``: the project folder (the child's scratch files go there). Raises :class:`ExportError` when hls4ml
    cannot write or compile the project, :class:`VerificationError` when the emulation crashes.
    """
    try:
        with quiet():
            hls_model.config.trace_output = True
            hls_model.write()
            _set_optimization(Path(hls_model.config.get_output_dir()) / "build_lib.sh")
            hls_model._compile()  # hls4ml's compile() is write() then this; the script is changed in between
    except Exception as exc:
        raise ExportError(f"hls4ml could not write or compile the project in {where}: {exc}") from None
    y, trace = _run_isolated(hls_model, xs, Path(where), io_type)
    n = len(xs)
    ys = y if isinstance(y, list) else [y]
    return [np.asarray(o, dtype="float64").reshape(n, -1) for o in ys], {k: np.asarray(v).reshape(n, -1) for k, v in trace.items()}


def _set_optimization(script: Path) -> None:
    """Build the emulation at :data:`EMULATION_OPT` with a precompiled header (``script``: hls4ml's
    ``build_lib.sh``; the level is left as it is when hls4ml writes other flags, the header left out when the
    script has no ``LDFLAGS=`` line after its flags or no header can be had)."""
    text = _HLS4ML_OPT.sub(f'CFLAGS="{EMULATION_OPT}', script.read_text(), count=1)
    end = _FLAGS_END.search(text)
    if end is not None:
        header = _header_for(script.parent, text[: end.start()])
        if header is not None:
            text = f'{text[: end.end()]}\nCFLAGS+=" -include {header}"{text[end.end():]}'
    script.write_text(text)


def _header_for(project: Path, flags_part: str) -> Path | None:
    """The precompiled header for the compiler and flags that ``flags_part`` (the script up to its flags) sets."""
    try:
        done = subprocess.run(
            ["bash", "-c", f'{flags_part}\nprintf "%s\\n%s\\n" "$CC" "$CFLAGS"'],
            cwd=project, capture_output=True, text=True, timeout=60, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    compiler, _, cflags = done.stdout.partition("\n")
    header = precompiled_header(compiler.strip() or "g++", cflags.strip(), project / "firmware" / "ap_types")
    return None if header is None or any(c.isspace() for c in str(header)) else header


def _run_isolated(hls_model: Any, xs: np.ndarray, where: Path, io_type: str) -> tuple[Any, dict[str, Any]]:
    """``hls_model.trace(xs)`` (already compiled) in a forked child; results through a file, stderr kept."""
    with tempfile.TemporaryDirectory(prefix=".qconvert-trace-", dir=where) as tmp:
        result, errors = Path(tmp) / "trace.npz", Path(tmp) / "stderr.txt"
        pid = os.fork()
        if pid == 0:  # the child: run the C++ and leave, never back into the caller's code
            code = 1
            try:
                faulthandler.disable()  # an abort here is reported by the parent, not dumped on the caller's stderr
                fd = os.open(errors, os.O_WRONLY | os.O_CREAT)
                os.dup2(fd, 2)
                os.dup2(fd, 1)
                hls_model.compile = lambda: None  # compiled above; this copy only runs it
                with quiet():
                    y, trace = hls_model.trace(xs)
                ys = y if isinstance(y, list) else [y]  # one array per model output
                np.savez(result, **{f"y_{i}": np.asarray(o) for i, o in enumerate(ys)},
                         **{f"t_{k}": np.asarray(v) for k, v in trace.items()})
                code = 0
            except BaseException as exc:
                os.write(2, f"{type(exc).__name__}: {exc}\n".encode())
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            with np.load(result) as data:
                ys = [data[f"y_{i}"] for i in range(sum(1 for k in data.files if k.startswith("y_")))]
                return (ys if len(ys) > 1 else ys[0]), {k[2:]: data[k] for k in data.files if k.startswith("t_")}
        raise VerificationError(crash_message(hls_model, errors.read_text(errors="replace"), status, io_type))


def crash_message(hls_model: Any, stderr: str, status: int, io_type: str) -> str:
    """One line: which layer's C++ failed under which io type, and how.

    ``stderr``: what the child wrote (a C++ assertion names the failed condition and the ``CONFIG_T = configN`` of
    the layer, which is looked up among ``hls_model``'s layers); ``status``: its ``os.waitpid`` status.
    """
    how = f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
    assertion = _ASSERTION.search(stderr)
    if assertion:
        how = f"assertion `{assertion.group('what')}` failed"
    elif stderr.strip():
        how = stderr.strip().splitlines()[-1]
    config = _CONFIG.search(stderr)
    names = {layer.index: f"{layer.name} ({layer.class_name})" for layer in hls_model.get_layers()}
    layer = names.get(int(config.group("index"))) if config else None
    where = f"in layer {layer}" if layer else "(layer unknown)"
    return f"hls4ml's C++ emulation crashed {where} with --io-type {io_type}: {how}"
