import tensorflow as tf
import tensorflow
import keras
from keras import layers as L
from keras.layers import Dense as D  # the short name

inputs = keras.Input(shape=(16,))
a = D(8)(inputs)
b = L.Dense(8)(a)
c = keras.layers.Dense(8)(b)
d = tf.keras.layers.Dense(8)(c)
e = tensorflow.keras.layers.Dense(8)(d)
model = keras.Model(inputs, e)
