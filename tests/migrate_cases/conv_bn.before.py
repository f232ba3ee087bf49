# rules: ../../rules/4bit.yaml
from keras import layers, Sequential

model = Sequential([
    layers.Input((28, 28, 1)),
    layers.Conv2D(8, (3, 3), padding="same", use_bias=False),
    layers.BatchNormalization(),
    layers.Activation("relu"),
    layers.DepthwiseConv2D(3, activation="relu"),
    layers.SeparableConv2D(8, 3),
    layers.GlobalAveragePooling2D(),
    layers.Dense(10, activation="softmax"),
])
