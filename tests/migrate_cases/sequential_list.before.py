from keras import Sequential
from keras.layers import Dense, Flatten


def build(n_classes):
    return Sequential(
        [
            Flatten(),
            Dense(
                64,  # units
                activation="relu",  # fused activation
                name="fc1",
            ),
            Dense(n_classes, "softmax", name="out")  # positional activation
        ]
    )


one_line = Sequential([Dense(4, activation="relu"), Dense(2)])
trailing = Sequential(layers=[
    Dense(8, activation="relu"),
])
