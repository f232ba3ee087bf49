"""Which finn-plus build steps accept qconvert's QONNX graphs: run them one by one and say where each stops.

finn-plus pins its own onnx, onnxruntime, protobuf and torch, so it runs in a virtualenv of its own, not
qconvert's (see the README's FINN note for how it was installed here)::

    /tmp/finnvenv/bin/python benchmarks/finn_steps.py jet.onnx cnn.onnx [--json out.json]

For each graph (a final float ``Softmax`` removed: FINN has none to match, the logits are compared): the steps step_qonnx_to_finn, step_tidy_up, step_streamline, step_convert_to_hw,
step_create_dataflow_partition and step_specialize_layers in order, each one's node types after it,
and -- while the graph stays executable in Python -- whether qonnx's execute_onnx of the FINN graph
still gives the exported graph's outputs on 100 random inputs (bit for bit). It imports only finn and
qonnx: qconvert's own environment is not needed. finn's steps module imports Vivado's simulator binding
(``finn.xsi.SimEngine``) for a type hint; without Vivado it is stubbed: these steps do not simulate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

PART = "xcu250-figd2104-2L-e"  # any part: the steps below only read it to pick implementation styles
STEPS = ("step_qonnx_to_finn", "step_tidy_up", "step_streamline", "step_convert_to_hw",
         "step_create_dataflow_partition", "step_specialize_layers")  # fmt: skip


def _outputs(model, x):
    from qonnx.core.onnx_exec import execute_onnx

    name = model.graph.input[0].name
    rows = [execute_onnx(model, {name: x[i : i + 1]})[model.graph.output[0].name] for i in range(len(x))]
    return np.concatenate(rows)


def check(path: Path, n: int = 100) -> dict:
    from finn.util.settings import initialize_dummy_settings

    initialize_dummy_settings()
    import finn.xsi

    finn.xsi.SimEngine = object  # a type hint there; the real one loads Vivado's simulator (none here, none needed)
    import finn.builder.build_dataflow_steps as steps
    from finn.builder.build_dataflow_config import DataflowBuildConfig
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(path))
    last = model.graph.node[-1]
    if last.op_type == "Softmax":  # FINN has no float softmax to match: the logits are what is compared
        info = next(v for v in model.graph.value_info if v.name == last.input[0])
        model.graph.output.remove(model.graph.output[0])
        model.graph.output.append(info)
        model.graph.value_info.remove(info)
        model.graph.node.remove(last)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).normal(0, 1, size=(n, *shape[1:])).astype(np.float32)
    reference = _outputs(model, x)
    results = []
    with tempfile.TemporaryDirectory() as out:
        cfg = DataflowBuildConfig(output_dir=out, synth_clk_period_ns=5.0, generate_outputs=[], fpga_part=PART)
        for name in STEPS:
            entry: dict = {"step": name}
            try:
                model = getattr(steps, name)(model, cfg)
            except Exception as exc:  # a step that refuses the graph: its one-line reason
                entry["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                results.append(entry)
                break
            entry["nodes"] = dict(Counter(node.op_type for node in model.graph.node))
            try:
                got = _outputs(model, x)
                entry["outputs_identical"] = bool(got.shape == reference.shape and np.array_equal(got, reference))
                entry["max_abs_diff"] = float(np.max(np.abs(got.reshape(reference.shape) - reference)))
                entry["identical_fraction"] = float(np.mean(np.all((got.reshape(reference.shape) == reference)
                                                                   .reshape(len(x), -1), axis=1)))
            except Exception as exc:
                entry["execution"] = f"not executable in Python here: {type(exc).__name__}"
            results.append(entry)
    return {"graph": str(path), "steps": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graphs", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    report = [check(path) for path in args.graphs]
    for r in report:
        print(r["graph"])
        for s in r["steps"]:
            print(f"  {s['step']}: {s.get('error') or s.get('execution') or ''}"
                  f"{'' if 'error' in s else ' nodes ' + json.dumps(s['nodes'])}"
                  f"{'' if 'outputs_identical' not in s else ' logits identical: ' + format(s['identical_fraction'], '.0%')}"
                  f"{'' if 'max_abs_diff' not in s else ' max |diff| ' + format(s['max_abs_diff'], '.3g')}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
