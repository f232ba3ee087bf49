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


def block_rules(blocks, names) -> str:
    """Rules giving block ``i`` (Dense ``d{i}`` then Activation ``a{i}``) its kernel and activation quantizers."""
    text = ("version: 1\ninput: quantized_bits(8, 2)\ndefaults:\n  kernel: quantized_bits(8, 2, alpha=1)\n"
            "  bias: quantized_bits(8, 2, alpha=1)\nrules:\n")
    for i, b in zip(names, blocks):
        text += (f"  - match: {{name: d{i}}}\n    kernel: \"{b.kernel}\"\n"
                 f"  - match: {{name: a{i}}}\n    activation: {{{b.function}: \"{b.activation}\"}}\n")
    return text


def chain(blocks, names):
    """Dense ``d{i}`` then Activation ``a{i}`` per block, on 8 features, then a linear Dense 4 ``head`` (seeded)."""
    import keras

    keras.utils.set_random_seed(1)
    x = inp = keras.Input((8,), name="features")
    for i, b in zip(names, blocks):
        x = keras.layers.Activation(b.function, name=f"a{i}")(keras.layers.Dense(8, name=f"d{i}")(x))
    return keras.Model(inp, keras.layers.Dense(4, name="head")(x))


def save_results(section: str, payload: dict) -> None:
    """Under ``QCONVERT_QUANTIZER_RESULTS`` (benchmarks/quantizer_table.py runs the tests one by one), add
    ``section`` (``hls4ml``, ``rtl``) to that JSON file; otherwise nothing."""
    import json
    import os
    from pathlib import Path

    where = os.environ.get("QCONVERT_QUANTIZER_RESULTS")
    if where:
        path = Path(where)
        data = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**data, section: payload}, indent=1))


def try_alone(blocks, check, refusal, whole_quantizer: bool = False):
    """Each block alone in a one-block model (converted by qconvert), through ``check(qmodel)``: kept, or refused
    with a ``refusal`` exception in one line naming its layer and one of its drawn options (or, with
    ``whole_quantizer``, its activation quantizer, refused whatever its options). Returns ``(kept, refused,
    outcomes)``: block indices, and one dict per block (its fields, ``outcome`` and ``message``)."""
    from dataclasses import asdict

    import qconvert
    from qconvert.rules import loads_rules

    kept, refused, outcomes = [], [], []
    for i, block in enumerate(blocks):
        qmodel, _ = qconvert.convert(chain([block], [i]), loads_rules(block_rules([block], [i])))
        try:
            check(qmodel)
        except refusal as err:
            message = str(err)
            assert "\n" not in message and (f"'a{i}'" in message or f"'d{i}'" in message), (block, message)
            named = any(option.split("=")[0] in message for option in block.options)
            assert named or (whole_quantizer and block.activation.split("(")[0] in message), (block, message)
            refused.append(i)
            outcomes.append({**asdict(block), "outcome": "refused", "message": message})
        else:
            kept.append(i)
            outcomes.append({**asdict(block), "outcome": "exact", "message": ""})
    return kept, refused, outcomes
