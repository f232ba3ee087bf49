# rules: ../../rules/4bit.yaml
from keras import layers, Sequential
from qkeras import QActivation, QConv2D, QDense, QDepthwiseConv2D, QSeparableConv2D, quantized_bits, quantized_relu

model = Sequential([
    layers.Input((28, 28, 1)),
    QConv2D(8, (3, 3), padding="same", use_bias=False, kernel_quantizer=quantized_bits(4, 0, alpha=1)),
    layers.BatchNormalization(),
    QActivation(activation=quantized_relu(4)),
    QDepthwiseConv2D(3, depthwise_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1)),
    QActivation(activation=quantized_relu(4), name="relu"),
    QSeparableConv2D(8, 3, depthwise_quantizer=quantized_bits(4, 0, alpha=1), pointwise_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1)),
    layers.GlobalAveragePooling2D(),
    QDense(10, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1)),
    layers.Activation(activation="softmax", name="softmax"),
])
