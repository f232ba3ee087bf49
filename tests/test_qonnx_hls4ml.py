"""hls4ml's QONNX frontend on the exported jet tagger against qconvert's own hls4ml route, on the same inputs.

Both emulations are compared bit for bit with the Keras logits on the same 1,000 inputs: when both are
100 % bit-identical to Keras, they are bit-identical to each other.
"""

from pathlib import Path

import keras
import numpy as np
import pytest
from models import seed_fp32

import qconvert
from qconvert.export import Hls4mlOptions, export
from qconvert.export.qonnx import QonnxOptions, export_qonnx

pytest.importorskip("qonnx")
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_hls4ml_qonnx_frontend_gives_the_logits_of_qconverts_hls4ml_route(tmp_path):
    keras.utils.set_random_seed(0)
    qmodel, _ = qconvert.convert(seed_fp32(), ROOT / "rules" / "6bit.yaml")
    x = np.random.default_rng(1).normal(0, 1, size=(1000, 16))
    route = export(qmodel, Hls4mlOptions(tmp_path / "route"), x=x)
    result = export_qonnx(qmodel, QonnxOptions(tmp_path / "jet.onnx", hls4ml_dir=tmp_path / "frontend"), x=x)
    front = result.hls4ml
    assert route.input_source == "data range" and result.input_source == "data range"
    assert front["input_precision"].startswith(f"fixed<{route.precisions[0].result.split('<')[1].split(',')[0]},")
    assert route.logits_exact_fraction == 1.0  # qconvert's route: the logits of 'output' as Keras computes them
    assert result.logits_exact_fraction == 1.0  # qonnx's execution of the graph
    assert front["logits_exact_fraction"] == 1.0 and front["first_divergent_layer"] is None, front["limits"]
    assert front["n_samples"] == 1000 and front["inputs"] == "given"
    # the outputs after the softmax: the frontend keeps hls4ml's default softmax tables, qconvert's route derives
    # them (their argmax figures are in the README); the limits say so when they pick another class
    if front["argmax_agreement"] < 1.0:
        assert "softmax" in front["limits"] and "default tables" in front["limits"]
    assert (tmp_path / "frontend").is_dir()
