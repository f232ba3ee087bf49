"""What one conversion reads from its models, read once.

A conversion asks the same layers for their config and weights at several stages (plan, calibrate,
rewrite), and the cost model reads back every weight the rewriter has just written. Each ``get_config``
serializes the layer's initializers and constraints, each weight read is a TensorFlow operation. A
:class:`Snapshot` made for one conversion answers these from memory after the first time: the config
and weights of each source layer, and the value each variable of the new model was created with. It
holds only while no model changes: make one per conversion, never keep one across training.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

__all__ = ["Snapshot"]


class Snapshot:
    """Layer configs and weights read once, and the values the rewriter gave new variables.

    The dicts and arrays it hands out are shared by every caller: read them, copy before changing.
    """

    def __init__(self) -> None:
        self._configs: dict[int, tuple[Any, dict[str, Any]]] = {}
        self._weights: dict[int, tuple[Any, list[np.ndarray]]] = {}
        self._values: dict[int, tuple[Any, np.ndarray]] = {}  # the object is kept with its entry: ids stay unique

    def config(self, layer: Any) -> dict[str, Any]:
        """``layer.get_config()``, computed the first time."""
        entry = self._configs.get(id(layer))
        if entry is None:
            entry = self._configs[id(layer)] = (layer, layer.get_config())
        return entry[1]

    def weights(self, layer: Any) -> list[np.ndarray]:
        """``layer.get_weights()``, read the first time."""
        entry = self._weights.get(id(layer))
        if entry is None:
            entry = self._weights[id(layer)] = (layer, layer.get_weights())
        return entry[1]

    def remember(self, variable: Any, value: Any) -> None:
        """``variable`` holds ``value`` (kept only when it needs no conversion to the variable's dtype)."""
        array = np.asarray(value)
        if str(array.dtype) == variable.dtype and tuple(array.shape) == tuple(variable.shape):
            self._values[id(variable)] = (variable, array)

    def value(self, variable: Any) -> np.ndarray:
        """What ``variable`` holds: the value it was created with, else read from it."""
        entry = self._values.get(id(variable))
        if entry is not None and entry[0] is variable:
            return entry[1]
        return np.asarray(keras.ops.convert_to_numpy(variable))
