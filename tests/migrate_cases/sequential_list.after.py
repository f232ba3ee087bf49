from keras import Sequential
from keras.layers import Flatten, Activation
from qkeras import QActivation, QDense, quantized_bits, quantized_relu


def build(n_classes):
    return Sequential(
        [
            Flatten(),
            QDense(
                64,  # units
                # fused activation
                name="fc1",
                kernel_quantizer=quantized_bits(6, 0, alpha=1),
                bias_quantizer=quantized_bits(6, 0, alpha=1),
            ),
            QActivation(activation=quantized_relu(6), name="relu1"),
            QDense(n_classes, name="out", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)),  # positional activation
            Activation(activation="softmax", name="softmax")
        ]
    )


one_line = Sequential([QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)), QActivation(activation=quantized_relu(6), name="relu2"), QDense(2, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))])
trailing = Sequential(layers=[
    QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)),
    QActivation(activation=quantized_relu(6), name="relu3"),
])
