# rules: keep_and_name.yaml
import keras
from keras import layers
from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu

inputs = keras.Input(shape=(8, 8, 1))
x = QActivation(activation=quantized_relu(6), name="relu1")(QConv2D(4, 3, use_bias=False, name="conv", kernel_quantizer=quantized_bits(4, 0, alpha=1))(inputs))
x = layers.Flatten()(x)
x = QActivation(activation=quantized_relu(6), name="relu2")(QDense(16, name="fc1", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x))
x = QActivation(activation=quantized_relu(8), name="relu3")(QDense(16, name="fc2", kernel_quantizer=quantized_bits(8, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x))
x = layers.Activation(activation="tanh", name="tanh")(QDense(16, name="fc3", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x))
x = layers.Activation("tanh")(x)
outputs = layers.Dense(5, activation="softmax", name="output")(x)
