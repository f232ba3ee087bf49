"""The ``qonnx`` section of the report, printed (beside :mod:`qconvert.report`, which is over its size already)."""

from __future__ import annotations

from typing import Any

__all__ = ["render_qonnx"]


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _agreement(a: dict[str, Any], who: str, console: Any) -> None:
    console.print(f"  {who}, {a['n_samples']} {a['inputs']} samples: logits bit-identical "
                  f"{_pct(a['logits_exact_fraction'])}, outputs bit-identical {_pct(a.get('exact_fraction'))}, "
                  f"argmax agreement {_pct(a['argmax_agreement'])}, max |diff| {a['max_abs_diff']:.3g}")
    target = next(k for k in a if k.startswith("accuracy_") and k != "accuracy_keras")
    if a.get("accuracy_keras") is not None:
        console.print(f"  accuracy: Keras {a['accuracy_keras']:.4f}, {target[9:]} {a[target]:.4f}")
    console.print(f"  limits: {a['limits']}")


def render_qonnx(q: dict[str, Any], console: Any) -> None:
    """The QONNX graph: where, how big, its input type, and its agreement with Keras (qonnx's execution and, when
    it ran, hls4ml's QONNX frontend)."""
    console.print(f"QONNX (opset {q['opset']}): {q['path']}, {q['nodes']} nodes ({q['quant_nodes']} Quant); input "
                  f"{q['input_precision']} ({q['input_source']}); logits of '{q['logits_layer']}'")
    if "n_samples" in q:
        _agreement(q, "qonnx execute_onnx", console)
    front = q.get("hls4ml_frontend")
    if front:
        console.print(f"  hls4ml QONNX frontend: project {front['project_dir']} (input {front['input_precision']}, "
                      f"{front['seconds']} s)")
        _agreement(front, "hls4ml emulation", console)
    for note in q.get("notes", []):
        console.print(f"  note: {note}")
