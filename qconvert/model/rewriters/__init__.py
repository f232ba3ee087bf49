"""Layer rewriters: one small pure function per layer family, in an explicit registry.

A rewriter takes the Keras class name, the layer's config and the quantizers the
plan chose (role → spec) and returns the layers that replace it, as
:class:`NewLayer` data (class name + config). It never touches weights or
Keras objects; :mod:`qconvert.model.rewrite` builds the layers and moves the
weights. Each family's module registers itself with :func:`register` (defined
in :mod:`.registry`); the families are imported here, explicitly, never
discovered by a folder scan. To add a family: write its module with a
``@register("KerasClass")`` function and add it to the import below.
"""

from __future__ import annotations

from . import activation, batchnorm, recurrent, weighted  # noqa: F401  the families, for their registrations
from .registry import REGISTRY, NewLayer, Rewriter, register, rewriter_for, with_quantizers

__all__ = ["REGISTRY", "NewLayer", "Rewriter", "register", "rewriter_for", "with_quantizers"]
