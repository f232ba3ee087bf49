"""Property: small random multi-branch graphs are bit-exact in hls4ml under io_parallel and io_stream, or refused
in one line before anything compiles (issue 20.2).

Each drawn block reads one tensor with two or three Conv1D branches (kernel 1, 3 or 5; "same" padding or a
ZeroPadding1D of their own before a valid convolution; each branch at its own drawn kernel precision), merges
them (Add, Concatenate or Multiply; three branches in one merge or two at a time) and may add a 1×1 skip of the
block's input. Each block alone goes through
the pre-flight for each io type; the blocks that pass are chained into one model per io type (one compile each)
whose logits and every traced layer must be bit-identical to Keras. Seeded: the same blocks every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import pytest

import qconvert
from qconvert.errors import ExportError
from qconvert.export import Hls4mlOptions, export, preflight
from qconvert.rules import loads_rules

L = keras.layers
CHANNELS, STEPS = 4, 12


@dataclass(frozen=True)
class Branch:
    kernel: int
    explicit_padding: bool
    bits: int


@dataclass(frozen=True)
class Block:
    branches: tuple[Branch, ...]
    merge: str  # Add | Concatenate | Multiply
    skip: bool
    pairwise: bool  # three branches merged two at a time, not by one three-input merge (hls4ml takes two)


def draw(rng: np.random.Generator) -> Block:
    branches = tuple(Branch(int(rng.choice([1, 3, 5])), bool(rng.random() < 0.5), int(rng.integers(3, 9)))
                     for _ in range(int(rng.integers(2, 4))))
    return Block(branches, str(rng.choice(["Add", "Concatenate", "Multiply"])), bool(rng.random() < 0.5),
                 bool(rng.random() < 0.6))


def apply(block: Block, x, name: str):
    """The block on tensor ``x``; its output has CHANNELS channels and STEPS steps."""
    outs = []
    for j, b in enumerate(block.branches):
        if b.explicit_padding:
            pad = L.ZeroPadding1D(((b.kernel - 1) // 2, b.kernel // 2), name=f"{name}_b{j}_pad")(x)
            outs.append(L.Conv1D(CHANNELS, b.kernel, name=f"{name}_b{j}")(pad))
        else:
            outs.append(L.Conv1D(CHANNELS, b.kernel, padding="same", name=f"{name}_b{j}")(x))
    merge = getattr(L, block.merge)
    if block.pairwise and len(outs) == 3:
        merged = merge(name=f"{name}_merge")([merge(name=f"{name}_merge_ab")(outs[:2]), outs[2]])
    else:
        merged = merge(name=f"{name}_merge")(outs)
    if block.merge == "Concatenate":  # back to CHANNELS channels
        merged = L.Conv1D(CHANNELS, 1, name=f"{name}_mix")(merged)
    if block.skip:
        merged = L.Add(name=f"{name}_skip_add")([merged, L.Conv1D(CHANNELS, 1, name=f"{name}_skip")(x)])
    return L.Activation("relu", name=f"{name}_relu")(merged)


def model(blocks: list[Block], names: list[str]) -> keras.Model:
    keras.utils.set_random_seed(3)
    x = inp = keras.Input((STEPS, CHANNELS), name="seq")
    for block, name in zip(blocks, names):
        x = apply(block, x, name)
    return keras.Model(inp, L.Dense(3, name="out")(L.Flatten(name="flat")(x)))


def rules(blocks: list[Block], names: list[str]) -> str:
    text = ("version: 1\ninput: quantized_bits(8, 2)\ndefaults:\n  kernel: quantized_bits(6, 0, alpha=1)\n"
            "  bias: quantized_bits(6, 0, alpha=1)\n  activation: {relu: 'quantized_relu(8, 3)'}\nrules:\n")
    for block, name in zip(blocks, names):
        for j, b in enumerate(block.branches):
            q = f"quantized_bits({b.bits}, 0, alpha=1)"
            text += f"  - match: {{name: {name}_b{j}}}\n    kernel: \"{q}\"\n    bias: \"{q}\"\n"
    return text


def test_a_merge_of_three_inputs_is_refused_with_a_rewrite_that_computes_the_same():
    from qconvert.export.support import io_refusal

    def refusal(op: str) -> str:
        return io_refusal({"name": "m", "class_name": "Merge", "op": op, "inputs": ["a", "b", "c"]}, "io_parallel")

    assert refusal("add").endswith("chain them (Add()([Add()([a, b]), c]) computes the same)")
    average = refusal("average")  # (a + b) / 4 + c / 2 is not (a + b + c) / 3: no chained Average offered
    assert "Average of n inputs is their chained Add times 1/n" in average and "is not the same" in average
    a, b, c = (np.array([[v]], "float32") for v in (1.0, 2.0, 6.0))
    assert float(L.Average()([a, b, c])[0, 0]) == 3.0 and float(L.Average()([L.Average()([a, b]), c])[0, 0]) == 3.75


@pytest.mark.slow
@pytest.mark.parametrize("io_type", ["io_parallel", "io_stream"])
def test_drawn_multi_branch_graphs_are_bit_exact_or_refused_before_compiling(io_type, tmp_path):
    rng = np.random.default_rng(20)
    blocks = [draw(rng) for _ in range(10)]
    kept, refused = [], []
    for i, block in enumerate(blocks):
        qmodel, _ = qconvert.convert(model([block], [f"k{i}"]), loads_rules(rules([block], [f"k{i}"])))
        try:
            preflight(qmodel, Hls4mlOptions(tmp_path / "probe", io_type=io_type))
        except ExportError as err:
            assert "\n" not in str(err) and str(err).startswith(f"layer 'k{i}_"), (block, str(err))
            refused.append(i)
        else:
            kept.append(i)
    # refused: a merge of three inputs (hls4ml's take two); under io_stream also a "same"-padded branch (kernel > 1)
    # on the shared input
    expected = [i for i, b in enumerate(blocks) if (len(b.branches) == 3 and not b.pairwise) or (
        io_type == "io_stream" and any(not br.explicit_padding and br.kernel > 1 for br in b.branches))]
    assert refused == expected and len(kept) >= 3, (refused, expected)
    names = [f"k{i}" for i in kept]
    qmodel, _ = qconvert.convert(model([blocks[i] for i in kept], names), loads_rules(rules([blocks[i] for i in kept], names)))
    x = np.random.default_rng(0).normal(0, 1.5, size=(1000, STEPS, CHANNELS)).astype("float32")
    result = export(qmodel, Hls4mlOptions(tmp_path / "prj", io_type=io_type), x=x)
    assert result.exact_fraction == 1.0 and result.limits.startswith("none"), (result.limits, [blocks[i] for i in kept])
    # a layer may differ only where Keras rounds: a product wider than float32's significand (hls4ml keeps it
    # exact), and the layers of its block that add it up; the quantized ReLU after them is exact again
    rounded = {p.name.split("_")[0] for p in result.precisions if "Keras multiplies in float32" in (p.note or "")}
    differ = {name for name, fraction in result.layers_exact.items() if fraction != 1.0}
    assert all(name.split("_")[0] in rounded and "relu" not in name for name in differ), (differ, rounded)
