from keras.layers import *
from keras import layers
import keras
from qkeras import QDense, quantized_bits

config = {"units": 8}
args = (8,)
a = layers.Dense(**config)
b = layers.Dense(*args)
c = layers.Dense(8, lora_rank=4)
d = QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))
cls = layers.Dense
e = getattr(layers, "Dense")(8)
f = layers.deserialize({"class_name": "Dense", "config": {"units": 8}})
g = layers.Dense(8, activation="relu")
h = layers.Dense(8, activation=my_activation)
i = layers.Embedding(100, 8)
j = layers.Dropout(0.1)


class Block(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.dense = layers.Dense(8)


class Net(keras.Model):
    def build_head(self):
        return layers.Dense(8)
