# rules: keep_and_name.yaml
import keras
from keras import layers

inputs = keras.Input(shape=(8, 8, 1))
x = layers.Conv2D(4, 3, activation="relu", use_bias=False, name="conv")(inputs)
x = layers.Flatten()(x)
x = layers.Dense(16, activation="relu", name="fc1")(x)
x = layers.Dense(16, activation="relu", name="fc2")(x)
x = layers.Dense(16, activation="tanh", name="fc3")(x)
x = layers.Activation("tanh")(x)
outputs = layers.Dense(5, activation="softmax", name="output")(x)
