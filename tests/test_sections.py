"""The hls4ml and RTL blocks of the main job's output lead with the verdict, in plain words, at any width."""

from __future__ import annotations

from rich.console import Console

from qconvert.sections import render_hls4ml

HLS4ML = {"backend": "Vitis", "part": "xcu250-figd2104-2L-e", "io_type": "io_parallel", "project_dir": "prj",
          "compile_seconds": 9.5, "input_precision": "ap_fixed<16,6>", "n_samples": 360, "inputs": "given",
          "argmax_agreement": 1.0, "exact_fraction": 0.0, "logits_exact_fraction": 1.0, "max_abs_diff": 0.004,
          "limits": "softmax is computed from a lookup table in hls4ml: " + "its outputs differ in the last bits " * 8}


def _lines(section: dict, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None)
    render_hls4ml(section, console)
    return console.export_text().splitlines()


def test_the_first_line_is_the_verdict_on_the_logits_with_the_rows():
    lines = _lines(HLS4ML)
    assert lines[0] == "hls4ml: logits bit-identical 100.00% (all 360 given rows): verified"
    text = " ".join(" ".join(lines).split())
    # softmax outputs that differ are explained, not reported as a bare "bit-identical 0.00%" beside the verdict
    assert "bit-identical 0.00%: expected, see limits" in text


def test_a_model_that_is_not_bit_exact_says_so_first():
    lines = _lines(dict(HLS4ML, logits_exact_fraction=0.975, inputs="sampled", n_samples=1000,
                        first_divergent_layer="fc2"))
    assert lines[0] == "hls4ml: logits bit-identical 97.50% (975 of 1,000 sampled inputs): NOT bit-exact"
    assert any(line.strip() == "first divergent layer: fc2" for line in lines)


def test_long_explanations_wrap_within_the_width():
    for width in (80, 120):
        assert max(len(line) for line in _lines(HLS4ML, width)) <= width
