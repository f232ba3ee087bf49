"""Layers built in a helper called in a loop, in a comprehension, and a layer given as an Activation's activation."""
import keras
from keras import layers
from qkeras import QActivation, QDense, quantized_bits, quantized_relu, quantized_tanh


def block(x, units):
    return QActivation(activation=quantized_relu(6))(QDense(units, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x))


def build():
    inp = keras.Input((16,))
    x = inp
    for units in (32, 16, 8):
        x = block(x, units)
    x = layers.Activation(activation=layers.ReLU())(x)
    heads = [QActivation(activation=quantized_tanh(6))(QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x)) for _ in range(2)]
    x = QActivation(activation=quantized_relu(6), name="relu")(QDense(6, name="merge", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(layers.Concatenate()(heads)))
    out = layers.Activation(activation="softmax", name="softmax")(QDense(3, name="head", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x))
    return keras.Model(inp, out)


model = build()
