# The seed's Step 2 hand-written QKeras model code, verbatim (fit/save lines left out).
from keras.models import Sequential
from keras.layers import Activation
from keras.optimizers import Adam
from qkeras.qlayers import QDense, QActivation
from qkeras.quantizers import quantized_bits, quantized_relu
# 6-bit Quantized Architecture
quantized_model = Sequential()
quantized_model.add(
QDense(
64,
input_shape=(16,),
name='fc1',
kernel_quantizer=quantized_bits(6, 0, alpha=1),
bias_quantizer=quantized_bits(6, 0, alpha=1),
)
)
quantized_model.add(QActivation(activation=quantized_relu(6), name='relu1'))
quantized_model.add(
QDense(
32,
name='fc2',
kernel_quantizer=quantized_bits(6, 0, alpha=1),
bias_quantizer=quantized_bits(6, 0, alpha=1),
)
)
quantized_model.add(QActivation(activation=quantized_relu(6), name='relu2'))
quantized_model.add(
QDense(
32,
name='fc3',
kernel_quantizer=quantized_bits(6, 0, alpha=1),
bias_quantizer=quantized_bits(6, 0, alpha=1),
)
)
quantized_model.add(QActivation(activation=quantized_relu(6), name='relu3'))
quantized_model.add(
QDense(
5,
name='output',
kernel_quantizer=quantized_bits(6, 0, alpha=1),
bias_quantizer=quantized_bits(6, 0, alpha=1),
)
)
quantized_model.add(Activation(activation='softmax', name='softmax'))
quantized_model.compile(optimizer=Adam(learning_rate=1e-4), loss='categorical_crossentropy', metrics=['accuracy'])
