import keras
from keras.layers import Dense

model = keras.Sequential([
    Dense(8, activation="relu"),
    Dense(8, activation="relu"),  # qconvert: skip
])
# qconvert: skip
model.add(Dense(4))
model.add(Dense(4))
