"""hls4ml Keras-3 layer handlers for the layers qconvert's rewriter produces (qkeras-v3).

hls4ml 1.3.0 has Keras-3 handlers for plain Keras layers only; QKeras layers reach it through a
Keras-2 fallback that fails on QActivation. Each class here extends hls4ml's own handler for the
float layer (or :class:`KerasV3LayerHandler`) and adds what hls4ml needs to implement the QKeras
layer: weight quantizers holding the weights in the fixed-point type :mod:`.precision` derives, and
for QActivation the hls4ml activation that computes the quantizer.

hls4ml registers a handler when its class is created (``handles`` in the class body, through the
handler metaclass), so this module is imported by :func:`qconvert.export.hls4ml.register_handlers`
and nowhere else; :func:`install` puts the handlers back if something replaced them.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import prod
from typing import Any

import numpy as np
from hls4ml.backends.fpga.fpga_backend import FPGABackend
from hls4ml.converters.keras_v3._base import KerasV3LayerHandler, registry
from hls4ml.converters.keras_v3.core import DenseHandler
from hls4ml.converters.keras_v3.pooling import PoolingHandler
from hls4ml.model.quantizers import QKerasBinaryQuantizer, QKerasQuantizer, Quantizer
from hls4ml.model.types import ExponentPrecisionType, FixedPrecisionType, XnorPrecisionType

from ..errors import ExportError
from .precision import FixedType, holding, quantizer_type, uncomputed_parameter
from .sequence import SEQUENCE_HANDLERS

__all__ = ["HANDLERS", "UnsupportedLayer", "install", "to_hls4ml_type"]

_Q = "qkeras.qlayers."
_QC = "qkeras.qconvolutional."


class UnsupportedLayer(ExportError):
    """A layer (or a quantizer in it) the bridge cannot implement in hls4ml."""


def to_hls4ml_type(t: FixedType) -> Any:
    """hls4ml's precision type object for ``t`` (``XnorPrecisionType``, ``ExponentPrecisionType`` or a fixed type)."""
    if t.kind == "xnor":
        return XnorPrecisionType()
    if t.kind == "exponent":
        return ExponentPrecisionType(width=t.width, signed=True)
    return FPGABackend.convert_precision_string(t.hls())


def _serialized(quantizer: Any) -> dict[str, Any]:
    return {"class_name": type(quantizer).__name__, "config": quantizer.get_config()}


class GridQuantizer(Quantizer):
    """A QKeras quantizer with a fixed grid: hls4ml applies it to the weights and stores them in ``qtype``."""

    def __init__(self, quantizer: Any, qtype: FixedType) -> None:
        super().__init__(qtype.width, to_hls4ml_type(qtype))
        self.quantizer_fn = quantizer
        self.qtype = qtype
        self.alpha = 1

    def __call__(self, data: Any) -> np.ndarray:
        import keras

        return np.asarray(keras.ops.convert_to_numpy(self.quantizer_fn(np.asarray(data, dtype="float32"))))

    def serialize_state(self) -> dict[str, Any]:
        """What hls4ml stores of this quantizer: the QKeras quantizer's config and the hls4ml type."""
        return {"config": _serialized(self.quantizer_fn), "type": self.qtype.hls()}


def weight_quantizer(layer: Any, role: str, xnor: bool = False) -> Quantizer | None:
    """The hls4ml quantizer for ``layer``'s ``role`` weights (kernel, bias, depthwise, pointwise)."""
    q = getattr(layer, f"{role}_quantizer_internal", None)
    if q is None:
        return None
    if not hasattr(q, "get_config"):
        raise UnsupportedLayer(f"layer '{layer.name}' ({type(layer).__name__}): {role} quantizer {q!r} has no config")
    name = type(q).__name__
    if "binary" in name:
        return QKerasBinaryQuantizer(_serialized(q), xnor=xnor)
    if "ternary" in name:
        return QKerasQuantizer(_serialized(q))  # hls4ml's own
    t = quantizer_type(q)
    if t is None or t.kind == "exponent":  # learned scales (alpha), powers of two: the grid the weights take
        t = _grid_of_values(layer, role, q)
    if t is None:
        raise UnsupportedLayer(f"layer '{layer.name}' ({type(layer).__name__}): {role} quantizer {name} has no hls4ml type")
    return GridQuantizer(q, t)


_MAX_FRAC = 160  # float32 values have at most 149 fractional bits


def _grid_of_values(layer: Any, role: str, q: Any) -> FixedType:
    """The narrowest fixed-point type that holds every quantized ``role`` weight exactly.

    QKeras's ``alpha='auto_po2'`` scales and ``quantized_po2`` give powers of two: a fixed type holds
    them exactly, and hls4ml multiplies them as any other weight. A scale that is not a power of two
    (``alpha='auto'``) has no exact fixed type: refused, naming the quantizer.
    """
    import keras

    attr = {"depthwise": "depthwise_kernel", "pointwise": "pointwise_kernel"}.get(role, role)
    var = getattr(layer, attr, None) if hasattr(layer, attr) else layer.kernel  # QDepthwiseConv2D: ``kernel``
    data = np.asarray(keras.ops.convert_to_numpy(q(np.asarray(var, dtype="float32"))), dtype="float64")
    bits = int(q.get_config().get("bits", 8) or 8)
    mantissa, _ = np.frexp(data)  # data = m·2^e, 0.5 <= |m| < 1: a grid value has at most ``bits`` significant bits
    if np.all(mantissa * 2.0**bits == np.round(mantissa * 2.0**bits)):
        frac = next(f for f in range(_MAX_FRAC + 1) if np.all(data * 2.0**f == np.round(data * 2.0**f)))
        return holding(float(np.max(np.abs(data))) if data.size else 0.0, frac)
    raise UnsupportedLayer(
        f"layer '{layer.name}' ({type(layer).__name__}): {role} quantizer {q} gives weights that are not multiples of "
        f"a power of two (a scale such as alpha='auto'): no hls4ml type holds them; use alpha=1 or alpha='auto_po2'"
    )


def quantized_weights(data: Any, quantizer: Quantizer | None) -> Any:
    """``data`` on its quantizer's grid (hls4ml's multi-dimensional Dense → Conv rewrite drops the quantizer)."""
    if isinstance(quantizer, GridQuantizer) and data is not None:
        return quantizer(data).astype("float64")
    return data


def activation_config(quantizer: Any, where: str) -> dict[str, Any]:
    """The hls4ml activation layer that computes a QKeras activation quantizer (no names, no shapes); raises
    :class:`UnsupportedLayer` naming a parameter hls4ml would not compute (:func:`uncomputed_parameter`)."""
    if isinstance(quantizer, str) or (callable(quantizer) and not hasattr(quantizer, "get_config")):
        fn = quantizer if isinstance(quantizer, str) else quantizer.__name__
        return {"class_name": "Softmax" if fn == "softmax" else "Activation", "activation": fn}
    name = type(quantizer).__name__
    # qkeras-v3's quantized_relu.get_config() omits is_quantized_clip: read the live object's flag
    cfg = {**quantizer.get_config(), **{k: getattr(quantizer, k) for k in ("is_quantized_clip",) if hasattr(quantizer, k)}}
    bad = uncomputed_parameter(name, cfg)
    if bad is not None:
        raise UnsupportedLayer(f"{where}: activation quantizer {quantizer} with {bad}: hls4ml does not compute "
                               f"{bad.split('=')[0]}; drop it from the rules, or keep this activation float")
    if name == "quantized_relu" and not cfg.get("use_sigmoid"):
        slope = float(cfg.get("negative_slope", 0.0) or 0.0)
        if slope != 0.0:
            return {"class_name": "LeakyReLU", "activation": "leaky_relu", "activ_param": slope}
        return {"class_name": "Activation", "activation": "relu"}
    if name == "quantized_bits" and quantizer_type(quantizer) is not None:
        return {"class_name": "Activation", "activation": "linear"}
    if name in ("binary", "stochastic_binary", "binary_tanh"):
        return {"class_name": "Activation", "activation": "binary_tanh"}
    if name in ("ternary", "stochastic_ternary", "ternary_tanh"):
        threshold = cfg.get("threshold") or 0.33
        return {"class_name": "TernaryTanh", "activation": "ternary_tanh", "threshold": threshold}
    if name in ("quantized_tanh", "quantized_sigmoid"):  # use_real_tanh/sigmoid refused above
        fn = name.removeprefix("quantized_")
        return {
            "class_name": "HardActivation",
            "activation": f"hard_{fn}",
            "slope": 0.5,
            "shift": 0.5,
            "slope_prec": FixedPrecisionType(width=2, integer=0, signed=False),
            "shift_prec": FixedPrecisionType(width=2, integer=0, signed=False),
        }
    raise UnsupportedLayer(f"{where}: activation quantizer {quantizer} has no hls4ml implementation")


class _FusedActivation:
    """Q-layers may carry an activation quantizer; hls4ml's base handler only knows functions."""

    def maybe_get_activation_config(self, layer: Any, out_tensors: Sequence[Any]) -> tuple[Any, Any]:
        import keras

        act = getattr(layer, "activation", None)
        if act is None or act is keras.activations.linear:
            return None, None
        config = activation_config(act, f"layer '{layer.name}' ({type(layer).__name__})")
        suffix = config["activation"]
        intermediate = f"{out_tensors[0].name}_activation"
        config.update(
            name=f"{layer.name}_{suffix}",
            input_keras_tensor_names=[intermediate],
            output_keras_tensor_names=[out_tensors[0].name],
            n_in=prod(out_tensors[0].shape[1:]),
        )
        return config, intermediate


class QDenseHandler(_FusedActivation, DenseHandler):
    """QDense → hls4ml Dense with the weights on their quantizers' grids (binary kernels as xnor), activation fused."""

    handles = (f"{_Q}QDense",)

    def handle(self, layer: Any, in_tensors: Sequence[Any], out_tensors: Sequence[Any]) -> dict[str, Any]:
        """hls4ml's Dense dictionary of ``layer`` with qconvert's weight quantizers and the quantized weights."""
        config = super().handle(layer, in_tensors, out_tensors)
        config["class_name"] = "Dense"
        config["weight_quantizer"] = weight_quantizer(layer, "kernel", xnor=True)
        config["bias_quantizer"] = weight_quantizer(layer, "bias")
        config["weight_data"] = quantized_weights(config.get("weight_data"), config["weight_quantizer"])
        config["bias_data"] = quantized_weights(config.get("bias_data"), config["bias_quantizer"])
        return config


class QConvHandler(_FusedActivation, KerasV3LayerHandler):
    """QConv1D/2D, QDepthwiseConv2D, QSeparableConv1D/2D.

    hls4ml's own ConvHandler reads ``layer.kernel``; qkeras-v3's depthwise and separable layers keep
    ``depthwise_kernel``/``pointwise_kernel``, so the geometry comes from hls4ml's ``gen_conv_config``
    and the weights are read here, by the names the layer has.
    """

    handles = (
        f"{_QC}QConv1D",
        f"{_QC}QConv2D",
        f"{_QC}QDepthwiseConv2D",
        f"{_QC}QSeparableConv1D",
        f"{_QC}QSeparableConv2D",
    )

    def default_class_name(self, layer: Any) -> str:
        """The hls4ml class: the QKeras name without its ``Q``."""
        return type(layer).__name__.removeprefix("Q")

    def handle(self, layer: Any, in_tensors: Sequence[Any], out_tensors: Sequence[Any]) -> dict[str, Any]:
        """hls4ml's convolution dictionary of ``layer``; dilation, depth multipliers above 1 and groups are refused
        (:class:`UnsupportedLayer`)."""
        from hls4ml.converters.keras_v3.conv import gen_conv_config

        kind = type(layer).__name__
        where = f"layer '{layer.name}' ({kind})"
        if any(int(d) != 1 for d in np.atleast_1d(getattr(layer, "dilation_rate", 1))):
            raise UnsupportedLayer(f"{where}: dilation_rate != 1 has no hls4ml implementation")
        if int(getattr(layer, "depth_multiplier", 1) or 1) != 1:  # the C++ asserts (and aborts) otherwise
            raise UnsupportedLayer(f"{where}: depth_multiplier={layer.depth_multiplier}; hls4ml implements 1 only")
        if int(getattr(layer, "groups", 1) or 1) != 1:
            raise UnsupportedLayer(f"{where}: grouped convolution has no hls4ml implementation")
        config = gen_conv_config(
            in_shape=tuple(in_tensors[0].shape[1:]), out_shape=tuple(out_tensors[0].shape[1:]),
            ker_px_shape=tuple(layer.kernel_size), strides=tuple(layer.strides), padding=layer.padding,
            data_format=layer.data_format, name=layer.name,
        )  # fmt: skip
        config["data_format"] = layer.data_format
        config["bias_data"] = self.load_weight(layer, "bias") if layer.use_bias else None
        config["bias_quantizer"] = weight_quantizer(layer, "bias") if layer.use_bias else None
        if "Depthwise" in kind or "Separable" in kind:
            depthwise = self.load_weight(layer, "depthwise_kernel" if hasattr(layer, "depthwise_kernel") else "kernel")
            config["depthwise_data"] = config["weight_data"] = depthwise
            config["depth_multiplier"] = int(layer.depth_multiplier)
            config["depthwise_quantizer"] = weight_quantizer(layer, "depthwise", xnor=True)
            if "Separable" in kind:
                config["pointwise_data"] = self.load_weight(layer, "pointwise_kernel")
                config["pointwise_quantizer"] = weight_quantizer(layer, "pointwise", xnor=True)
            else:
                config["weight_quantizer"] = config["depthwise_quantizer"]
        else:
            config["weight_data"] = self.load_weight(layer, "kernel")
            config["weight_quantizer"] = weight_quantizer(layer, "kernel", xnor=True)
        return config


class QActivationHandler(KerasV3LayerHandler):
    """QActivation → the hls4ml activation its quantizer implements (a leaky relu as a clip and a LeakyReLU)."""

    handles = (f"{_Q}QActivation",)

    def handle(self, layer: Any, in_tensors: Sequence[Any], out_tensors: Sequence[Any]) -> tuple[dict[str, Any], ...]:
        """hls4ml's layer dictionaries for ``layer`` (one, or two for a clipped leaky relu)."""
        config = dict(self.default_config)
        config.update(activation_config(layer.activation, f"layer '{layer.name}' (QActivation)"))
        config["n_in"] = prod(in_tensors[0].shape[1:])
        if hasattr(layer.activation, "get_config"):
            config["activation_quantizer"] = _serialized(layer.activation)
        if config["class_name"] == "LeakyReLU":
            return self.clipped_leaky_relu(config, layer)
        return (config,)

    @staticmethod
    def clipped_leaky_relu(config: dict[str, Any], layer: Any) -> tuple[dict[str, Any], ...]:
        """QKeras's leaky ``quantized_relu(b, i, negative_slope=s)`` clips x at -2^i before the slope
        (outputs >= -s·2^i); hls4ml's LeakyReLU does not. A linear layer whose type saturates at -2^i
        (``clip_integer`` = i; :mod:`.derive` gives it the type) clips first, then the LeakyReLU runs."""
        clip_out = f"{config['output_keras_tensor_names'][0]}_clip"
        q = {k: int(v) for k, v in layer.activation.get_config().items() if k in ("bits", "integer")}
        clip = dict(config, class_name="Activation", activation="linear", name=f"{layer.name}_clip",
                    output_keras_tensor_names=[clip_out], clip_integer=q["integer"], clip_frac=q["bits"] - 1 - q["integer"])
        for key in ("activ_param", "activation_quantizer"):
            clip.pop(key, None)
        return clip, dict(config, input_keras_tensor_names=[clip_out])


class BatchNormHandler(KerasV3LayerHandler):
    """BatchNormalization and QBatchNormalization: hls4ml's Keras-3 converter has no handler for either.

    QKeras quantizes gamma, beta, mean and variance; the scale and bias hls4ml multiplies with are
    computed from the quantized values (not bit-exact: hls4ml rounds them to ``scale_t``/``bias_t``).
    """

    handles = (
        "keras.src.layers.normalization.batch_normalization.BatchNormalization",
        "qkeras.qnormalization.QBatchNormalization",
    )

    def handle(self, layer: Any, in_tensors: Sequence[Any], out_tensors: Sequence[Any]) -> dict[str, Any]:
        """hls4ml's BatchNormalization dictionary: scale and bias from the quantized gamma, beta, mean and variance;
        only the last axis (:class:`UnsupportedLayer` otherwise)."""
        shape = list(in_tensors[0].shape[1:])
        if layer.axis not in (-1, len(shape)):
            raise UnsupportedLayer(f"layer '{layer.name}' ({type(layer).__name__}): only the last axis is supported")
        n = shape[-1]

        def value(attr: str, role: str, default: float) -> np.ndarray:
            var = getattr(layer, attr, None)
            data = np.full(n, default, dtype="float32") if var is None else self.load_weight(layer, attr)
            q = getattr(layer, f"{role}_quantizer_internal", None)
            if q is not None and hasattr(q, "get_config"):
                import keras

                data = keras.ops.convert_to_numpy(q(data))
            return np.asarray(data, dtype="float64")

        gamma = value("gamma", "gamma", 1.0)
        beta = value("beta", "beta", 0.0)
        mean = value("moving_mean", "mean", 0.0)
        var = value("moving_variance", "variance", 1.0)
        scale = gamma / np.sqrt(var + layer.epsilon)
        return {
            "class_name": "BatchNormalization",
            "n_in": prod(shape),
            "n_out": prod(shape),
            "n_filt": -1 if len(shape) == 1 else n,
            "scale_data": scale,
            "bias_data": beta - scale * mean,
            "use_gamma": True,
            "use_beta": True,
        }


class QAveragePoolingHandler(PoolingHandler):
    """QAveragePooling1D/2D without an ``average_quantizer`` (or one exact on 1/pool area) is AveragePooling."""

    handles = ("qkeras.qpooling.QAveragePooling2D",)

    def default_class_name(self, layer: Any) -> str:
        """hls4ml's class: AveragePooling2D."""
        return "AveragePooling2D"

    def handle(self, layer: Any, in_tensors: Sequence[Any], out_tensors: Sequence[Any]) -> dict[str, Any]:
        """hls4ml's pooling dictionary; an ``average_quantizer`` that changes 1/pool area is refused."""
        q = getattr(layer, "average_quantizer_internal", None)
        if q is not None:
            import keras

            inv = 1.0 / prod(layer.pool_size)
            if float(keras.ops.convert_to_numpy(q(np.float32(inv)))) != inv:
                raise UnsupportedLayer(
                    f"layer '{layer.name}' (QAveragePooling2D): average_quantizer {q} changes 1/pool area; "
                    "hls4ml averages exactly"
                )
        return super().handle(layer, in_tensors, out_tensors)


HANDLERS: tuple[type[KerasV3LayerHandler], ...] = (
    QDenseHandler,
    QConvHandler,
    QActivationHandler,
    BatchNormHandler,
    QAveragePoolingHandler,
    *SEQUENCE_HANDLERS,
)


def install() -> tuple[str, ...]:
    """Make sure each handler is in hls4ml's registry (idempotent); the layer keys it covers."""
    keys: list[str] = []
    for cls in HANDLERS:
        for key in cls.handles:
            if not isinstance(registry.get(key), cls):
                registry[key] = cls()
            keys.append(key)
    return tuple(keys)
