"""Layers built in a helper called in a loop, in a comprehension, and a layer given as an Activation's activation."""
import keras
from keras import layers


def block(x, units):
    return layers.Dense(units, activation="relu")(x)


def build():
    inp = keras.Input((16,))
    x = inp
    for units in (32, 16, 8):
        x = block(x, units)
    x = layers.Activation(activation=layers.ReLU())(x)
    heads = [layers.Dense(4, activation="tanh")(x) for _ in range(2)]
    x = layers.Dense(6, activation="relu", name="merge")(layers.Concatenate()(heads))
    out = layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inp, out)


model = build()
