"""New layers whose variables are created holding their final weights, not random values overwritten later.

Keras creates a layer's variables in ``build`` through ``add_weight``, each from its initializer. The
rewriter used to let the initializers draw random values (QKeras's ``QInitializer`` also runs the
quantizer on what it draws) and then overwrite every variable with ``set_weights``; drawing took longer
than the rest of the build. :class:`PresetWeights` makes ``add_weight`` create each variable from the
value ``set_weights`` would give it. ``layer.weights`` lists a layer's trainable variables in the order
they were created, then its non-trainable ones, then its sub-layers' (an RNN's cell), so the guess is:
the k-th trainable variable created is ``weights[k]``; a non-trainable one created after ``t`` trainable
and ``n`` non-trainable ones is ``weights[t + n]`` (batch normalization's moving statistics come last).
:meth:`PresetWeights.finish` checks every guess against ``layer.weights`` and calls ``set_weights`` when
one was wrong, so the weights are the same either way. The values go through the conversion
``set_weights`` uses (``convert_to_tensor`` to the variable's dtype). The layer's initializers are
neither called nor changed, so its config is the one it had.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from .snapshot import Snapshot

__all__ = ["PresetWeights"]

_ZEROS = keras.initializers.Zeros()  # for a variable no weight fits: cheaper than a random draw


class _Value:
    """An initializer that returns one given array, converted to the variable's dtype."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        return keras.ops.convert_to_tensor(self.value, dtype=dtype)


def _shape(shape: Any) -> tuple[int, ...]:
    if shape is None:
        return ()
    return tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)


class PresetWeights:
    """Makes ``layer`` (not yet built) and its sub-layers create their variables from ``weights``, the list
    ``layer.set_weights`` takes, until :meth:`restore`. Use: ``install()``, build the layer (call it),
    ``restore()``, then ``finish()`` (which also tells ``snapshot`` what each variable holds)."""

    def __init__(self, layer: keras.layers.Layer, weights: list[np.ndarray], snapshot: Snapshot | None = None) -> None:
        self.layer = layer
        self.weights = weights
        self.snapshot = snapshot  # told what each variable holds, for the cost model
        self.given: dict[int, int] = {}  # id(variable) → the index in ``weights`` whose value it was created with
        self.trainable = 0  # variables created so far, trainable and not
        self.frozen = 0
        self.patched: list[Any] = []

    def install(self) -> None:
        """Replace ``add_weight`` of the layer and its sub-layers (instance attributes, past Keras's tracking)."""
        for sub in self.layer._flatten_layers(include_self=True):
            object.__setattr__(sub, "add_weight", self._wrap(sub.add_weight))
            self.patched.append(sub)

    def restore(self) -> None:
        """Give the layers back their own ``add_weight``."""
        for sub in self.patched:
            if "add_weight" in vars(sub):
                object.__delattr__(sub, "add_weight")
        self.patched = []

    def finish(self) -> None:
        """Set the weights that were not created with their value (all of them when any guess was wrong)."""
        variables = self.layer.weights
        if len(variables) != len(self.weights) or any(self.given.get(id(v)) != i for i, v in enumerate(variables)):
            self.layer.set_weights(self.weights)
        if self.snapshot is not None:
            for variable, value in zip(variables, self.weights):
                self.snapshot.remember(variable, value)

    def _wrap(self, add_weight: Callable[..., Any]) -> Callable[..., Any]:
        def preset_add_weight(*args: Any, **kwargs: Any) -> Any:
            shape = kwargs.get("shape", args[0] if args else None)
            trainable = kwargs.get("trainable", True)
            index = self.trainable if trainable else self.trainable + self.frozen
            if trainable:
                self.trainable += 1
            else:
                self.frozen += 1
            fits = index < len(self.weights) and tuple(np.shape(self.weights[index])) == _shape(shape)
            initializer = _Value(self.weights[index]) if fits else _ZEROS
            if len(args) > 1:  # Keras 2 style add_weight(shape, initializer, dtype)
                args = (args[0], initializer, *args[2:])
            else:
                kwargs["initializer"] = initializer
            variable = add_weight(*args, **kwargs)
            if fits:
                self.given[id(variable)] = index
            return variable

        return preset_add_weight
