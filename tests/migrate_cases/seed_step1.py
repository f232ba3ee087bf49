# The seed's Step 1 model code, verbatim (fit/save lines left out: they need the data).
from keras.models import Sequential
from keras.layers import Dense
from keras.optimizers import Adam
# Standard FP32 Architecture
baseline_model = Sequential()
baseline_model.add(Dense(64, input_shape=(16,), name='fc1', activation='relu'))
baseline_model.add(Dense(32, name='fc2', activation='relu'))
baseline_model.add(Dense(32, name='fc3', activation='relu'))
baseline_model.add(Dense(5, name='output', activation='softmax'))
baseline_model.compile(optimizer=Adam(learning_rate=1e-3), loss='categorical_crossentropy', metrics=['accuracy'])
