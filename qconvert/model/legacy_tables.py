"""The differences between Keras 2 / QKeras 0.9 configs and Keras 3 / qkeras-v3 configs, as data.

Every difference :mod:`qconvert.model.legacy` knows is an entry of one of these
tables; the translator there is the code that applies them. Nothing here
imports Keras.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ACTIVATION_QUANTIZER_LAYERS",
    "ANY",
    "DROPPED_ARGS",
    "DROPPED_QUANTIZER_ARGS",
    "KEPT_ARGS",
    "MODEL_CLASSES",
    "QKERAS_LAYERS",
    "QKERAS_OBJECTS",
    "QUANTIZER_ARGS",
    "QUANTIZER_KEY_SUFFIX",
    "RENAMED_ARGS",
    "RENAMED_LAYERS",
    "SCALAR_AXIS",
    "VARIANCE_SCALING_DISTRIBUTIONS",
    "WRAPPED_LAYER_KEYS",
]

#: Keras 2 model class names → Keras 3 (module, class).
MODEL_CLASSES: dict[str, tuple[str, str]] = {
    "Sequential": ("keras", "Sequential"),
    "Model": ("keras.src.models.functional", "Functional"),
    "Functional": ("keras.src.models.functional", "Functional"),
}

#: Layer classes Keras 3 spells differently (Keras 1/2 aliases).
RENAMED_LAYERS: dict[str, str] = {
    "Convolution1D": "Conv1D",
    "Convolution2D": "Conv2D",
    "Convolution3D": "Conv3D",
    "Deconvolution2D": "Conv2DTranspose",
    "Deconv2D": "Conv2DTranspose",
    "AtrousConvolution2D": "Conv2D",
    "SeparableConvolution2D": "SeparableConv2D",
    "CuDNNLSTM": "LSTM",
    "CuDNNGRU": "GRU",
}

#: Per layer class: Keras 2 argument → Keras 3 argument.
RENAMED_ARGS: dict[str, dict[str, str]] = {
    "LeakyReLU": {"alpha": "negative_slope"},
    "InputLayer": {"batch_input_shape": "batch_shape", "input_shape": "shape"},
}

#: "Whatever the value": an argument with no Keras 3 meaning, dropped at any value.
ANY = object()

#: Per layer class ("*": every class): Keras 2 arguments Keras 3 does not take,
#: with the value at which dropping one changes nothing (``ANY``: any value).
DROPPED_ARGS: dict[str, dict[str, Any]] = {
    "*": {"batch_input_shape": ANY, "input_shape": ANY, "input_dim": ANY, "batch_size": ANY},
    "InputLayer": {"ragged": False},
    "BatchNormalization": {"fused": ANY, "virtual_batch_size": None, "adjustment": None},
    "QBatchNormalization": {"fused": ANY, "virtual_batch_size": None, "adjustment": None},
    "Embedding": {"input_length": ANY},
    "Dropout": {"noise_shape": None},
    **{rnn: {"time_major": False, "implementation": ANY}
       for rnn in ("SimpleRNN", "GRU", "LSTM", "QSimpleRNN", "QGRU", "QLSTM")},
}
#: Per layer class: Keras 2 arguments the ``"*"`` row drops that this class keeps
#: (an Embedding's ``input_dim`` is its vocabulary size, not an input shape).
KEPT_ARGS: dict[str, frozenset[str]] = {"Embedding": frozenset({"input_dim"})}
#: Wrapper layers: the config keys that hold a whole layer, translated as one.
WRAPPED_LAYER_KEYS: dict[str, tuple[str, ...]] = {
    "Bidirectional": ("layer", "backward_layer"),
    "QBidirectional": ("layer", "backward_layer"),
    "TimeDistributed": ("layer",),
}

#: QKeras 0.9 layers that qkeras-v3 defines under the same name.
QKERAS_LAYERS = frozenset(
    {
        "QDense", "QConv1D", "QConv2D", "QConv2DTranspose", "QDepthwiseConv2D", "QSeparableConv1D",
        "QSeparableConv2D", "QActivation", "QAdaptiveActivation", "QBatchNormalization", "QAveragePooling2D",
        "QGlobalAveragePooling2D", "QDenseBatchnorm", "QConv2DBatchnorm", "QDepthwiseConv2DBatchnorm",
        "QSimpleRNN", "QLSTM", "QGRU", "QBidirectional",
    }
)
#: QKeras objects other than layers and quantizers that configs hold.
QKERAS_OBJECTS = frozenset({"QInitializer", "Clip"})

#: QKeras quantizers: the arguments qkeras-v3 takes (QKeras 0.9 serialized a subset of these).
QUANTIZER_ARGS: dict[str, frozenset[str]] = {
    "quantized_bits": frozenset({"bits", "integer", "symmetric", "keep_negative", "alpha", "use_stochastic_rounding",
                                 "scale_axis", "qnoise_factor", "var_name", "use_ste", "use_variables",
                                 "elements_per_scale", "min_po2_exponent", "max_po2_exponent", "post_training_scale"}),
    "quantized_relu": frozenset({"bits", "integer", "use_sigmoid", "negative_slope", "use_stochastic_rounding",
                                 "relu_upper_bound", "is_quantized_clip", "qnoise_factor", "var_name", "use_ste",
                                 "use_variables"}),
    "quantized_tanh": frozenset({"bits", "use_stochastic_rounding", "symmetric", "use_real_tanh"}),
    "quantized_sigmoid": frozenset({"bits", "symmetric", "use_real_sigmoid", "use_stochastic_rounding"}),
    "binary": frozenset({"use_01", "alpha", "use_stochastic_rounding", "scale_axis", "elements_per_scale",
                         "min_po2_exponent", "max_po2_exponent"}),
    "ternary": frozenset({"alpha", "threshold", "use_stochastic_rounding", "number_of_unrolls"}),
    "quantized_po2": frozenset({"bits", "max_value", "use_stochastic_rounding", "quadratic_approximation",
                                "log2_rounding", "qnoise_factor", "var_name", "use_ste", "use_variables"}),
    "quantized_relu_po2": frozenset({"bits", "max_value", "negative_slope", "use_stochastic_rounding",
                                     "quadratic_approximation", "log2_rounding", "qnoise_factor", "var_name",
                                     "use_ste", "use_variables"}),
    "quantized_ulaw": frozenset({"bits", "integer", "symmetric", "u"}),
    "quantized_hswish": frozenset({"bits", "integer", "symmetric", "alpha", "use_stochastic_rounding", "scale_axis",
                                   "qnoise_factor", "var_name", "use_variables", "relu_shift", "relu_upper_bound"}),
    "quantized_linear": frozenset({"bits", "integer", "symmetric", "keep_negative", "alpha",
                                   "use_stochastic_rounding", "scale_axis", "qnoise_factor", "var_name",
                                   "use_variables"}),
    "stochastic_binary": frozenset({"alpha", "temperature", "use_real_sigmoid"}),
    "stochastic_ternary": frozenset({"alpha", "threshold", "temperature", "use_real_sigmoid", "number_of_unrolls"}),
    "bernoulli": frozenset({"alpha", "temperature", "use_real_sigmoid"}),
}
#: QKeras 0.9 arguments qkeras-v3 dropped, with the value at which dropping one changes nothing.
DROPPED_QUANTIZER_ARGS: dict[str, Any] = {"qnoise_factor": 1.0}

#: Keras 2 VarianceScaling spelled truncated normal ``"normal"``.
VARIANCE_SCALING_DISTRIBUTIONS = {"normal": "truncated_normal"}
#: Layers whose Keras 2 ``axis`` was a one-element list where Keras 3 wants an int.
SCALAR_AXIS = frozenset({"BatchNormalization", "QBatchNormalization"})
#: Config keys of a QKeras layer that hold quantizers (text or serialized).
QUANTIZER_KEY_SUFFIX = "_quantizer"
ACTIVATION_QUANTIZER_LAYERS = frozenset({"QActivation", "QDense", "QConv1D", "QConv2D", "QConv2DTranspose",
                                          "QDepthwiseConv2D", "QSeparableConv1D", "QSeparableConv2D"})
