# rules: keep_and_name.yaml
from keras import layers

hidden = [layers.Dense(16, name=f"fc{i}") for i in range(3)]
