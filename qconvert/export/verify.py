"""Verified means bit-exact, or it says why: an emulated design compared with the Keras model it came from.

:class:`Agreement` is the one result of that comparison for every export target (hls4ml's C++ emulation,
the RTL's Verilator emulation): how many logits are bit-identical, how often the argmax agrees, the
largest difference, the first layer that diverges and, in words, what limits the agreement.
:func:`keras_layer_outputs` is the Keras side of every per-layer comparison; :func:`verify_hls4ml` the
hls4ml comparison (the RTL's is in :mod:`.rtl`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .derive import Derived, SoftmaxPlan
from .inputs import class_labels

__all__ = [
    "Agreement",
    "OutputCheck",
    "accuracy",
    "agreed",
    "argmax_fraction",
    "exact_fraction",
    "keras_layer_outputs",
    "max_abs_diff",
    "verify_hls4ml",
]  # fmt: skip


@dataclass(frozen=True)
class OutputCheck:
    """One model output, the emulation against Keras: ``units`` values per sample, the fraction of samples whose
    values are all bit-identical, the largest ``|emulation - Keras|``, and ``argmax_agreement`` (the fraction of
    samples with the same argmax) only where the output has several units."""

    name: str
    units: int
    exact_fraction: float
    max_abs_diff: float
    argmax_agreement: float | None


@dataclass(frozen=True)
class Agreement:
    """An emulated design (``target``: ``"hls4ml"`` or ``"rtl"``) against Keras, on the same inputs.

    ``n_samples`` inputs, ``inputs`` ``"given"`` or ``"sampled"`` (``""``: not emulated, every figure None).
    ``logits_exact_fraction``: fraction of samples whose logits (the values before a final softmax) are bit-identical;
    hls4ml gives None when the model has no final softmax (``exact_fraction`` is then the one to read).
    ``argmax_agreement``: fraction of samples where both pick the same class. ``max_abs_diff``: the largest
    ``|emulation - Keras|`` over all outputs (in the output's units). ``accuracy_keras`` / ``accuracy_target``: the
    fraction of correct classes against the labels, when labels are given. ``first_divergent_layer``: the first layer
    whose output is not bit-identical (None when all are). ``limits``: what keeps the emulation from matching Keras bit
    for bit, in words; it starts with "none" only when the logits are identical (a :class:`ValueError` otherwise).

    Measured by hls4ml's emulation only (None elsewhere, and then left out of :meth:`to_dict`): ``exact_fraction``
    (samples whose every output is bit-identical, after a softmax too), ``layers_exact`` (that fraction per traced
    layer), ``inputs_rounded`` (fraction of samples the input type changed) and ``outputs`` (one check per output).
    """

    target: str
    n_samples: int = 0
    inputs: str = ""
    logits_exact_fraction: float | None = None
    argmax_agreement: float | None = None
    max_abs_diff: float | None = None
    accuracy_keras: float | None = None
    accuracy_target: float | None = None
    first_divergent_layer: str | None = None
    limits: str = ""
    exact_fraction: float | None = None
    layers_exact: dict[str, float] | None = None
    inputs_rounded: float | None = None
    outputs: tuple[OutputCheck, ...] | None = None

    def __post_init__(self) -> None:
        if self.limits.startswith("none") and not self.identical:
            raise ValueError(f"{self.target}: limits say 'none' but the logits are not identical: {self.limits}")

    @property
    def identical(self) -> bool:
        """Whether every sample's logits are bit-identical (``exact_fraction`` where there are no logits apart)."""
        exact = self.logits_exact_fraction if self.logits_exact_fraction is not None else self.exact_fraction
        return exact == 1.0

    def to_dict(self) -> dict[str, Any]:
        """The agreement keys of the target's JSON report section (``accuracy_<target>`` for the target's accuracy)."""
        out: dict[str, Any] = {
            "n_samples": self.n_samples, "inputs": self.inputs, "logits_exact_fraction": self.logits_exact_fraction,
            "argmax_agreement": self.argmax_agreement, "max_abs_diff": self.max_abs_diff,
            "accuracy_keras": self.accuracy_keras, f"accuracy_{self.target}": self.accuracy_target,
            "first_divergent_layer": self.first_divergent_layer, "limits": self.limits,
        }  # fmt: skip
        extras = {"exact_fraction": self.exact_fraction, "layers_exact": self.layers_exact,
                  "inputs_rounded": self.inputs_rounded,
                  "outputs": None if self.outputs is None else [asdict(o) for o in self.outputs]}
        out.update({k: v for k, v in extras.items() if v is not None})
        return out


def agreed(name: str) -> Any:
    """A read-only property of a result class that reads its ``agreement``'s field ``name`` (the result's own
    attribute since the first releases: ``result.logits_exact_fraction`` is ``result.agreement.logits_exact_fraction``)."""
    return property(lambda self: getattr(self.agreement, name), doc=f"``agreement.{name}`` (:class:`Agreement`).")


def keras_layer_outputs(qmodel: Any, names: list[str], x: np.ndarray) -> dict[str, np.ndarray]:
    """Every named layer's output of the Keras model on ``x`` (one probe model, one pass), ``(n, values)`` float64
    each; names that are not layers of ``qmodel`` are left out."""
    import keras

    present = [n for n in dict.fromkeys(names) if _has_layer(qmodel, n)]
    if not present:
        return {}
    probe = keras.Model(qmodel.inputs, [qmodel.get_layer(n).output for n in present])
    outs = probe.predict(np.asarray(x).astype("float32"), verbose=0, batch_size=1024)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {n: np.asarray(o, dtype="float64").reshape(len(x), -1) for n, o in zip(present, outs)}


def _has_layer(model: Any, name: str) -> bool:
    try:
        model.get_layer(name)
        return True
    except ValueError:
        return False


def exact_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows of ``(n, k)`` arrays ``a`` and ``b`` that are equal in every value."""
    return float(np.mean(np.all(a == b, axis=1)))


def argmax_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of rows of ``(n, k)`` arrays ``a`` and ``b`` whose largest value is at the same index."""
    return float(np.mean(np.argmax(a, axis=1) == np.argmax(b, axis=1)))


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """The largest ``|a - b|`` (0 for empty arrays)."""
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def accuracy(scores: np.ndarray, y: Any) -> float:
    """Fraction of rows of ``scores`` ``(n, classes)`` whose argmax is the label (``y``: indices or one-hot)."""
    return float(np.mean(np.argmax(scores, axis=1) == class_labels(y)))


def _predict(qmodel: Any, x: np.ndarray) -> list[np.ndarray]:
    """The Keras model's outputs on ``x``, one ``(n, units)`` float64 array each."""
    predicted = qmodel.predict(x.astype("float32"), verbose=0, batch_size=1024)
    return [np.asarray(o, dtype="float64").reshape(len(x), -1)
            for o in (predicted if isinstance(predicted, (list, tuple)) else [predicted])]


def verify_hls4ml(qmodel: Any, hls_model: Any, derived: Derived, xs: np.ndarray, xq: np.ndarray, inputs: str,
                  ys_hls: list[np.ndarray], trace: dict[str, np.ndarray], y: Any = None) -> Agreement:
    """Keras and hls4ml's emulation on the same (input-type) inputs ``xq``: agreement, exactness, first divergent layer.

    ``xs``: the inputs before rounding (the Keras model's own accuracy is measured on them, as the seed does);
    ``ys_hls``/``trace``: what :func:`.emulate.emulate` returned; ``y``: labels or None. Every output is checked
    (``outputs``); the headline agreement is that of the first output with several units (a classifier head),
    exactness and the largest difference are over all outputs.
    """
    order = [layer.name for layer in hls_model.get_layers() if layer.name in trace]
    keras_out = keras_layer_outputs(qmodel, order, xq)
    ys_keras = _predict(qmodel, xq)
    names = list(getattr(hls_model, "outputs", None) or [f"output_{i}" for i in range(len(ys_keras))])
    checks = [_check(name, h, k) for name, h, k in zip(names, ys_hls, ys_keras)]
    head = next((i for i, k in enumerate(ys_keras) if k.shape[1] > 1), 0)
    y_hls, y_keras = ys_hls[head], ys_keras[head]
    all_exact = float(np.mean(np.all([np.all(h == k, axis=1) for h, k in zip(ys_hls, ys_keras)], axis=0)))
    layers_exact = {n: exact_fraction(trace[n], keras_out[n]) for n in order
                    if n in keras_out and trace[n].shape == keras_out[n].shape}
    first = next((n for n, f in layers_exact.items() if f < 1.0), None)
    if first is None and all_exact < 1.0:
        first = order[-1] if order else None
    sm: SoftmaxPlan | None = derived.softmax
    logits_exact = None
    ties = 0
    if sm is not None and sm.logits_layer in trace and sm.logits_layer in keras_out:
        logits = keras_out[sm.logits_layer]
        logits_exact = exact_fraction(trace[sm.logits_layer], logits)
        top2 = np.sort(logits, axis=1)[:, -2:] if logits.shape[1] > 1 else np.zeros((len(xq), 2))
        ties = int(np.sum(top2[:, 1] - top2[:, 0] < sm.step / 2))
    # identical: the head's logits (before a final softmax) or the head's outputs, and every other output
    head_identical = logits_exact == 1.0 if logits_exact is not None else checks[head].exact_fraction == 1.0
    identical = head_identical and all(c.exact_fraction == 1.0 for i, c in enumerate(checks) if i != head)
    acc_k = acc_h = None
    if y is not None:
        # the Keras model's own accuracy, on the inputs as given (the seed's comparison)
        raw = y_keras if np.array_equal(xs, xq) else _predict(qmodel, xs)[head]
        acc_k, acc_h = accuracy(raw, y), accuracy(y_hls, y)
    return Agreement(
        target="hls4ml", n_samples=len(xs), inputs=inputs, logits_exact_fraction=logits_exact,
        argmax_agreement=argmax_fraction(y_hls, y_keras), max_abs_diff=max(c.max_abs_diff for c in checks),
        accuracy_keras=acc_k, accuracy_target=acc_h, first_divergent_layer=first,
        limits=_limits(derived, sm, ties, len(xq), first, identical, set(layers_exact)),
        exact_fraction=all_exact, layers_exact=layers_exact,
        inputs_rounded=float(np.mean(np.any((xs != xq).reshape(len(xs), -1), axis=1))), outputs=tuple(checks),
    )  # fmt: skip


def _check(name: str, h: np.ndarray, k: np.ndarray) -> OutputCheck:
    agree = argmax_fraction(h, k) if k.shape[1] > 1 else None
    return OutputCheck(name, int(k.shape[1]), exact_fraction(h, k), max_abs_diff(h, k), agree)


def _limits(derived: Derived, sm: SoftmaxPlan | None, ties: int, n: int, first: str | None, identical: bool,
            traced: set[str]) -> str:
    """What keeps the emulation from matching Keras bit for bit, in words; "none" only when the logits are identical."""
    parts = []
    if not identical:
        parts.append(_divergence(derived, first, traced))
    if sm is not None:
        parts.append(
            f"softmax '{sm.layer}' is a table lookup ({sm.table_size}-entry tables, exp_table_t "
            f"{sm.types['exp_table_t']}, inv_table_t {sm.types['inv_table_t']}): the exp table is addressed by "
            f"x_max - x in steps of {sm.step:g} ({sm.types['inp_norm_t']}), so a logit within {sm.step / 2:g} of the "
            f"maximum ties with it and argmax takes the lower index ({ties} of {n} samples here); each doubling "
            "of table_size halves the step at twice the table memory"
        )
    inexact = [p.name for p in derived.precisions if not p.exact and p.class_name not in ("Softmax", "InputLayer")]
    if inexact:
        parts.append("not bit-exact by construction: " + ", ".join(inexact))
    return "; ".join(parts) or "none: every layer's type holds what Keras computes"


def _divergence(derived: Derived, first: str | None, traced: set[str]) -> str:
    """The first layer whose output differs from Keras, and why, from what the derivation knows of it and of
    the layers before it that the trace cannot see (hls4ml renames or splits some layers)."""
    if first is None:
        return "logits differ from Keras; no traced layer differs, so the first divergent layer and the cause are unknown"
    order = [p.name for p in derived.precisions]
    upto = derived.precisions[: order.index(first) + 1] if first in order else []
    suspects = [p for p in upto if p.note and p.class_name != "InputLayer" and (p.name == first or p.name not in traced)]
    if suspects:
        why = "; ".join(f"'{p.name}' ({p.class_name}): {p.note}" for p in suspects)
        return f"logits differ from Keras from layer '{first}' on: {why}"
    return (f"logits differ from Keras from layer '{first}' on: cause unknown (every type up to it is derived to hold "
            "what Keras computes; please report it)")
