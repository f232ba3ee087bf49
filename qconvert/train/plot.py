"""The training figure: loss and accuracy per epoch, the FP32 / PTQ / QAT accuracies, and the
sparsity of each pruned kernel per epoch when the rules prune (history keys ``sparsity_LAYER``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..io import atomic_path

__all__ = ["plot_training", "save_figure"]

_LABELS = {"fp32": "FP32", "ptq_uncalibrated": "PTQ\n(int 0)", "ptq": "PTQ", "qat": "QAT", "hls4ml": "hls4ml"}
_COLORS = {"fp32": "#888888", "ptq_uncalibrated": "#ddbb88", "ptq": "#cc8844", "qat": "#4477aa", "hls4ml": "#44aa77"}


def plot_training(history: dict[str, list[float]], accuracies: dict[str, float | None], path: str | Path) -> Path:
    """Write a PNG with the training curves and a bar per model's accuracy (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    pruned = sorted(k for k in history if k.startswith("sparsity_"))
    fig, axes = plt.subplots(1, 3 + bool(pruned), figsize=(13 + 4 * bool(pruned), 3.8))
    for ax, metric in zip(axes[:2], ("loss", "accuracy")):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                ax.plot(range(1, len(history[key]) + 1), history[key], style, label=key)
        ax.set_xlabel("epoch")
        ax.set_title(f"QAT {metric}")
        ax.legend()
    keys = [k for k, v in accuracies.items() if v is not None]
    values = [accuracies[k] for k in keys]
    colors = [_COLORS.get(k, "#777777") for k in keys]
    labels = dict(_LABELS, ptq="PTQ\n(calibrated)") if "ptq_uncalibrated" in keys else _LABELS
    bars = axes[2].bar([labels.get(k, k) for k in keys], values, color=colors)
    axes[2].bar_label(bars, labels=[f"{v:.3f}" for v in values])
    low = min(values, default=0.0)
    axes[2].set_ylim(max(0.0, low - 0.1), 1.0)
    axes[2].set_title("accuracy")
    if pruned:
        for key in pruned:
            axes[3].plot(range(1, len(history[key]) + 1), [100 * v for v in history[key]], label=key.removeprefix("sparsity_"))
        axes[3].set_xlabel("epoch")
        axes[3].set_ylabel("% of kernel weights zero")
        axes[3].set_title("pruning")
        axes[3].legend()
    return save_figure(fig, path)


#: The figure formats a training figure may be written in (by the path's suffix; matplotlib's writers).
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write a matplotlib figure (laid out tight, 100 dpi) atomically, then close it: PDF or SVG by the path's
    suffix, else PNG."""
    import matplotlib.pyplot as plt

    suffix = Path(path).suffix.lower() if Path(path).suffix.lower() in FIGURE_SUFFIXES else ".png"
    fig.tight_layout()
    try:
        with atomic_path(Path(path), suffix=suffix) as tmp:
            fig.savefig(tmp, dpi=100, format=suffix[1:])
    finally:
        plt.close(fig)
    return Path(path)
