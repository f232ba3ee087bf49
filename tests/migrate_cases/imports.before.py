"""Imports: the unused go, their comments stay."""
# keras first
import keras  # the package

# the layers this file uses
from keras.layers import (  # layer classes
    Dense,  # fully connected
    Dropout,
)
# optimizers
from keras.optimizers import Adam

model = keras.Sequential([Dense(8), Dropout(0.1), Dense(2)])
model.compile(optimizer=Adam())
