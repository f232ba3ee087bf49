"""The inputs of a run: the model file and the data, loaded and checked against each other, and the loss.

Written once for the main job, ``rules show``, ``qconvert rtl`` and the search's workbench.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .job import LoadOptions

__all__ = ["Inputs", "load_inputs"]


@dataclass(frozen=True)
class Inputs:
    """A loaded model file and its data.

    Attributes:
        source: the model file (checked to exist and be readable).
        model: the Keras model.
        dataset: the :class:`~qconvert.train.data.Dataset`, split with the run's seed, or None without data.
        loss: the loss of the run (the model's compiled loss, else inferred from its output), None without data.
    """

    source: Path
    model: Any
    dataset: Any = None
    loss: str | None = None


def load_inputs(model: str | os.PathLike, data: str | os.PathLike | None = None, *, seed: int = 0,
                load: LoadOptions | None = None, outputs: bool = True, single_io: bool = True) -> Inputs:
    """Load ``model`` and ``data`` (split with ``seed``) and check that they fit.

    With ``outputs``, the model must have one input and one output and the labels must match the output's
    width; without, only the input shape is checked (calibration rows for ``rules show``). ``single_io`` False
    lets a multi-output model through (only its first output is checked).

    Raises:
        ModelLoadError: the model file is missing or not a Keras model.
        DataError: the data is unreadable or does not fit the model.
    """
    from ..model.load import check_model_path, load_model

    load = load or LoadOptions()
    source = check_model_path(model)
    dataset = None
    if data is not None:
        from ..train.data import load_data

        dataset = load_data(data, seed=seed)  # data errors before the (slower) model load
    keras_model = load_model(source, safe_mode=load.safe_mode, weights=load.weights,
                             custom_objects=load.resolved_custom_objects())
    if dataset is None:
        return Inputs(source, keras_model)
    from ..train.data import check_fits_model, check_one_input_one_output
    from ..train.qat import infer_loss, loss_from_file

    if outputs and single_io:
        check_one_input_one_output(data, keras_model.name, len(keras_model.inputs), len(keras_model.outputs))
    width = int(keras_model.outputs[0].shape[-1]) if outputs else None
    check_fits_model(dataset, tuple(keras_model.inputs[0].shape), width)
    loss = infer_loss(keras_model, dataset, loss_from_file(source)) if outputs else None
    return Inputs(source, keras_model, dataset, loss)
