"""The rewriter registry: Keras class name → the pure function that rewrites it.

Each family module registers its rewriter with the :func:`register` decorator;
:mod:`qconvert.model.rewriters` imports the families explicitly (no folder
scan), so the registry is complete once that package is imported. This module
imports no family: the families import it, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...quantizers import QuantizerSpec

__all__ = ["REGISTRY", "NewLayer", "Rewriter", "register", "rewriter_for", "with_quantizers"]


@dataclass(frozen=True)
class NewLayer:
    """A layer to create, as data: ``class_name`` (a QKeras or Keras class), its ``config``
    (quantizers as :class:`QuantizerSpec`), and ``takes_weights``: whether it receives the original
    layer's weights (False for layers a rewrite adds, e.g. a split activation or a padding)."""

    class_name: str
    config: dict[str, Any] = field(default_factory=dict)
    takes_weights: bool = True


#: ``(keras class name, layer config, role → quantizer) → the layers that replace it``.
Rewriter = Callable[[str, dict[str, Any], dict[str, QuantizerSpec]], list[NewLayer]]
#: Keras class name → its rewriter; filled by :func:`register` when the families are imported.
REGISTRY: dict[str, Rewriter] = {}


def register(*class_names: str) -> Callable[[Rewriter], Rewriter]:
    """Decorator: register the decorated function as the rewriter of the Keras classes ``class_names``.

    Raises :class:`RuntimeError` when a class already has a rewriter (a programming error).
    """

    def deco(fn: Rewriter) -> Rewriter:
        for name in class_names:
            if name in REGISTRY:
                raise RuntimeError(f"two rewriters for {name}")
            REGISTRY[name] = fn
        return fn

    return deco


def rewriter_for(class_name: str) -> Rewriter | None:
    """The rewriter registered for the Keras class ``class_name``, None when it has none."""
    return REGISTRY.get(class_name)


def with_quantizers(config: dict[str, Any], roles: tuple[str, ...], quantizers: dict[str, QuantizerSpec],
                    inert: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with ``ROLE_quantizer`` set for each role (None: float) and the Keras 3
    arguments the Q-layer does not take dropped where they have their ``inert`` value."""
    new = {k: v for k, v in config.items() if not (k in inert and v == inert[k])}
    for role in roles:
        spec = quantizers.get(role)
        new[f"{role}_quantizer"] = None if spec is None or spec.is_float else spec
    return new
