"""Which layers the hls4ml bridge hands to hls4ml, and why the others are refused.

What passes is derived from hls4ml's own handler registries, not from a list kept here: a layer
goes through when hls4ml 1.3 has a Keras-3 handler for it (qconvert's QKeras handlers included),
or — for a plain Keras layer — a Keras-2 handler hls4ml falls back to (UpSampling, ZeroPadding,
Cropping, ...). QKeras layers without a Keras-3 handler are refused: hls4ml's Keras-2 QKeras
handlers read QKeras-2 quantizer configs and fail on qkeras-v3 layers.

:data:`CANNOT` names the layers hls4ml truly cannot implement and what to build instead;
:func:`io_refusal` the layer settings a given io type cannot implement (hls4ml's C++ asserts on
them, and the assertion would abort the emulation); :func:`backend_refusal` the layers a backend has no
C++ function for (hls4ml writes such a project without the layer's call: its output is never computed);
:func:`shared_padding_refusal` the streamed graphs hls4ml rewires wrongly.
"""

from __future__ import annotations

from collections import Counter
from functools import cache
from typing import Any

__all__ = ["CANNOT", "backend_refusal", "io_refusal", "refusal", "shared_padding_refusal"]

_TRANSPOSED = (
    "hls4ml 1.3 has no transposed convolution for Keras 3 models; "
    "build it as UpSampling{d}D followed by Conv{d}D (both convert bit-exactly)"
)
CANNOT: dict[str, str] = {
    "Conv1DTranspose": _TRANSPOSED.format(d=1),
    "Conv2DTranspose": _TRANSPOSED.format(d=2),
    "QConv1DTranspose": _TRANSPOSED.format(d=1),
    "QConv2DTranspose": _TRANSPOSED.format(d=2),
    "TimeDistributed": (
        "hls4ml 1.3 reads TimeDistributed's wrapped layer only from a Keras-2 model object, not from a Keras-3 "
        "one; for a Dense, apply the Dense itself to the 3-D input (Keras computes it on the last axis, the same "
        "numbers)"
    ),
}
_GROUPED = (
    "grouped convolution (groups={groups}) has no hls4ml implementation; split the channels into {groups} "
    "convolutions and Concatenate their outputs, or use DepthwiseConv/SeparableConv"
)


def _handled(layer: Any) -> str | None:
    """'v3' or 'v2' when one of hls4ml's handler registries takes ``layer``; None otherwise."""
    from hls4ml.converters.keras_v2_to_hls import layer_handlers as v2_handlers
    from hls4ml.converters.keras_v3._base import registry

    cls = type(layer)
    if f"{cls.__module__}.{cls.__name__}" in registry or cls.__name__ in registry:
        return "v3"
    if not cls.__module__.startswith("qkeras") and cls.__name__ in v2_handlers:
        return "v2"
    return None


def refusal(layer: Any) -> str | None:
    """Why the bridge cannot hand ``layer`` to hls4ml (one line naming it), or None when it can."""
    kind = type(layer).__name__
    where = f"layer '{layer.name}' ({kind})"
    if kind in CANNOT:
        return f"{where}: {CANNOT[kind]}"
    groups = int(getattr(layer, "groups", 1) or 1)
    if groups != 1:
        return f"{where}: {_GROUPED.format(groups=groups)}"
    if _handled(layer) is not None:
        return None
    if type(layer).__module__.startswith("qkeras"):
        return f"{where}: hls4ml 1.3 has no Keras-3 handler for this QKeras layer and its Keras-2 one reads QKeras-2 configs only"
    return f"{where}: hls4ml 1.3 has no handler for this layer (neither Keras-3 nor Keras-2)"


def _pool_geometry(d: dict[str, Any]) -> tuple[bool, bool]:
    """(padded, pool == stride) of a parsed pooling layer."""
    pads = [int(d.get(k, 0) or 0) for k in ("pad_top", "pad_bottom", "pad_left", "pad_right")]
    pools = [d.get("pool_height"), d.get("pool_width")]
    strides = [d.get("stride_height"), d.get("stride_width")]
    same_step = all(p == s for p, s in zip(pools, strides) if p is not None)
    return any(pads), same_step


#: hls4ml's merge classes (Merge: Keras's Add, Subtract, Multiply, Average, Maximum, Minimum): each takes
#: exactly two inputs (its graph asserts otherwise).
_MERGES = ("Merge", "Concatenate", "Dot")


def io_refusal(d: dict[str, Any], io_type: str) -> str | None:
    """Why hls4ml's ``io_type`` templates cannot implement the parsed layer ``d`` (its C++ asserts, or its
    graph asserts on a merge of more than two inputs), or None."""
    cls = d["class_name"]
    if cls in _MERGES and len(d.get("inputs", [])) > 2:
        keras_cls = str(d.get("op", cls)).capitalize() if cls == "Merge" else cls
        how = (f"chain them ({keras_cls}()([{keras_cls}()([a, b]), c]) computes the same)" if keras_cls != "Average"
               else "build it from two-input layers (an Average of n inputs is their chained Add times 1/n; "
                    "Average()([Average()([a, b]), c]) is not the same)")
        return f"layer '{d['name']}' ({keras_cls}): {len(d['inputs'])} inputs; hls4ml's merge layers take two: {how}"
    if io_type != "io_stream" or not cls.startswith(("MaxPooling", "AveragePooling")):
        return None
    padded, same_step = _pool_geometry(d)
    if padded or (not same_step and cls.endswith("2D")):  # 1D: the line-buffer pooling takes any stride
        what = "padding='same'" if padded else "strides different from the pool size"
        return (f"layer '{d['name']}' ({cls}): {what} under io_stream: hls4ml's streaming pooling implements only "
                "padding='valid' with strides equal to the pool size; use --io-type io_parallel")
    return None


#: hls4ml classes implemented without a call of their own: the input, and a reshape (a view of the same array).
_NO_CALL = frozenset({"Input", "Reshape"})
#: What to build instead of a layer a backend has no function for.
_INSTEAD = {"SimpleRNN": "use an LSTM or GRU, which it implements (both export)"}


@cache
def _implemented(backend: str) -> tuple[type, ...]:
    """The hls4ml layer classes ``backend`` has a C++ function template for (from its registered templates)."""
    import hls4ml
    from hls4ml.backends.template import FunctionCallTemplate
    from hls4ml.model.optimizer import get_optimizer

    classes: list[type] = []
    for name in hls4ml.backends.get_backend(backend)._get_layer_templates():
        template = get_optimizer(name)
        if isinstance(template, FunctionCallTemplate):
            layer_class = template.layer_class
            classes += layer_class if isinstance(layer_class, (tuple, list)) else [layer_class]
    return tuple(classes)


def backend_refusal(d: dict[str, Any], backend: str) -> str | None:
    """Why hls4ml's ``backend`` cannot implement the parsed layer ``d``, or None: hls4ml maps its class to one
    that has no function template there, so hls4ml would write the project without the layer's call."""
    from hls4ml.model.layers import layer_map

    hls_class = layer_map.get(d["class_name"])
    if hls_class is None or hls_class.__name__ in _NO_CALL or issubclass(hls_class, _implemented(backend)):
        return None
    instead = _INSTEAD.get(hls_class.__name__, "it cannot be exported through hls4ml")
    return (f"layer '{d['name']}' ({d['class_name']}): hls4ml's {backend} backend has no {hls_class.__name__} "
            f"implementation (hls4ml would write the project without its call, and its output would never be "
            f"computed); {instead}")


def shared_padding_refusal(layers: list[dict[str, Any]], io_type: str) -> str | None:
    """Why hls4ml cannot stream this graph, or None: a padded Conv1D/SeparableConv1D reads a tensor other layers
    read too. Under io_stream hls4ml 1.3 moves a 1-D convolution's padding into a ZeroPadding1D layer that it
    inserts before the *first* reader of the convolution's input (its ``insert_zero_padding_before_conv1d``
    pass calls ``insert_node`` without ``before=``; the 2-D pass passes it), so another branch reads the padded
    data and the convolution the unpadded one (0 % of logits identical in a two-branch model)."""
    if io_type != "io_stream":
        return None
    readers = Counter(name for d in layers for name in d.get("inputs", []))
    for d in layers:
        padded = d["class_name"] in ("Conv1D", "SeparableConv1D") and (d.get("pad_left") or d.get("pad_right"))
        if padded and d.get("inputs") and readers[d["inputs"][0]] > 1:
            return (f"layer '{d['name']}' ({d['class_name']}): padding on a tensor {readers[d['inputs'][0]]} layers "
                    "read, under io_stream: hls4ml 1.3 inserts this padding before the first of them, not before this "
                    "convolution, so the branches compute on each other's data; use --io-type io_parallel, or give "
                    "the convolution padding='valid' after a ZeroPadding1D of its own")
    return None
