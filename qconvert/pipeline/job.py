"""The one settings object of the main job, built and validated once.

A :class:`Job` says what to load, which rules to apply, which data (with its seed) to calibrate, evaluate and
train on, what to export and where to write. The CLI builds one from its options (:meth:`Job.from_options`),
the Python API builds one directly, a search trial is a job with other rules; all of them are refused by the
same checks, raised as :class:`~qconvert.errors.SettingsError` (exit 2 on the command line).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import OutputError, SettingsError
from ..targets import DEFAULT_MAX_MULTIPLIES, DEFAULT_SOLVE_TIMEOUT, DEFAULT_SYNTH_TIMEOUT

__all__ = ["DataOptions", "Job", "LoadOptions", "Outputs", "default_output"]


def default_output(model_path: str | os.PathLike) -> Path:
    """``model.h5`` → ``model_q.keras``, next to the input."""
    path = Path(model_path)
    return path.with_name(f"{path.stem}_q.keras")


@dataclass(frozen=True)
class LoadOptions:
    """How the model file is read.

    Attributes:
        weights: the weights ``.h5`` of a Keras 2 JSON architecture (None: found beside it).
        custom_objects: classes Keras does not know: a mapping ``name -> class``, or ``MODULE:ATTR`` specs
            (``--custom-objects``) resolved on loading.
        safe_mode: Keras's ``safe_mode``: Lambda layers (whose code runs on loading) are refused unless False.
    """

    weights: Path | None = None
    custom_objects: Mapping[str, Any] | tuple[str, ...] = ()
    safe_mode: bool = True

    def resolved_custom_objects(self) -> dict[str, Any] | None:
        """The custom objects as a mapping (specs imported); raises ModelLoadError for a bad spec."""
        if isinstance(self.custom_objects, Mapping):
            return dict(self.custom_objects) or None
        if not self.custom_objects:
            return None
        from ..model.load import resolve_custom_objects

        return resolve_custom_objects(self.custom_objects)


@dataclass(frozen=True)
class DataOptions:
    """The data of the run: ``.npz``, ``.csv`` or ``X.npy,y.npy`` (see :func:`qconvert.train.data.load_data`).

    Attributes:
        path: the data file(s).
        calibration_rows: training rows that calibrate ``integer: auto`` and measure saturation (None: 2,048).
    """

    path: str | os.PathLike
    calibration_rows: int | None = None

    def __post_init__(self) -> None:
        if self.calibration_rows is not None and self.calibration_rows < 1:
            raise SettingsError(f"calibration rows must be at least 1. Received: calibration_rows={self.calibration_rows}")


@dataclass(frozen=True)
class Outputs:
    """Where the job writes. ``model`` None: ``MODEL_q.keras`` beside the input; ``report`` None: no JSON;
    ``plot`` None: ``OUT_training.png`` beside the output model (only when the job trains)."""

    model: Path | None = None
    report: Path | None = None
    plot: Path | None = None

    def plot_path(self, out: Path) -> Path:
        """The training figure's path for the output model ``out``."""
        return Path(self.plot) if self.plot is not None else out.with_name(f"{out.stem}_training.png")


@dataclass(frozen=True)
class Job:
    """The main job's settings: ``qconvert MODEL --rules R ...`` as one value.

    Attributes:
        model: the FP32 model file (.keras, .h5, Keras 2 .json).
        rules: a :class:`~qconvert.rules.RuleSet` or a rule file path / preset name.
        data: the data, or None (convert only).
        seed: the one seed of the run: data split, calibration rows, shuffling and initial state of training.
        train: QAT options (:class:`~qconvert.train.qat.TrainOptions`), or None. Its ``seed`` is the job's.
        hls4ml: :class:`~qconvert.export.Hls4mlOptions`, or None.
        rtl: :class:`~qconvert.export.rtl.RtlOptions`, or None.
        qonnx: :class:`~qconvert.export.qonnx.QonnxOptions`, or None.
        outputs: where to write (:class:`Outputs`).
        load: how to read the model (:class:`LoadOptions`).
        strict: layers the rules leave float without saying so make the job write nothing.
        target_ebops: cost-aware QAT (:func:`~qconvert.train.target.train_to_target`): the trained model costs at
            most this many EBOPs; the rule file gives the largest precisions. Needs ``train``.

    Raises:
        SettingsError: options that do not fit together, e.g. training without data, or a ``train.seed`` that is
            neither the job's seed nor left at its default.
    """

    model: str | os.PathLike
    rules: Any
    data: DataOptions | None = None
    seed: int = 0
    train: Any = None
    hls4ml: Any = None
    rtl: Any = None
    qonnx: Any = None
    outputs: Outputs = field(default_factory=Outputs)
    load: LoadOptions = field(default_factory=LoadOptions)
    strict: bool = False
    target_ebops: float | None = None

    def __post_init__(self) -> None:
        if self.train is not None:
            if self.data is None:
                raise SettingsError("training needs data: give --data (Python: Job(data=DataOptions(...)))")
            if self.train.epochs < 1:
                raise SettingsError(f"training needs at least 1 epoch. Received: epochs={self.train.epochs}")
            if self.train.seed not in (0, self.seed):
                raise SettingsError(f"two seeds: the job's {self.seed} and the training's {self.train.seed}; "
                                    "give one (the job's seed is the run's)")
            object.__setattr__(self, "train", replace(self.train, seed=self.seed))
        if self.target_ebops is not None:
            if self.train is None:
                raise SettingsError("--target-ebops needs --data and --epochs (Python: train=TrainOptions(...))")
            if self.target_ebops <= 0:
                raise SettingsError(f"--target-ebops must be positive EBOPs. Received: target_ebops={self.target_ebops}")
            if self.train.resume or self.train.distill is not None:
                raise SettingsError("--target-ebops cannot be combined with --resume or --distill")
        out = self.output
        if out.suffix != ".keras":
            raise OutputError(f"{out}: the output must be a .keras file")

    @property
    def output(self) -> Path:
        """The output model path (``outputs.model`` or ``MODEL_q.keras`` beside the input)."""
        return Path(self.outputs.model) if self.outputs.model is not None else default_output(self.model)

    @property
    def calibration_rows(self) -> int | None:
        """Rows that calibrate ``integer: auto`` (None: the default)."""
        return self.data.calibration_rows if self.data is not None else None

    @classmethod
    def from_options(cls, model: str, rules: str, *, output: str | None = None, report: str | None = None,
                     strict: bool = False, data: str | None = None, epochs: int = 0, seed: int = 0,
                     calibration_rows: int | None = None, lr: float | None = None, batch_size: int | None = None,
                     patience: int | None = None, loss: str | None = None, lr_schedule: str | None = None,
                     resume: bool = False, distill: bool = False, distill_temperature: float = 2.0,
                     distill_alpha: float = 0.5, plot: str | None = None, hls4ml_dir: str | None = None,
                     backend: str = "Vitis", part: str = "xcu200-fsgd2104-2-e", io_type: str = "io_parallel",
                     reuse_factor: int = 1, strategy: str | None = None, hls4ml_config: str | None = None,
                     build: bool = False, rtl_dir: str | None = None, clock_ns: float = 5.0, family: str = "xcup",
                     max_multiplies: int = DEFAULT_MAX_MULTIPLIES, solve_timeout: float = DEFAULT_SOLVE_TIMEOUT,
                     synth_timeout: float = DEFAULT_SYNTH_TIMEOUT,
                     rtl_progress: Callable[[str], None] | None = None,
                     qonnx_path: str | None = None, weights: str | None = None, custom_objects: tuple[str, ...] = (),
                     unsafe: bool = False, target_ebops: float | None = None) -> Job:
        """A job from the main job's command-line options (flat, as ``qconvert MODEL --rules R ...`` takes
        them): every "X needs Y" rule of the CLI is checked here.

        Raises:
            SettingsError: an option given without the one it needs (``--epochs`` without ``--data``,
                ``--distill`` without ``--epochs``, ``--build`` without ``--hls4ml``, ...).
        """
        needs = [
            (epochs and not data, "--epochs needs --data"),
            (distill and not epochs, "--distill needs --epochs"),
            (calibration_rows is not None and not data, "--calibration-rows needs --data"),
            (plot is not None and not epochs, "--plot needs --epochs (the figure shows the training)"),
            (target_ebops is not None and not (data and epochs), "--target-ebops needs --data and --epochs"),
            ((build or hls4ml_config or strategy) and not hls4ml_dir,
             "--build, --hls4ml-config and --strategy need --hls4ml DIR"),
        ]
        for failed, message in needs:
            if failed:
                raise SettingsError(message)
        train = None
        if epochs:
            from ..train.qat import Distill, TrainOptions

            train = TrainOptions(epochs=epochs, lr=lr, batch_size=batch_size, patience=patience, seed=seed, loss=loss,
                                 lr_schedule=lr_schedule, resume=resume,
                                 distill=Distill(distill_temperature, distill_alpha) if distill else None)
        hls4ml = None
        if hls4ml_dir:
            from ..export import Hls4mlOptions

            hls4ml = Hls4mlOptions(Path(hls4ml_dir), backend=backend, part=part, io_type=io_type,
                                   reuse_factor=reuse_factor, user_config=Path(hls4ml_config) if hls4ml_config else None,
                                   build=build, strategy=strategy)
        rtl = None
        if rtl_dir:
            from ..export.rtl import RtlOptions

            rtl = RtlOptions(Path(rtl_dir), clock_ns=clock_ns, family=family, max_multiplies=max_multiplies,
                             solve_timeout=solve_timeout, synth_timeout=synth_timeout, progress=rtl_progress)
        qonnx = None
        if qonnx_path:
            from ..export.qonnx import QonnxOptions

            qonnx = QonnxOptions(Path(qonnx_path))
        return cls(
            model=model, rules=rules, seed=seed, train=train, hls4ml=hls4ml, rtl=rtl, qonnx=qonnx, strict=strict,
            target_ebops=target_ebops,
            data=DataOptions(data, calibration_rows) if data else None,
            outputs=Outputs(Path(output) if output else None, Path(report) if report else None,
                            Path(plot) if plot else None),
            load=LoadOptions(Path(weights) if weights else None, tuple(custom_objects), not unsafe),
        )

