"""RTL without Vivado: a QKeras model → da4ml logic → Verilog (or VHDL), Verilator emulation, yosys figures.

:func:`export_rtl` traces the model (:mod:`.trace`), writes da4ml's RTL project, compiles it with
Verilator into da4ml's emulation and checks it bit for bit against Keras, then runs yosys
``synth_xilinx`` (:mod:`.tools`). :func:`synth_figures` is the cost a search needs: trace, write,
synthesize, no emulation. da4ml is imported when these run, never on ``import qconvert.export``.

A missing tool is a :class:`.tools.ToolMissing` error on the result (``emulation_error`` /
``synth_error``): the RTL is written all the same, and the CLI exits 2 naming what to install.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ExportError
from .tools import FAMILIES, SynthFigures, ToolMissing
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
N_SAMPLED = 1000


@dataclass(frozen=True)
class RtlOptions:
    output_dir: Path
    flavor: str = "verilog"  # or "vhdl": the VHDL is written; emulation and yosys run on a Verilog twin in verilog/
    clock_ns: float = 5.0  # da4ml pipelines at this many units of its delay model (its CLI: 5 at 5 ns)
    family: str = "xcup"  # yosys synth_xilinx -family
    emulate: bool = True
    synth: bool = True
    input_precision: str | None = None
    jobs: int | None = None  # Verilator build jobs (default: all cores)


@dataclass(frozen=True)
class RtlFigures:
    """Hardware figures of the traced design: da4ml's own estimate and, when yosys ran, its cell counts."""

    lut_da4ml: float  # da4ml's LUT estimate of the logic
    ff_da4ml: int  # pipeline register bits
    latency_cycles: int  # pipeline stages (registers) at clock_ns
    adder_depth: float  # da4ml's combinational delay estimate of the whole logic (its units)
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
    n_samples: int = 0
    inputs: str = ""  # "given" | "sampled" | "" (no emulation)
    logits_exact_fraction: float | None = None
    argmax_agreement: float | None = None
    max_abs_diff: float | None = None
    accuracy_keras: float | None = None
    accuracy_rtl: float | None = None
    first_divergent_layer: str | None = None
    limits: str = ""
    compile_seconds: float | None = None
    emulate_seconds: float | None = None
    emulation_error: str | None = None  # Verilator is missing (exit 2)
    emulation_skipped: str | None = None  # the design cannot be emulated (why), e.g. ports wider than 32 bits
    synth_error: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def missing_tool(self) -> str | None:
        """The first one-line error of a tool that is not installed (the CLI exits 2 on it)."""
        return self.emulation_error or self.synth_error

    def to_dict(self) -> dict[str, Any]:
        """The ``rtl`` section of the JSON report."""
        f = self.figures
        return {
            "project_dir": str(self.project_dir), "flavor": self.flavor, "top": self.top,
            "input_precision": self.input_precision, "input_source": self.input_source,
            "logits_layer": self.logits_layer, "softmax": self.softmax,
            "n_samples": self.n_samples, "inputs": self.inputs,
            "logits_exact_fraction": self.logits_exact_fraction, "argmax_agreement": self.argmax_agreement,
            "max_abs_diff": self.max_abs_diff, "accuracy_keras": self.accuracy_keras,
            "accuracy_rtl": self.accuracy_rtl, "first_divergent_layer": self.first_divergent_layer,
            "limits": self.limits,
            "lut_da4ml": f.lut_da4ml, "ff_da4ml": f.ff_da4ml, "latency_cycles": f.latency_cycles,
            "adder_depth": f.adder_depth, "clock_ns": f.clock_ns,
            "synth": asdict(f.synth) if f.synth else None,
            "seconds": {"trace": round(self.trace_seconds, 2), "write": round(self.write_seconds, 2),
                        "verilator": _round(self.compile_seconds), "emulate": _round(self.emulate_seconds),
                        "yosys": _round(f.synth.seconds if f.synth else None)},
            "emulation_error": self.emulation_error, "emulation_skipped": self.emulation_skipped,
            "synth_error": self.synth_error, "notes": list(self.notes),
        }  # fmt: skip


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def check_options(options: RtlOptions) -> None:
    """Bad flavor, family or clock, and a missing da4ml, before any work (one line, exit 2)."""
    if options.flavor not in FLAVORS:
        raise ExportError(f"--rtl-flavor {options.flavor!r}: one of {', '.join(FLAVORS)}")
    if options.family not in FAMILIES:
        raise ExportError(f"--family {options.family!r}: yosys synth_xilinx knows {', '.join(FAMILIES)}")
    if not options.clock_ns > 0:
        raise ExportError(f"--clock-ns must be positive. Received: clock_ns={options.clock_ns}")
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
    pipe = rtl._pipe  # da4ml's Pipeline (registers every clock_ns units of delay)
    stages = len(pipe.solutions) if pipe is not None else 0
    reg_bits = int(pipe.reg_bits) if pipe is not None else 0
    latency = sol.latency
    depth = float(max(latency) if isinstance(latency, (tuple, list)) else latency)
    return RtlFigures(float(sol.cost), reg_bits, stages, depth, clock_ns, synth)


def _trace(qmodel: Any, x: Any, input_precision: str | None) -> tuple[Any, Any, float]:
    from ..flatten import flatten_nested
    from .trace import trace_model

    qmodel = flatten_nested(qmodel)
    start = time.perf_counter()
    traced = trace_model(qmodel, x=x, input_precision=input_precision)
    return qmodel, traced, time.perf_counter() - start


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
    _, traced, _ = _trace(qmodel, x, input_precision)
    with tempfile.TemporaryDirectory(prefix="qconvert-rtl-") as tmp:
        where = Path(output_dir) if output_dir is not None else Path(tmp)
        rtl, sol, twin, _ = _write(traced, replace(options, output_dir=where))
        figures = None
        if synth:
            from .tools import synthesize

            figures = synthesize(twin, TOP, family, timeout=timeout)
        return _figures(rtl, sol, clock_ns, figures)


def _inputs(qmodel: Any, traced: Any, x: Any) -> tuple[np.ndarray, str]:
    """(the inputs as the RTL receives them: given or sampled, then rounded to its type, "given" | "sampled")."""
    from ..hls4ml import _sample_inputs, round_to_type

    given = x is not None
    xs = np.asarray(x, dtype="float64") if given else _sample_inputs(qmodel, traced.input_type, N_SAMPLED)
    if traced.input_quantizer is not None:  # the model's own input quantizer: Keras rounds them the same way
        import keras

        xq = np.asarray(keras.ops.convert_to_numpy(traced.input_quantizer(xs.astype("float32"))), dtype="float64")
    else:
        xq = round_to_type(xs, traced.input_type)
    return np.ascontiguousarray(xq), "given" if given else "sampled"


def _keras_layers(qmodel: Any, names: list[str], xq: np.ndarray) -> dict[str, np.ndarray]:
    import keras

    probe = keras.Model(qmodel.inputs, [qmodel.get_layer(n).output for n in names])
    outs = probe.predict(xq.astype("float32"), verbose=0, batch_size=1024)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {n: np.asarray(o, dtype="float64").reshape(len(xq), -1) for n, o in zip(names, outs)}


def _first_divergent(traced: Any, keras_out: dict[str, np.ndarray], xq: np.ndarray) -> str | None:
    """The first traced layer whose exact fixed-point value differs from Keras (da4ml's software interpreter)."""
    from da4ml.trace import FixedVariableArray, comb_trace

    names = [n for n in traced.layers if n in keras_out]
    if not names:
        return None
    arrays = [traced.layers[n].ravel() for n in names]
    flat = np.concatenate([np.asarray(a._vars) for a in arrays])
    probe = comb_trace(traced.inp, FixedVariableArray(flat, arrays[0].solver_options))
    values = probe.predict(xq.reshape(len(xq), -1))
    at = 0
    for n, a in zip(names, arrays):
        if not np.array_equal(values[:, at:at + a.size], keras_out[n]):
            return n
        at += a.size
    return None


def _too_wide(sol: Any) -> str | None:
    """Why da4ml's emulation binder cannot carry this design's ports (it packs each value in an int32), or None."""
    widths = []
    for kifs in (sol.inp_kifs, sol.out_kifs):
        k, i, f = (int(np.max(a)) for a in kifs)
        widths.append(k + i + f)
    if max(widths) <= 32:
        return None
    return (f"not emulated: the RTL's inputs are {widths[0]} and its outputs {widths[1]} bits wide; da4ml's "
            "emulation binder carries at most 32 (narrow --input-precision or the last layer's quantizers)")


def _emulate(qmodel: Any, traced: Any, rtl: Any, twin: Path, options: RtlOptions, x: Any, y: Any) -> dict[str, Any]:
    from ..hls4ml import _labels
    from .tools import compile_emulation

    compile_seconds = compile_emulation(rtl, twin, TOP, options.jobs)
    xq, inputs = _inputs(qmodel, traced, x)
    start = time.perf_counter()
    y_rtl = np.asarray(rtl.predict(xq.reshape(len(xq), -1)), dtype="float64")
    emulate_seconds = time.perf_counter() - start
    names = list(dict.fromkeys([*traced.layers, traced.logits_layer]))
    keras_out = _keras_layers(qmodel, names, xq)
    logits = keras_out[traced.logits_layer]
    exact = np.all(y_rtl == logits, axis=1)
    first = None if exact.all() else _first_divergent(traced, keras_out, xq) or traced.logits_layer
    acc_k = acc_r = None
    if y is not None:
        labels = _labels(y)
        acc_k = float(np.mean(np.argmax(logits, axis=1) == labels))
        acc_r = float(np.mean(np.argmax(y_rtl, axis=1) == labels))
    if exact.all():
        limits = "none: the RTL computes the Keras logits bit for bit"
    else:
        limits = (f"logits differ from Keras from layer '{first}' on: the RTL computes exact fixed-point sums; "
                  "Keras computes in float32, which rounds sums wider than 24 bits")
    return {
        "n_samples": len(xq), "inputs": inputs, "logits_exact_fraction": float(np.mean(exact)),
        "argmax_agreement": float(np.mean(np.argmax(y_rtl, axis=1) == np.argmax(logits, axis=1))),
        "max_abs_diff": float(np.max(np.abs(y_rtl - logits))) if y_rtl.size else 0.0,
        "accuracy_keras": acc_k, "accuracy_rtl": acc_r, "first_divergent_layer": first, "limits": limits,
        "compile_seconds": compile_seconds, "emulate_seconds": emulate_seconds,
    }  # fmt: skip


def export_rtl(qmodel: Any, options: RtlOptions, x: Any = None, y: Any = None) -> RtlResult:
    """Trace ``qmodel`` into da4ml, write the RTL project, emulate it with Verilator against Keras, synthesize with yosys.

    ``x`` (and labels ``y``): the inputs to check on (the held-out split of ``--data``); without them,
    1,000 inputs are sampled in the input type's range. A layer da4ml cannot express raises
    :class:`RtlRefusal` before anything is written; a missing Verilator or yosys is ``emulation_error``
    / ``synth_error`` on the result (the RTL is written all the same).
    """
    check_options(options)
    qmodel, traced, trace_seconds = _trace(qmodel, x, options.input_precision)
    rtl, sol, twin, write_seconds = _write(traced, options)
    notes = []
    if traced.softmax:
        notes.append(f"the final softmax '{traced.softmax}' is left out of the RTL: it outputs the logits of "
                     f"'{traced.logits_layer}'")
    if options.flavor == "vhdl":
        notes.append(f"VHDL in {options.output_dir}/src; Verilator and yosys ran on the same logic written as Verilog "
                     f"in {twin}")
    emulated: dict[str, Any] = {}
    emulation_error = synth_error = None
    skipped = _too_wide(sol) if options.emulate else None
    if skipped:
        emulated = {"limits": skipped, "emulation_skipped": skipped}
    elif options.emulate:
        try:
            emulated = _emulate(qmodel, traced, rtl, twin, options, x, y)
        except ToolMissing as exc:
            emulation_error = f"{exc} (the RTL is written in {options.output_dir})"
    synth = None
    if options.synth:
        from .tools import synthesize

        try:
            synth = synthesize(twin, TOP, options.family)
        except ToolMissing as exc:
            synth_error = f"{exc} (the RTL is written in {options.output_dir})"
    return RtlResult(
        project_dir=Path(options.output_dir), flavor=options.flavor, top=TOP, input_precision=str(traced.input_type),
        input_source=traced.input_source, logits_layer=traced.logits_layer, softmax=traced.softmax,
        figures=_figures(rtl, sol, options.clock_ns, synth), trace_seconds=trace_seconds, write_seconds=write_seconds,
        emulation_error=emulation_error, synth_error=synth_error, notes=tuple(notes), **emulated,
    )  # fmt: skip
