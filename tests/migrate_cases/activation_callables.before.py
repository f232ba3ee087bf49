import tensorflow as tf
import keras
from keras import activations, layers

inputs = keras.Input(shape=(16,))
x = layers.Dense(8, activation=tf.nn.relu)(inputs)
x = layers.Dense(8, activation=activations.relu)(x)
x = layers.Dense(8, activation=keras.activations.softmax)(x)
x = layers.Dense(8, activation=None)(x)
x = layers.Activation("relu")(x)
x = layers.ReLU()(x)
x = layers.LeakyReLU(negative_slope=0.25)(x)
x = layers.Activation(tf.nn.relu)(x)
x = layers.Activation("softmax", name="probabilities")(x)
