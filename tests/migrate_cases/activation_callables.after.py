import tensorflow as tf
import keras
from keras import activations, layers
from qkeras import QActivation, QDense, quantized_bits, quantized_relu

inputs = keras.Input(shape=(16,))
x = QActivation(activation=quantized_relu(6), name="relu1")(QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(inputs))
x = QActivation(activation=quantized_relu(6), name="relu2")(QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x))
x = layers.Activation(activation="softmax", name="softmax")(QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x))
x = QDense(8, activation=None, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x)
x = QActivation(activation=quantized_relu(6))(x)
x = QActivation(activation=quantized_relu(6))(x)
x = QActivation(activation=quantized_relu(6, negative_slope=0.25))(x)
x = QActivation(activation=quantized_relu(6))(x)
x = layers.Activation("softmax", name="probabilities")(x)
