# The seed's Step 1 model in the functional API.
import keras
from keras import layers

inputs = keras.Input(shape=(16,), name="inputs")
# hidden layers
x = layers.Dense(64, name="fc1", activation="relu")(inputs)
x = layers.Dense(32, name="fc2", activation="relu")(x)
x = layers.Dense(32, name="fc3", activation="relu")(x)  # last hidden layer
outputs = layers.Dense(5, name="output", activation="softmax")(x)
baseline_model = keras.Model(inputs, outputs, name="jet_tagger")
