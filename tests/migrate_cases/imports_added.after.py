"""Imports added: after the docstring, __future__ and the import block; a parenthesized import is left as written."""
from __future__ import annotations

# fully connected
from keras.layers import (  # the layers
    Dropout,
)
from qkeras import QActivation, QDense, quantized_bits, quantized_relu  # already here: joined, not repeated
import keras
from keras.layers import Activation

model = keras.Sequential([QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)), QActivation(activation=quantized_relu(6), name="relu"), Dropout(0.1), QActivation("quantized_relu(4)"), QDense(2, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)), Activation(activation="softmax", name="softmax")])
