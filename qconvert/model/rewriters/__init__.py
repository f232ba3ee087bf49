"""Layer rewriters: one small pure function per layer family, in an explicit registry.

A rewriter takes the Keras class name, the layer's config and the quantizers the
plan chose (role → spec) and returns the layers that replace it, as
:class:`NewLayer` data (class name + config). It never touches weights or
Keras objects; :mod:`qconvert.model.rewrite` builds the layers and moves the
weights. Each family's module registers itself with :func:`register`; the
modules are imported here, explicitly, never discovered by a folder scan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...quantizers import QuantizerSpec

__all__ = ["REGISTRY", "NewLayer", "Rewriter", "register", "rewriter_for", "with_quantizers"]


@dataclass(frozen=True)
class NewLayer:
    """A layer to create. ``takes_weights``: it receives the original layer's weights."""

    class_name: str
    config: dict[str, Any] = field(default_factory=dict)
    takes_weights: bool = True


Rewriter = Callable[[str, dict[str, Any], dict[str, QuantizerSpec]], list[NewLayer]]
REGISTRY: dict[str, Rewriter] = {}


def register(*class_names: str) -> Callable[[Rewriter], Rewriter]:
    """Register ``fn`` as the rewriter of the Keras classes ``class_names``."""

    def deco(fn: Rewriter) -> Rewriter:
        for name in class_names:
            if name in REGISTRY:
                raise RuntimeError(f"two rewriters for {name}")  # a programming error
            REGISTRY[name] = fn
        return fn

    return deco


def rewriter_for(class_name: str) -> Rewriter | None:
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


# The families, imported for their registrations (order does not matter).
from . import activation, batchnorm, recurrent, weighted  # noqa: E402,F401
