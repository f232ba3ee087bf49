"""What the codemod knows of Keras and QKeras by name: no Keras import, plain tables.

Layer classes are recognised by qualified name (``keras.layers.Dense``,
``tensorflow.keras.layers.Dense``, ...); activation callables by qualified name
too (``tf.nn.relu`` counts as ``'relu'``). The keyword tables mirror the
signatures of keras 3 and qkeras-v3; ``tests/test_migrate.py`` checks them
against the installed packages.
"""

from __future__ import annotations

import re

from ..model.rewriters.activation import ACTIVATION_LAYERS
from ..model.rewriters.batchnorm import BN_ROLES
from ..model.rewriters.weighted import WEIGHTED

__all__ = [
    "ACTIVATION_LAYERS",
    "BASE_KWARGS",
    "KERAS_POSITIONAL",
    "Q_ACCEPTS",
    "WEIGHTED",
    "WEIGHTLESS",
    "activation_from_qualname",
    "is_layers_module",
    "is_sequential",
    "layer_class",
    "normalize_activation",
    "qkeras_class",
]

_KERAS_ROOTS = r"(?:keras|tensorflow\.keras|tensorflow\.python\.keras|tf_keras)"
_LAYER_RE = re.compile(rf"^{_KERAS_ROOTS}(?:\.src)?\.layers(?:\.[a-z_][a-z0-9_]*)*\.([A-Z]\w*)$")
_LAYERS_MODULE_RE = re.compile(rf"^{_KERAS_ROOTS}(?:\.src)?\.layers$")
_SEQUENTIAL_RE = re.compile(rf"^{_KERAS_ROOTS}(?:\.models)?\.Sequential$")
_MODEL_RE = re.compile(rf"^{_KERAS_ROOTS}(?:\.src)?(?:\.models)?(?:\.[a-z_]+)*\.(?:Model|Sequential|Functional)$")
_ROOT_RE = re.compile(rf"^{_KERAS_ROOTS}$")
_ACTIVATION_FN_RE = re.compile(
    rf"^(?:{_KERAS_ROOTS}(?:\.src)?\.activations|tensorflow\.nn|tensorflow\.math|{_KERAS_ROOTS}\.ops)\.([a-z_0-9]+)$"
)
#: tf.nn / ops spellings that differ from the Keras activation name
_ACTIVATION_ALIASES = {"swish": "silu", "hard_swish": "hard_silu"}


def layer_class(qualified_name: str) -> str | None:
    """``keras.layers.Dense`` → ``Dense``; None for anything not a Keras layer class."""
    m = _LAYER_RE.match(qualified_name)
    return m.group(1) if m else None


def is_layers_module(qualified_name: str) -> bool:
    """Is ``qualified_name`` a Keras layers module (``keras.layers``, ``tensorflow.keras.layers``, ...)?"""
    return bool(_LAYERS_MODULE_RE.match(qualified_name))


def is_sequential(qualified_name: str) -> bool:
    """Is ``qualified_name`` Keras's ``Sequential`` (under any of its import paths)?"""
    return bool(_SEQUENTIAL_RE.match(qualified_name))


def layers_module_of(qualified_name: str) -> str:
    """The public layers module of a layer class: ``tensorflow.keras.layers.Dense`` → ``tensorflow.keras.layers``."""
    root = re.match(_KERAS_ROOTS, qualified_name)
    return f"{root.group(0) if root else 'keras'}.layers"


def is_model_class(qualified_name: str) -> bool:
    """``keras.Model``, ``tf.keras.models.Sequential``, ...: bases a subclassed model derives from."""
    return bool(_MODEL_RE.match(qualified_name))


def is_keras_root(module: str) -> bool:
    """``keras``, ``tensorflow.keras``, ...: a star import from it brings the layer classes too."""
    return bool(_ROOT_RE.match(module))


def normalize_activation(name: str) -> str | None:
    """An activation name as Keras 3 serializes it (``swish`` → ``silu``); None if unknown."""
    from ..rules import KNOWN_ACTIVATIONS

    name = _ACTIVATION_ALIASES.get(name, name)
    return name if name in KNOWN_ACTIVATIONS else None


def activation_from_qualname(qualified_name: str) -> str | None:
    """``tensorflow.nn.relu`` → ``relu``; None when it is not a known activation callable."""
    m = _ACTIVATION_FN_RE.match(qualified_name)
    return normalize_activation(m.group(1)) if m else None


def qkeras_class(class_name: str) -> str | None:
    """The QKeras class a Keras layer class becomes (``Dense`` → ``QDense``), or None when there is none."""
    if class_name in WEIGHTED:
        return WEIGHTED[class_name][0]
    if class_name in ACTIVATION_LAYERS:
        return "QActivation"
    if class_name == "BatchNormalization":
        return "QBatchNormalization"
    return None


#: keyword arguments every keras 3 layer takes (``Layer.__init__`` and the
#: shape keywords it pops); qkeras layers pass them through.
BASE_KWARGS = frozenset({"name", "dtype", "trainable", "autocast", "activity_regularizer", "input_shape", "input_dim"})

#: keras 3 positional order of the classes the codemod rewrites (``self`` left out)
KERAS_POSITIONAL: dict[str, tuple[str, ...]] = {
    "Dense": ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
              "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint", "lora_rank",
              "lora_alpha", "quantization_config"),
    "Conv1D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation",
               "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
               "activity_regularizer", "kernel_constraint", "bias_constraint"),
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups", "activation",
               "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
               "activity_regularizer", "kernel_constraint", "bias_constraint"),
    "Conv2DTranspose": ("filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
                        "dilation_rate", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                        "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                        "bias_constraint"),
    "DepthwiseConv2D": ("kernel_size", "strides", "padding", "depth_multiplier", "data_format", "dilation_rate",
                        "activation", "use_bias", "depthwise_initializer", "bias_initializer", "depthwise_regularizer",
                        "bias_regularizer", "activity_regularizer", "depthwise_constraint", "bias_constraint"),
    "SeparableConv1D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                        "depth_multiplier", "activation", "use_bias", "depthwise_initializer",
                        "pointwise_initializer", "bias_initializer", "depthwise_regularizer", "pointwise_regularizer",
                        "bias_regularizer", "activity_regularizer", "depthwise_constraint", "pointwise_constraint",
                        "bias_constraint"),
    "SeparableConv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate",
                        "depth_multiplier", "activation", "use_bias", "depthwise_initializer",
                        "pointwise_initializer", "bias_initializer", "depthwise_regularizer", "pointwise_regularizer",
                        "bias_regularizer", "activity_regularizer", "depthwise_constraint", "pointwise_constraint",
                        "bias_constraint"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
                           "moving_mean_initializer", "moving_variance_initializer", "beta_regularizer",
                           "gamma_regularizer", "beta_constraint", "gamma_constraint", "renorm", "renorm_clipping",
                           "renorm_momentum", "synchronized"),
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "LeakyReLU": ("negative_slope",),
}  # fmt: skip

#: QSeparableConv1D and QSeparableConv2D take the same arguments.
_SEPARABLE_ARGS = ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "depth_multiplier",
                   "activation", "use_bias", "depthwise_initializer", "pointwise_initializer", "bias_initializer",
                   "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer", "activity_regularizer",
                   "depthwise_constraint", "pointwise_constraint", "bias_constraint", "depthwise_quantizer",
                   "pointwise_quantizer", "bias_quantizer")

#: qkeras-v3 positional order (``self`` and ``**kwargs`` left out) of the Q-layers.
_Q_POSITIONAL: dict[str, tuple[str, ...]] = {
    "QDense": ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer",
               "bias_regularizer", "activity_regularizer", "kernel_constraint", "bias_constraint", "kernel_quantizer",
               "bias_quantizer", "kernel_range", "bias_range"),
    "QConv1D": ("filters", "kernel_size", "strides", "padding", "dilation_rate", "activation", "use_bias",
                "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
                "activity_regularizer", "kernel_constraint", "bias_constraint", "kernel_quantizer", "bias_quantizer",
                "kernel_range", "bias_range"),
    "QConv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation",
                "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
                "activity_regularizer", "kernel_constraint", "bias_constraint", "kernel_range", "bias_range",
                "kernel_quantizer", "bias_quantizer", "mask"),
    "QConv2DTranspose": ("filters", "kernel_size", "strides", "padding", "output_padding", "data_format",
                         "dilation_rate", "activation", "use_bias", "kernel_initializer", "bias_initializer",
                         "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
                         "bias_constraint", "kernel_quantizer", "bias_quantizer"),
    "QDepthwiseConv2D": ("kernel_size", "strides", "padding", "depth_multiplier", "data_format", "activation",
                         "use_bias", "depthwise_initializer", "bias_initializer", "depthwise_regularizer",
                         "bias_regularizer", "activity_regularizer", "depthwise_constraint", "bias_constraint",
                         "dilation_rate", "depthwise_quantizer", "bias_quantizer", "depthwise_range", "bias_range"),
    "QSeparableConv1D": _SEPARABLE_ARGS,
    "QSeparableConv2D": _SEPARABLE_ARGS,
    "QBatchNormalization": ("axis", "momentum", "epsilon", "center", "scale", "activation", "beta_initializer",
                            "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
                            "beta_regularizer", "gamma_regularizer", "beta_quantizer", "gamma_quantizer",
                            "mean_quantizer", "variance_quantizer", "inverse_quantizer", "gamma_constraint",
                            "beta_constraint", "beta_range", "gamma_range"),
    "QActivation": ("activation",),
}  # fmt: skip
#: keywords a Q-layer forwards through ``**kwargs`` to its keras base class,
#: which handles them (QConv1D's signature has no data_format, Conv1D's has).
_FORWARDED = {"QConv1D": frozenset({"data_format"})}

Q_POSITIONAL = _Q_POSITIONAL
#: Q-layer → every keyword it accepts
Q_ACCEPTS: dict[str, frozenset[str]] = {
    q: frozenset(params) | BASE_KWARGS | _FORWARDED.get(q, frozenset()) for q, params in _Q_POSITIONAL.items()
}

#: keras layers without weights: nothing to quantize, passed through silently
WEIGHTLESS = frozenset(
    {
        "Input", "InputLayer", "Flatten", "Reshape", "Permute", "RepeatVector", "Dropout", "SpatialDropout1D",
        "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Masking",
        "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot", "ZeroPadding1D",
        "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D",
        "UpSampling3D", "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
        "AveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
        "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D", "MaxPool1D", "MaxPool2D",
        "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D", "GlobalMaxPool1D", "GlobalMaxPool2D",
        "GlobalAvgPool1D", "GlobalAvgPool2D", "Softmax", "ELU", "ActivityRegularization", "Identity",
        "Rescaling", "Resizing", "CenterCrop", "Layer",
    }
)  # fmt: skip

#: Keras 3 arguments with no counterpart in the Q-layers, dropped at their inert
#: value (as :mod:`qconvert.model.rewriters.weighted` does) and refused otherwise.
INERT_KWARGS: dict[str, object] = {"quantization_config": None, "lora_rank": None, "lora_alpha": None, "groups": 1}

__all__ += ["BN_ROLES", "INERT_KWARGS", "Q_POSITIONAL", "is_keras_root", "is_model_class", "layers_module_of"]
