import keras
from keras.layers import Dense
from qkeras import QActivation, QDense, quantized_bits, quantized_relu

model = keras.Sequential([
    QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)),
    QActivation(activation=quantized_relu(6), name="relu"),
    Dense(8, activation="relu"),  # qconvert: skip
])
# qconvert: skip
model.add(Dense(4))
model.add(QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)))
