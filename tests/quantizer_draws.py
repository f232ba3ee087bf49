"""Random QKeras quantizer parameter combinations, for the property test in test_hls4ml_quantizer_options.py.

:func:`draw` returns one block: the activation function of a layer, its quantizer with drawn parameters (as a rule
file spells it), the kernel quantizer of the Dense before it, and the parameters it set away from QKeras's
defaults, as ``key=value`` (a refusal must name one of the keys). Seeded: the same seed draws the same blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Block:
    function: str  # the Keras activation of the block's Activation layer
    activation: str  # its quantizer, as a rule file writes it
    kernel: str  # the quantizer of the Dense before it
    activation_options: tuple[str, ...] = ()  # its parameters drawn away from their defaults, "key=value"
    kernel_options: tuple[str, ...] = ()  # the kernel quantizer's

    @property
    def options(self) -> tuple[str, ...]:
        """Every parameter drawn away from its default."""
        return self.activation_options + self.kernel_options


def _pick(rng: np.random.Generator, choices: list):
    return choices[int(rng.integers(len(choices)))]


def _options(rng: np.random.Generator, space: dict[str, list], defaults: dict) -> dict:
    """A random subset of ``space``'s parameters, each given a value drawn from its list."""
    return {k: _pick(rng, v) for k, v in space.items() if rng.random() < 0.25 and k in defaults}


def _spelled(options: dict) -> tuple[str, ...]:
    return tuple(f"{k}={v!r}" for k, v in options.items())


def _spell(name: str, args: list, options: dict) -> str:
    return f"{name}({', '.join([*map(str, args), *(f'{k}={v!r}' for k, v in options.items())])})"


def draw(rng: np.random.Generator) -> Block:
    """One block: an activation function and quantizer, and a kernel quantizer, each with drawn options."""
    bits = int(rng.integers(3, 9))
    function = _pick(rng, ["relu", "tanh", "sigmoid", "linear"])
    stochastic = {"use_stochastic_rounding": [True]}  # QKeras rounds stochastically only in training
    if function == "relu":
        space = {"negative_slope": [0.25, 0.125, 0.5], "use_sigmoid": [1], "qnoise_factor": [0.5],
                 "relu_upper_bound": [2.0, 6.0], **stochastic}
        name, args = "quantized_relu", [bits, int(rng.integers(0, 4))]
    elif function == "tanh":
        space = {"symmetric": [1], "use_real_tanh": [1], **stochastic}
        name, args = "quantized_tanh", [bits]
    elif function == "sigmoid":
        space = {"symmetric": [1], "use_real_sigmoid": [1], **stochastic}
        name, args = "quantized_sigmoid", [bits]
    else:
        space = {"symmetric": [1], "keep_negative": [0], "alpha": [1], "qnoise_factor": [0.5], **stochastic}
        name, args = "quantized_bits", [bits, int(rng.integers(0, min(3, bits - 1)))]
    options = _options(rng, space, space)
    kernel_space = {"symmetric": [1], "alpha": [1, "auto_po2", "auto"], **stochastic}
    kernel_options = _options(rng, kernel_space, kernel_space)
    kernel_bits = int(rng.integers(3, 9))
    kernel = _spell("quantized_bits", [kernel_bits, int(rng.integers(0, min(3, kernel_bits - 1)))],
                    {"alpha": 1, **kernel_options})
    return Block(function, _spell(name, args, options), kernel, _spelled(options), _spelled(kernel_options))
