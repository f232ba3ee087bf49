"""A precompiled header for hls4ml's emulation library: the C++ standard library and ``ap_types``, parsed once.

Of the ~9 s g++ spends on a small hls4ml project (``firmware/myproject.cpp`` and ``myproject_bridge.cpp``),
about 3 s are parsing the same headers in every project: the standard library and the ``ap_types`` hls4ml
copies into each project. :func:`precompiled_header` compiles those once into a GCC precompiled header
(``.gch``, about 100 MB) kept in the user's cache folder, keyed by everything that makes one valid: the
compiler's identity, the flags ``build_lib.sh`` computed, and the contents of the project's ``ap_types``.
``build_lib.sh`` then gets ``-include <cache>/qconvert_pch.h`` in its ``CFLAGS``.

Only headers that read no project macro are in it (``nnet_utils/nnet_helpers.h`` reads ``WEIGHTS_DIR`` and is
left out). Where the ``.gch`` is missing or GCC finds it unusable, g++ reads ``qconvert_pch.h`` as an ordinary
header, which includes the same files: the library is the same either way, only slower. Any failure to build or
store it leaves the script alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import platformdirs

__all__ = ["HEADER", "precompiled_header"]

#: The precompiled header's text: include-guarded headers that no project macro changes.
HEADER = """\
// qconvert: headers every hls4ml emulation library parses, precompiled once (qconvert/export/pch.py)
#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>
#include "ap_fixed.h"
#include "ap_int.h"
#include "hls_stream.h"
"""
_NAME = "qconvert_pch.h"
_BUILD_TIMEOUT_S = 300


def precompiled_header(compiler: str, cflags: str, ap_types: Path, cache: Path | None = None) -> Path | None:
    """The path of ``qconvert_pch.h`` beside a valid ``qconvert_pch.h.gch`` for these flags, built on first use.

    ``compiler`` and ``cflags``: what ``build_lib.sh`` compiles with (e.g. ``g++`` and ``-O1 -fPIC -std=c++23``);
    ``ap_types``: the project's ``firmware/ap_types`` folder; ``cache``: the folder to keep it in (by default the
    user's cache folder, ``~/.cache/qconvert/pch`` on Linux). Returns ``None`` when it cannot be built or stored
    (no ``ap_types``, a compiler error, a read-only cache): the caller compiles without it. Concurrent callers
    may both build it; the first rename wins.
    """
    try:
        key = _key(compiler, cflags, ap_types)
    except (OSError, subprocess.SubprocessError):
        return None
    folder = (cache or Path(platformdirs.user_cache_dir("qconvert")) / "pch") / key
    header = folder / _NAME
    if (folder / f"{_NAME}.gch").is_file():
        return header
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=folder.parent))
    except OSError:
        return None
    try:
        (scratch / _NAME).write_text(HEADER)
        command = [compiler, *cflags.split(), f"-I{ap_types}", "-x", "c++-header", _NAME, "-o", f"{_NAME}.gch"]
        done = subprocess.run(command, cwd=scratch, capture_output=True, timeout=_BUILD_TIMEOUT_S, check=False)
        if done.returncode != 0:
            return None
        with contextlib.suppress(OSError):  # another process stored it first
            scratch.rename(folder)
        return header if (folder / f"{_NAME}.gch").is_file() else None
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _key(compiler: str, cflags: str, ap_types: Path) -> str:
    """A digest of what a ``.gch`` is valid for: the compiler binary's version, the flags, the headers' bytes."""
    digest = hashlib.sha256()
    version = subprocess.run([compiler, "--version"], capture_output=True, timeout=30, check=True).stdout
    digest.update(version)
    digest.update((shutil.which(compiler) or compiler).encode())
    digest.update(" ".join(cflags.split()).encode())
    digest.update(HEADER.encode())
    files = sorted(p for p in ap_types.rglob("*") if p.is_file())
    if not files:
        raise FileNotFoundError(ap_types)
    for path in files:
        digest.update(os.fsencode(path.relative_to(ap_types)))
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]
