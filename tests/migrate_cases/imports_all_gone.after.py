# header comment
# only Dense
from keras.models import Sequential
from qkeras import QDense, quantized_bits

model = Sequential()
model.add(QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)))
