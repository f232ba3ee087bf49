# header comment
from keras.layers import Dense  # only Dense
from keras.models import Sequential

model = Sequential()
model.add(Dense(8))
