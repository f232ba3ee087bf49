"""Imports: the unused go, their comments stay."""
# keras first
import keras  # the package

# the layers this file uses
# fully connected
from keras.layers import (  # layer classes
    Dropout,
)
# optimizers
from keras.optimizers import Adam
from qkeras import QDense, quantized_bits

model = keras.Sequential([QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)), Dropout(0.1), QDense(2, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))])
model.compile(optimizer=Adam())
