"""Hand a QKeras (qkeras-v3) model to hls4ml: bridge handlers, derived config, compile, verify, build.

The only qconvert module that imports hls4ml (with :mod:`.handlers`, which it loads); the import
happens inside the functions, so ``import qconvert.export`` stays cheap.

:func:`export` registers the handlers, parses the model with hls4ml's Keras-3 parser (no Keras-2
or DA fallback), derives every precision (:mod:`.derive`), merges the user's hls4ml YAML on top,
writes and compiles the project, then runs the Keras model and the emulation on the same inputs
and compares them layer by layer. With ``build``, it runs synthesis when the backend's tool is
installed; when it is not, the result carries ``build_error`` (the CLI prints it and exits 2; the
project is written and compiled all the same) — :meth:`Hls4mlResult.raise_for_build` raises it.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import re
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExportError
from .derive import Derived, LayerPrecision, SoftmaxPlan, derive
from .flatten import flatten_nested
from .precision import FixedType, parse_hls

__all__ = [
    "BACKENDS",
    "STRATEGIES",
    "SYNTHESIS_TOOLS",
    "BuildReport",
    "Hls4mlOptions",
    "Hls4mlResult",
    "ImplementedPrecision",
    "LayerPrecision",
    "bops_at_precisions",
    "check_options",
    "derive_config",
    "export",
    "implemented_precisions",
    "register_handlers",
    "round_to_type",
]  # fmt: skip

# Backends whose io_parallel / io_stream templates qconvert derives configurations for, and the
# program each one's hls4ml ``build()`` runs (hls4ml 1.3: Vitis runs ``vitis-run``).
SYNTHESIS_TOOLS = {"Vitis": "vitis-run", "Vivado": "vivado_hls"}
BACKENDS = tuple(SYNTHESIS_TOOLS)
IO_TYPES = ("io_parallel", "io_stream")
_PART = re.compile(r"^xc[a-z0-9]+(-[a-z0-9]+)+$", re.IGNORECASE)  # Xilinx: xcu200-fsgd2104-2-e, xc7z020clg400-1
N_SAMPLED = 1000
# hls4ml's strategies; distributed_arithmetic (da4ml, hls4ml's "da" extra) also estimates LUTs per layer
STRATEGIES = ("Latency", "Resource", "distributed_arithmetic")
DA = "distributed_arithmetic"


@dataclass(frozen=True)
class Hls4mlOptions:
    output_dir: Path
    backend: str = "Vitis"
    part: str = "xcu200-fsgd2104-2-e"
    io_type: str = "io_parallel"
    reuse_factor: int = 1
    user_config: Path | None = None
    build: bool = False
    input_precision: str | None = None
    strategy: str | None = None  # None: Latency (Resource with reuse_factor > 1); or one of STRATEGIES


@dataclass(frozen=True)
class BuildReport:
    latency_min: int | None
    latency_max: int | None
    ii_min: int | None
    ii_max: int | None
    lut: int | None
    ff: int | None
    dsp: int | None
    bram_18k: int | None
    clock_ns: float | None


@dataclass(frozen=True)
class ImplementedPrecision:
    """Bits hls4ml implements for one layer's multiply-accumulate (what the cost model takes)."""

    weight_bits: int
    input_bits: int
    accum_bits: int


@dataclass(frozen=True)
class OutputCheck:
    """One model output, the emulation against Keras: ``argmax_agreement`` only where it has several units."""

    name: str
    units: int
    exact_fraction: float
    max_abs_diff: float
    argmax_agreement: float | None

@dataclass(frozen=True)
class Hls4mlResult:
    project_dir: Path
    backend: str
    part: str
    io_type: str
    n_samples: int
    inputs: str  # "given" | "sampled"
    argmax_agreement: float
    exact_fraction: float
    logits_exact_fraction: float | None  # None without a final softmax
    max_abs_diff: float
    accuracy_keras: float | None
    accuracy_hls4ml: float | None
    first_divergent_layer: str | None
    layers_exact: dict[str, float]
    precisions: tuple[LayerPrecision, ...]
    input_source: str
    limits: str
    compile_seconds: float  # writing and compiling the project with g++ (and the traced run)
    inputs_rounded: float = 0.0  # fraction of samples the input type changed (Keras and hls4ml both saw the rounded ones)
    softmax: SoftmaxPlan | None = None
    build: BuildReport | None = None
    build_error: str | None = None  # the synthesis tool is missing: the CLI exits 2
    notes: tuple[str, ...] = field(default_factory=tuple)
    strategy: str = "Latency"
    lut_da: dict[str, float] = field(default_factory=dict)  # da4ml's LUT estimate per layer (distributed_arithmetic)
    outputs: tuple[OutputCheck, ...] = ()  # one per model output, in the model's order

    def raise_for_build(self) -> None:
        if self.build_error:
            raise ExportError(self.build_error)

    def to_dict(self) -> dict[str, Any]:
        """The ``hls4ml`` section of the JSON report."""
        return {
            "argmax_agreement": self.argmax_agreement,
            "exact_fraction": self.exact_fraction,
            "logits_exact_fraction": self.logits_exact_fraction,
            "accuracy_keras": self.accuracy_keras,
            "accuracy_hls4ml": self.accuracy_hls4ml,
            "max_abs_diff": self.max_abs_diff,
            "first_divergent_layer": self.first_divergent_layer,
            "project_dir": str(self.project_dir),
            "backend": self.backend,
            "part": self.part,
            "io_type": self.io_type,
            "n_samples": self.n_samples,
            "inputs": self.inputs,
            "input_precision": self.input_source,
            "inputs_rounded": self.inputs_rounded,
            "softmax": asdict(self.softmax) if self.softmax else None,
            "layers_exact": self.layers_exact,
            "precisions": [asdict(p) for p in self.precisions],
            "limits": self.limits,
            "notes": list(self.notes),
            "compile_seconds": round(self.compile_seconds, 1),
            "build": asdict(self.build) if self.build else None,
            "build_error": self.build_error,
            "strategy": self.strategy,
            "lut_da": self.lut_da or None,
            "lut_da_total": sum(self.lut_da.values()) if self.lut_da else None,
            "outputs": [asdict(o) for o in self.outputs],
        }


def register_handlers() -> tuple[str, ...]:
    """Register qconvert's Keras-3 layer handlers with hls4ml (idempotent); the layer keys they cover."""
    with _quiet():
        from . import handlers
    return handlers.install()


@contextlib.contextmanager
def _quiet():
    """hls4ml prints progress on stdout; qconvert reports through its own report."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def check_options(options: Hls4mlOptions) -> Hls4mlOptions:
    """Validate backend, part, io type, reuse factor, user config and output folder (created); normalized options."""
    backend = next((b for b in BACKENDS if b.lower() == str(options.backend).lower()), None)
    if backend is None:
        raise ExportError(f"unknown hls4ml backend '{options.backend}'; valid: {', '.join(BACKENDS)}")
    if not _PART.match(str(options.part)):
        raise ExportError(f"unknown FPGA part '{options.part}' for {backend}: expected a Xilinx part such as xcu200-fsgd2104-2-e")
    if options.io_type not in IO_TYPES:
        raise ExportError(f"unknown io type '{options.io_type}'; valid: {', '.join(IO_TYPES)}")
    if not isinstance(options.reuse_factor, int) or options.reuse_factor < 1:
        raise ExportError(f"reuse factor must be a positive integer. Received: reuse_factor={options.reuse_factor!r}")
    if options.user_config is not None and not Path(options.user_config).is_file():
        raise ExportError(f"{options.user_config}: hls4ml config file not found")
    strategy = next((s for s in STRATEGIES if s.lower() == str(options.strategy).lower()), None)
    if options.strategy is not None and strategy is None:
        raise ExportError(f"unknown hls4ml strategy '{options.strategy}'; valid: {', '.join(STRATEGIES)}")
    if strategy == DA:
        _check_da(options)
    out = Path(options.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".qconvert-write-test"):
            pass
    except OSError as exc:
        raise ExportError(f"{out}: output folder is not writable: {exc.strerror or exc}") from None
    return Hls4mlOptions(out.resolve(), backend, options.part, options.io_type, options.reuse_factor,
                         options.user_config, options.build, options.input_precision, strategy)


def _check_da(options: Hls4mlOptions) -> None:
    """distributed_arithmetic: da4ml installed (qconvert's ``da`` extra), io_parallel, reuse factor 1."""
    try:
        import da4ml  # noqa: F401
    except ImportError:
        raise ExportError("--strategy distributed_arithmetic needs da4ml: pip install 'qconvert[da]'") from None
    if options.io_type != "io_parallel" or options.reuse_factor != 1:
        raise ExportError("--strategy distributed_arithmetic needs --io-type io_parallel and --reuse-factor 1 (hls4ml 1.3)")


def _load_user_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ExportError(f"{path}: cannot read hls4ml config: {exc}") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: an hls4ml config must be a mapping (Model, LayerName, LayerType)")
    unknown = set(data) - {"Model", "LayerName", "LayerType", "Flows", "Optimizers", "SkipOptimizers"}
    if unknown:
        raise ExportError(f"{path}: unknown hls4ml config key(s) {', '.join(sorted(unknown))}")
    return data


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _parse(qmodel: Any) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """hls4ml's Keras-3 parse with qconvert's handlers; layers :func:`.support.refusal` turns away name themselves."""
    from hls4ml.converters.keras_v3_to_hls import parse_keras_v3_model

    from .handlers import UnsupportedLayer
    from .support import refusal

    register_handlers()
    model = getattr(qmodel, "_functional", None) or qmodel
    for layer in model.layers:
        reason = refusal(layer)
        if reason is not None:
            raise UnsupportedLayer(reason)
    try:
        with _quiet():  # Keras-2 handlers only for the plain Keras layers refusal() lets through
            layers, inputs, outputs, _ = parse_keras_v3_model(qmodel, allow_da_fallback=False, allow_v2_fallback=True)
    except UnsupportedLayer:
        raise
    except (AssertionError, AttributeError, ValueError, NotImplementedError, KeyError, TypeError) as exc:
        raise ExportError(f"hls4ml cannot parse the model: {exc}") from None
    return layers, inputs, outputs


def derive_config(qmodel: Any, options: Hls4mlOptions, x: Any = None) -> tuple[Derived, list[dict[str, Any]], list[str], list[str]]:
    """Parse ``qmodel`` and derive its hls4ml config (user YAML merged on top); nothing is written."""
    layers, inputs, outputs = _parse(qmodel)
    user = _load_user_config(options.user_config)
    named = user.get("LayerName") or {}

    def pinned(layer: str, key: str) -> Any:
        cfg = named.get(layer) or {}
        if key == "result":
            prec = cfg.get("Precision")
            return prec.get("result") if isinstance(prec, dict) else prec
        return cfg.get(key)

    # what the user pins there changes what follows from it: the input type, the softmax tables
    input_precision = options.input_precision or (pinned(inputs[0], "result") if inputs else None)
    table_sizes = {d["name"]: int(pinned(d["name"], "table_size") or pinned(d["name"], "TableSize") or 0)
                   for d in layers if d["class_name"] == "Softmax"}
    try:
        derived = derive(layers, reuse_factor=options.reuse_factor, input_precision=input_precision, x=x,
                         table_sizes={k: v for k, v in table_sizes.items() if v})
    except ValueError as exc:
        raise ExportError(f"{options.user_config or 'hls4ml config'}: {exc}") from None
    if options.strategy is not None:
        derived.config["Model"]["Strategy"] = options.strategy
    derived.config = _merge(derived.config, user)
    return derived, layers, inputs, outputs


def implemented_precisions(qmodel: Any, options: Hls4mlOptions | None = None, x: Any = None) -> dict[str, ImplementedPrecision]:
    """Per layer with a multiply-accumulate: the weight, input and accumulator bits hls4ml implements.

    Pass the result to :func:`qconvert.model.cost.model_cost` as ``precisions``.
    """
    opts = options or Hls4mlOptions(Path(tempfile.gettempdir()))
    derived, *_ = derive_config(qmodel, opts, x)
    return {
        p.name: ImplementedPrecision(p.weight_bits, p.input_bits, p.accum_bits)
        for p in derived.precisions
        if p.weight_bits is not None and p.input_bits is not None and p.accum_bits is not None
    }


def bops_at_precisions(qmodel: Any, precisions: tuple[LayerPrecision, ...] | list[LayerPrecision]) -> dict[str, Any]:
    """BOPs with the bits hls4ml implements: per MAC, ``b_w·b_in`` for the product plus the accumulator's width.

    The MAC counts come from :func:`qconvert.model.cost.model_cost`; the keys it returns go into the report's
    ``hls4ml`` section (``bops`` in all, ``bops_per_layer``).
    """
    from ..model.cost import model_cost

    costs = model_cost(qmodel)
    per_layer: dict[str, float] = {}
    for p in precisions:
        c = costs.get(p.name)
        if c is None or p.weight_bits is None or p.input_bits is None or p.accum_bits is None:
            continue
        per_layer[p.name] = float(c.macs) * (p.weight_bits * p.input_bits + p.accum_bits)
    return {"bops": sum(per_layer.values()), "bops_per_layer": per_layer}


def _input_type(derived: Derived) -> FixedType:
    first = next(p for p in derived.precisions if p.class_name == "InputLayer")
    return parse_hls(first.result)


def _sample_inputs(qmodel: Any, t: FixedType, n: int = N_SAMPLED, seed: int = 0) -> np.ndarray:
    """Inputs in the model's range: normal, at most a quarter of the input type's range wide."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in qmodel.inputs[0].shape[1:])
    return rng.normal(0.0, min(1.0, t.max_abs / 4), size=(n, *shape))


def round_to_type(x: np.ndarray, t: FixedType) -> np.ndarray:
    """``x`` as the firmware receives it in type ``t``: rounded half to even, saturated."""
    if t.kind != "fixed":
        return np.asarray(x, dtype="float64")
    step = 2.0**-t.frac
    low = -t.max_abs if t.signed else 0.0
    high = (2.0 ** (t.integer - 1) if t.signed else 2.0**t.integer) - step
    return np.clip(np.round(np.asarray(x, dtype="float64") / step) * step, low, high)


def _labels(y: Any) -> np.ndarray:
    y = np.asarray(y)
    return np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(-1).astype(int)


def _write_project(qmodel: Any, options: Hls4mlOptions, derived: Derived, layers: list[dict[str, Any]],
                   in_names: list[str], out_names: list[str]) -> Any:
    import hls4ml
    from hls4ml.model import ModelGraph

    config = hls4ml.utils.config.create_config(
        output_dir=str(options.output_dir), project_name="myproject", backend=options.backend,
        part=options.part, io_type=options.io_type,
    )  # fmt: skip
    config.update(KerasModel=qmodel, InputData=None, OutputPredictions=None, HLSConfig=derived.config)
    try:
        with _quiet():
            return ModelGraph.from_layer_list(config, layers, in_names, out_names)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"hls4ml cannot build the model graph: {type(exc).__name__}: {exc}") from None


def export(qmodel: Any, options: Hls4mlOptions, x: Any = None, y: Any = None) -> Hls4mlResult:
    """Convert ``qmodel`` to an hls4ml project, compile it, verify it against Keras, optionally build it.

    ``x`` (and labels ``y``) are the validation inputs; without them, inputs are sampled in the
    input type's range. Raises :class:`ExportError` for bad options, layers the bridge cannot
    convert and compile failures; a missing synthesis tool is ``build_error`` on the result.
    """
    options = check_options(options)
    qmodel = flatten_nested(qmodel)  # hls4ml parses one flat graph; the same layers, so the same numbers
    if len(qmodel.inputs) != 1:
        raise ExportError(f"model '{qmodel.name}': the hls4ml bridge handles single-input models "
                          f"(this one has {len(qmodel.inputs)} inputs)")
    derived, layers, in_names, out_names = derive_config(qmodel, options, x)
    _check_io_type(layers, options.io_type)
    hls_model = _write_project(qmodel, options, derived, layers, in_names, out_names)
    in_type = _input_type(derived)
    given = x is not None
    xs = np.asarray(x, dtype="float64") if given else _sample_inputs(qmodel, in_type)
    xq = np.ascontiguousarray(round_to_type(xs, in_type))
    start = time.perf_counter()
    ys_hls, trace = _trace(hls_model, xq, options.output_dir, options.io_type)  # writes, compiles, runs it (isolated)
    compile_seconds = time.perf_counter() - start
    result = _verify(qmodel, hls_model, derived, xs, xq, ys_hls, trace, y)
    build, build_error = None, None
    if options.build:
        build, build_error = _build(hls_model, options)
    lut_da = {name: float(node.attributes["da_kernel_cost"]) for name, node in hls_model.graph.items()
              if node.attributes.get("da_kernel_cost") is not None}
    return Hls4mlResult(
        project_dir=options.output_dir, backend=options.backend, part=options.part, io_type=options.io_type,
        n_samples=len(xs), inputs="given" if given else "sampled", precisions=tuple(derived.precisions),
        input_source=derived.input_source, compile_seconds=compile_seconds, build=build, build_error=build_error,
        notes=tuple(derived.notes), softmax=derived.softmax, strategy=derived.config["Model"]["Strategy"],
        lut_da=lut_da, **result,
    )  # fmt: skip


def _check_io_type(layers: list[dict[str, Any]], io_type: str) -> None:
    """What hls4ml's C++ asserts on for this io type is refused before anything compiles."""
    from .handlers import UnsupportedLayer
    from .support import io_refusal

    for d in layers:
        reason = io_refusal(d, io_type)
        if reason is not None:
            raise UnsupportedLayer(reason)


def _keras_outputs(qmodel: Any, names: list[str], xs: np.ndarray) -> dict[str, np.ndarray]:
    import keras

    names = [n for n in names if _has_layer(qmodel, n)]
    probe = keras.Model(qmodel.inputs, [qmodel.get_layer(n).output for n in names])
    outs = probe.predict(xs.astype("float32"), verbose=0, batch_size=1024)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {n: np.asarray(o, dtype="float64").reshape(len(xs), -1) for n, o in zip(names, outs)}


def _has_layer(model: Any, name: str) -> bool:
    try:
        model.get_layer(name)
        return True
    except ValueError:
        return False


def _trace(hls_model: Any, xs: np.ndarray, where: Path, io_type: str) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """Write and compile the project (with trace hooks) here, run it in a child process, every layer's output kept;
    the model's outputs, one ``(n, units)`` array each.

    The emulation is hls4ml's C++ loaded into the process: an assertion there aborts whatever runs it,
    so it runs in a forked child and an abort becomes an :class:`ExportError` naming the layer.
    """
    try:
        with _quiet():
            hls_model.config.trace_output = True
            hls_model.compile()
    except Exception as exc:
        raise ExportError(f"hls4ml could not write or compile the project in {where}: {exc}") from None
    y, trace = _run_isolated(hls_model, xs, Path(where), io_type)
    n = len(xs)
    ys = y if isinstance(y, list) else [y]
    return [np.asarray(o, dtype="float64").reshape(n, -1) for o in ys], {k: np.asarray(v).reshape(n, -1) for k, v in trace.items()}


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
                with _quiet():
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
        raise ExportError(_crash_message(hls_model, errors.read_text(errors="replace"), status, io_type))


_ASSERTION = re.compile(r"Assertion `(?P<what>.*)' failed")
_CONFIG = re.compile(r"CONFIG_T = config(?P<index>\d+)\b")


def _crash_message(hls_model: Any, stderr: str, status: int, io_type: str) -> str:
    """One line: which layer's C++ failed under which io type, and how."""
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


def _exact(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.all(a == b, axis=1)))


def _verify(qmodel: Any, hls_model: Any, derived: Derived, xs: np.ndarray, xq: np.ndarray, ys_hls: list[np.ndarray],
            trace: dict[str, np.ndarray], y: Any) -> dict[str, Any]:
    """Keras and the emulation on the same (input-type) inputs: agreement, exactness, first divergent layer.

    Every output is checked (``outputs``); the headline agreement is that of the first output with
    several units (a classifier head), exactness and the largest difference are over all outputs.
    """
    order = [layer.name for layer in hls_model.get_layers() if layer.name in trace]
    keras_out = _keras_outputs(qmodel, order, xq)
    predicted = qmodel.predict(xq.astype("float32"), verbose=0, batch_size=1024)
    ys_keras = [np.asarray(o, dtype="float64").reshape(len(xq), -1)
                for o in (predicted if isinstance(predicted, (list, tuple)) else [predicted])]
    names = list(getattr(hls_model, "outputs", None) or [f"output_{i}" for i in range(len(ys_keras))])
    checks = [_check(name, h, k) for name, h, k in zip(names, ys_hls, ys_keras)]
    head = next((i for i, k in enumerate(ys_keras) if k.shape[1] > 1), 0)
    y_hls, y_keras = ys_hls[head], ys_keras[head]
    all_exact = float(np.mean(np.all([np.all(h == k, axis=1) for h, k in zip(ys_hls, ys_keras)], axis=0)))
    layers_exact = {n: _exact(trace[n], keras_out[n]) for n in order if n in keras_out and trace[n].shape == keras_out[n].shape}
    first = next((n for n, f in layers_exact.items() if f < 1.0), None)
    if first is None and all_exact < 1.0:
        first = order[-1] if order else None
    sm: SoftmaxPlan | None = derived.softmax
    logits_exact = None
    ties = 0
    if sm is not None and sm.logits_layer in trace and sm.logits_layer in keras_out:
        logits = keras_out[sm.logits_layer]
        logits_exact = _exact(trace[sm.logits_layer], logits)
        top2 = np.sort(logits, axis=1)[:, -2:] if logits.shape[1] > 1 else np.zeros((len(xq), 2))
        ties = int(np.sum(top2[:, 1] - top2[:, 0] < sm.step / 2))
    agree = float(np.mean(np.argmax(y_hls, axis=1) == np.argmax(y_keras, axis=1)))
    # identical: the head's logits (before a final softmax) or the head's outputs, and every other output
    head_identical = logits_exact == 1.0 if logits_exact is not None else checks[head].exact_fraction == 1.0
    identical = head_identical and all(c.exact_fraction == 1.0 for i, c in enumerate(checks) if i != head)
    acc_k = acc_h = None
    if y is not None:
        labels = _labels(y)
        # the Keras model's own accuracy, on the inputs as given (the seed's comparison)
        raw = y_keras if np.array_equal(xs, xq) else qmodel.predict(xs.astype("float32"), verbose=0, batch_size=1024)
        y_raw = np.asarray(raw[head] if isinstance(raw, (list, tuple)) else raw).reshape(len(xs), -1)
        acc_k = float(np.mean(np.argmax(y_raw, axis=1) == labels))
        acc_h = float(np.mean(np.argmax(y_hls, axis=1) == labels))
    return {
        "argmax_agreement": agree,
        "exact_fraction": all_exact,
        "logits_exact_fraction": logits_exact,
        "max_abs_diff": max(c.max_abs_diff for c in checks),
        "accuracy_keras": acc_k,
        "accuracy_hls4ml": acc_h,
        "first_divergent_layer": first,
        "layers_exact": layers_exact,
        "inputs_rounded": float(np.mean(np.any((xs != xq).reshape(len(xs), -1), axis=1))),
        "limits": _limits(derived, sm, ties, len(xq), first, identical, set(layers_exact)),
        "outputs": tuple(checks),
    }


def _check(name: str, h: np.ndarray, k: np.ndarray) -> OutputCheck:
    agree = float(np.mean(np.argmax(h, axis=1) == np.argmax(k, axis=1))) if k.shape[1] > 1 else None
    diff = float(np.max(np.abs(h - k))) if h.size else 0.0
    return OutputCheck(name, int(k.shape[1]), _exact(h, k), diff, agree)


def _limits(derived: Derived, sm: SoftmaxPlan | None, ties: int, n: int, first: str | None, identical: bool,
            traced: set[str]) -> str:
    """What keeps the emulation from matching Keras bit for bit, in words; "none" only when the logits are identical."""
    parts = []
    if not identical:
        parts.append(_divergence(derived, first, traced))
    if sm is not None:
        parts.append(
            f"softmax '{sm.layer}' is a table lookup ({sm.table_size}-entry tables, exp_table_t "
            f"{sm.types['exp_table_t']}, inv_table_t {sm.types['inv_table_t']}): the exp table is addressed by "
            f"x_max - x in steps of {sm.step:g} ({sm.types['inp_norm_t']}), so a logit within {sm.step / 2:g} of the "
            f"maximum ties with it and argmax takes the lower index ({ties} of {n} samples here); each doubling "
            "of table_size halves the step at twice the table memory"
        )
    inexact = [p.name for p in derived.precisions if not p.exact and p.class_name not in ("Softmax", "InputLayer")]
    if inexact:
        parts.append("not bit-exact by construction: " + ", ".join(inexact))
    return "; ".join(parts) or "none: every layer's type holds what Keras computes"


def _divergence(derived: Derived, first: str | None, traced: set[str]) -> str:
    """The first layer whose output differs from Keras, and why, from what the derivation knows of it and of
    the layers before it that the trace cannot see (hls4ml renames or splits some layers)."""
    if first is None:
        return "logits differ from Keras; no traced layer differs, so the first divergent layer and the cause are unknown"
    order = [p.name for p in derived.precisions]
    upto = derived.precisions[: order.index(first) + 1] if first in order else []
    suspects = [p for p in upto if p.note and p.class_name != "InputLayer" and (p.name == first or p.name not in traced)]
    if suspects:
        why = "; ".join(f"'{p.name}' ({p.class_name}): {p.note}" for p in suspects)
        return f"logits differ from Keras from layer '{first}' on: {why}"
    return (f"logits differ from Keras from layer '{first}' on: cause unknown (every type up to it is derived to hold "
            "what Keras computes; please report it)")


def _build(hls_model: Any, options: Hls4mlOptions) -> tuple[BuildReport | None, str | None]:
    tool = SYNTHESIS_TOOLS[options.backend]
    if shutil.which(tool) is None:
        return None, (
            f"--build: '{tool}' ({options.backend} HLS) is not on PATH; the project is written and compiled "
            f"in {options.output_dir}"
        )
    try:
        with _quiet():
            hls_model.build(csim=False, synth=True, log_to_stdout=False) if options.backend == "Vitis" else hls_model.build(csim=False, synth=True)
            from hls4ml.report import parse_vivado_report

            report = parse_vivado_report(str(options.output_dir)) or {}
    except Exception as exc:
        raise ExportError(f"synthesis with {tool} failed: {exc} (logs in {options.output_dir})") from None
    return _build_report(report.get("CSynthesisReport", {})), None


def _build_report(rep: dict[str, Any]) -> BuildReport:
    def num(key: str) -> int | None:
        try:
            return int(float(rep[key]))
        except (KeyError, TypeError, ValueError):
            return None

    clock = rep.get("EstimatedClockPeriod")
    return BuildReport(num("BestLatency"), num("WorstLatency"), num("IntervalMin"), num("IntervalMax"), num("LUT"),
                       num("FF"), num("DSP") if "DSP" in rep else num("DSP48E"), num("BRAM_18K"),
                       float(clock) if clock else None)

