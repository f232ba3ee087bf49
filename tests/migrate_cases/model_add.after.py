import keras
from keras.layers import Activation
from qkeras import QActivation, QDense, quantized_bits, quantized_relu


def build():
    model = keras.Sequential()
    model.add(keras.Input(shape=(16,)))
    model.add(QDense(32, kernel_initializer="lecun_uniform", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)))  # hidden
    model.add(QActivation(activation=quantized_relu(6), name="relu"))
    model.add(QDense(5, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)))
    model.add(Activation(activation="softmax", name="softmax"))
    return model
