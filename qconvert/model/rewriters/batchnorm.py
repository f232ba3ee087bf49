"""BatchNormalization → QBatchNormalization (folding is planned and done elsewhere)."""

from __future__ import annotations

from typing import Any

from ...quantizers import QuantizerSpec
from ...rules import BN_ROLES
from .registry import NewLayer, register

__all__ = ["BN_ROLES", "rewrite_batchnorm"]

_UNSUPPORTED = ("synchronized",)


@register("BatchNormalization")
def rewrite_batchnorm(class_name: str, config: dict[str, Any], quantizers: dict[str, QuantizerSpec]) -> list[NewLayer]:
    """A BN the rules quantize → ``QBatchNormalization``; roles not set keep QKeras's defaults (po2)."""
    new = {k: v for k, v in config.items() if k not in _UNSUPPORTED}
    for role in BN_ROLES:
        if role in quantizers:
            spec = quantizers[role]
            new[f"{role}_quantizer"] = None if spec.is_float else spec
    return [NewLayer("QBatchNormalization", new)]
