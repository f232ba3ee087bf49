"""Imports added: after the docstring, __future__ and the import block; a parenthesized import is left as written."""
from __future__ import annotations

from keras.layers import (  # the layers
    Dense,  # fully connected
    Dropout,
)
from qkeras import QActivation  # already here: joined, not repeated
import keras
model = keras.Sequential([Dense(8, activation="relu"), Dropout(0.1), QActivation("quantized_relu(4)"), Dense(2, activation="softmax")])
