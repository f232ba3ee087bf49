"""Activations: which QKeras quantizer fits which Keras activation function.

Pure functions of config dicts; no Keras import. ``Activation``, ``ReLU`` and
``LeakyReLU`` layers become ``QActivation``; so does the activation split out
of a layer's ``activation=`` argument.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ...quantizers import QuantizerSpec
from ...rules import ActivationPolicy
from .registry import NewLayer, register

__all__ = ["ACTIVATION_LAYERS", "ActivationChoice", "activation_of", "choose_quantizer"]

ACTIVATION_LAYERS = ("Activation", "ReLU", "LeakyReLU")

#: The quantizer families that compute (a quantized version of) each function.
#: binary and ternary replace relu/tanh/linear as sign functions, the usual
#: choice in binary and ternary networks.
FITS: dict[str, frozenset[str]] = {
    "relu": frozenset({"quantized_relu", "quantized_relu_po2", "binary", "ternary", "stochastic_binary", "stochastic_ternary"}),
    "relu6": frozenset({"quantized_relu"}),
    "leaky_relu": frozenset({"quantized_relu", "quantized_relu_po2"}),
    "tanh": frozenset({"quantized_tanh", "binary", "ternary", "stochastic_binary", "stochastic_ternary"}),
    "sigmoid": frozenset({"quantized_sigmoid"}),
    "hard_sigmoid": frozenset({"quantized_sigmoid"}),
    "hard_silu": frozenset({"quantized_hswish"}),
    "hard_swish": frozenset({"quantized_hswish"}),
    "linear": frozenset({"quantized_bits", "quantized_po2", "binary", "ternary"}),
}


@dataclass(frozen=True)
class ActivationChoice:
    """``status``: quantize | float (pass-through asked) | uncovered | unquantizable."""

    status: str
    spec: QuantizerSpec | None = None
    note: str = ""


def activation_of(class_name: str, config: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The activation function an activation layer computes, and its parameters.

    ``None`` for layers that are not activation layers, or that no function name
    describes (e.g. ``ReLU(threshold=0.5)``).
    """
    if class_name == "Activation":
        fn = config.get("activation")
        return (fn, {}) if isinstance(fn, str) else None
    if class_name == "LeakyReLU":
        return "leaky_relu", {"negative_slope": config.get("negative_slope", 0.3)}
    if class_name == "ReLU":
        if config.get("threshold", 0.0):
            return None
        slope = config.get("negative_slope", 0.0) or 0.0
        params: dict[str, Any] = {}
        if slope:
            params["negative_slope"] = slope
        if config.get("max_value") is not None:
            params["max_value"] = config["max_value"]
        return ("leaky_relu" if slope else "relu"), params
    return None


def choose_quantizer(function: str, params: dict[str, Any], policy: ActivationPolicy | None) -> ActivationChoice:
    """The quantizer ``policy`` gives to ``function``, fitted to the layer's parameters."""
    if function not in FITS:
        return ActivationChoice("unquantizable", note=f"QKeras has no quantizer for {function}; kept float")
    if policy is None:
        return ActivationChoice("uncovered", note="no rule sets an activation quantizer")
    spec = policy.explicit(function)
    if spec is None and policy.default is not None and (policy.default.is_float or policy.default.name in FITS[function]):
        spec = policy.default
    if spec is None:
        return ActivationChoice("uncovered", note=f"no activation quantizer given for {function}")
    if spec.is_float:
        return ActivationChoice("float", spec, note="pass-through (float) as the rules ask")
    if spec.name in ("quantized_relu", "quantized_relu_po2"):
        extra: dict[str, Any] = {}
        slope = params.get("negative_slope")
        if function == "leaky_relu" and slope is None:
            slope = 0.2  # Keras's default for activation="leaky_relu"
        if slope and spec.get("negative_slope") is None:
            if math.log2(slope) != int(math.log2(slope)):
                return ActivationChoice(
                    "unquantizable", note=f"{spec.name} needs a power-of-two negative_slope, got {slope}; kept float"
                )
            extra["negative_slope"] = float(slope)
        upper = params.get("max_value", 6.0 if function == "relu6" else None)
        if upper is not None:
            key = "relu_upper_bound" if spec.name == "quantized_relu" else "max_value"
            if spec.get(key) is None:
                extra[key] = float(upper)
        spec = spec.with_params(**extra) if extra else spec
    return ActivationChoice("quantize", spec)


@register(*ACTIVATION_LAYERS)
def rewrite_activation(class_name: str, config: dict[str, Any], quantizers: dict[str, QuantizerSpec]) -> list[NewLayer]:
    """An activation layer with a quantizer → ``QActivation`` of the same name."""
    spec = quantizers.get("activation")
    if spec is None or spec.is_float:
        return [NewLayer(class_name, dict(config), takes_weights=True)]
    return [NewLayer("QActivation", {"name": config["name"], "activation": spec}, takes_weights=False)]


def split_activation(name: str, function: str, spec: QuantizerSpec | None) -> NewLayer:
    """The layer that computes an activation split out of ``activation=``."""
    if spec is None or spec.is_float:
        return NewLayer("Activation", {"name": name, "activation": function}, takes_weights=False)
    return NewLayer("QActivation", {"name": name, "activation": spec}, takes_weights=False)
