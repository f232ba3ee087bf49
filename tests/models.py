"""Small models the tests convert: the seed's jet tagger and graphs with every layer family."""

import keras
import numpy as np


def seed_fp32() -> keras.Model:
    """The seed's Step 1 baseline, as written there."""
    model = keras.Sequential()
    model.add(keras.Input(shape=(16,)))
    model.add(keras.layers.Dense(64, name="fc1", activation="relu"))
    model.add(keras.layers.Dense(32, name="fc2", activation="relu"))
    model.add(keras.layers.Dense(32, name="fc3", activation="relu"))
    model.add(keras.layers.Dense(5, name="output", activation="softmax"))
    return model


def seed_6bit() -> keras.Model:
    """The seed's Step 2 hand-written 6-bit QKeras model, as written there."""
    from qkeras.qlayers import QActivation, QDense
    from qkeras.quantizers import quantized_bits, quantized_relu

    model = keras.Sequential()
    model.add(keras.Input(shape=(16,)))
    model.add(QDense(64, name="fc1", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)))
    model.add(QActivation(activation=quantized_relu(6), name="relu1"))
    model.add(QDense(32, name="fc2", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)))
    model.add(QActivation(activation=quantized_relu(6), name="relu2"))
    model.add(QDense(32, name="fc3", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)))
    model.add(QActivation(activation=quantized_relu(6), name="relu3"))
    model.add(QDense(5, name="output", kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1)))
    model.add(keras.layers.Activation(activation="softmax", name="softmax"))
    return model


def randomize_batchnorm(model: keras.Model, seed: int = 0) -> None:
    """Give every BatchNormalization non-trivial statistics, as after training."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.get_weights()[-1].shape[0]
            gamma, var = rng.uniform(0.5, 1.5, size=(2, n)).astype("float32")
            beta, mean = rng.normal(0, 0.5, size=(2, n)).astype("float32")
            weights = ([gamma] if layer.scale else []) + ([beta] if layer.center else []) + [mean, var]
            layer.set_weights(weights)


def branching_bn() -> keras.Model:
    """Dense → BN → ReLU, two branches (relu, tanh), Add, Concatenate skip, softmax head."""
    inp = keras.Input((8,), name="features")
    x = keras.layers.Dense(16, name="stem")(inp)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    a = keras.layers.Dense(16, activation="relu", name="branch_a")(x)
    b = keras.layers.Dense(16, activation="tanh", name="branch_b")(x)
    b = keras.layers.Dense(16, use_bias=False, name="branch_b2")(b)
    b = keras.layers.BatchNormalization(name="branch_b2_bn")(b)
    s = keras.layers.Add(name="add")([a, b])
    s = keras.layers.LeakyReLU(negative_slope=0.125, name="leaky")(s)
    c = keras.layers.Concatenate(name="skip")([s, x])
    out = keras.layers.Dense(4, activation="softmax", name="head")(c)
    model = keras.Model(inp, out, name="branching")
    randomize_batchnorm(model)
    return model


def conv2d_families() -> keras.Model:
    inp = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inp)
    x = keras.layers.BatchNormalization(name="conv_bn")(x)
    x = keras.layers.Activation("relu", name="conv_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.SeparableConv2D(8, 3, activation="relu", name="sep")(x)
    x = keras.layers.Conv2DTranspose(4, 3, strides=2, name="deconv")(x)
    x = keras.layers.BatchNormalization(name="deconv_bn")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.AveragePooling2D(2, padding="same", name="avg")(x)
    x = keras.layers.Flatten(name="flat")(x)
    out = keras.layers.Dense(3, activation="sigmoid", name="head")(x)
    model = keras.Model(inp, out, name="conv2d_families")
    randomize_batchnorm(model)
    return model


def conv1d_families() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((20, 4)),
            keras.layers.Conv1D(6, 3, activation="relu", name="c1"),
            keras.layers.SeparableConv1D(6, 3, name="s1"),
            keras.layers.BatchNormalization(name="s1_bn"),
            keras.layers.Activation("tanh", name="s1_tanh"),
            keras.layers.GlobalAveragePooling1D(name="gap"),
            keras.layers.Dense(2, name="out"),
        ],
        name="conv1d_families",
    )


def nested_shared() -> keras.Model:
    """A Sequential nested in a functional model, and a Dense shared by two calls."""
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(6, activation="relu", name="inner_fc")], name="inner")
    inp = keras.Input((6,), name="x")
    shared = keras.layers.Dense(6, activation="relu", name="shared")
    y = shared(inp)
    y = shared(y)
    y = inner(y)
    out = keras.layers.Dense(2, name="out")(y)
    return keras.Model(inp, out, name="nested_shared")


def random_inputs(model: keras.Model, n: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, size=(n, *model.inputs[0].shape[1:])).astype("float32")


def activation_families() -> keras.Model:
    """Every way Keras writes an activation: by name in ``activation=``, as ``Activation``, ``ReLU`` (with
    ``max_value``), ``LeakyReLU``; the functions QKeras quantizes and some it cannot."""
    inp = keras.Input((8,), name="features")
    x = keras.layers.Dense(8, activation="relu6", name="fc_relu6")(inp)
    x = keras.layers.Dense(8, activation="tanh", name="fc_tanh")(x)
    x = keras.layers.Dense(8, activation="sigmoid", name="fc_sigmoid")(x)
    x = keras.layers.Dense(8, activation="leaky_relu", name="fc_leaky")(x)
    for function in ("relu", "relu6", "tanh", "sigmoid", "hard_sigmoid", "elu", "linear"):
        x = keras.layers.Activation(function, name=f"act_{function}")(keras.layers.Dense(8, name=f"fc_{function}_in")(x))
    x = keras.layers.ReLU(max_value=6.0, name="relu_max6")(x)
    x = keras.layers.LeakyReLU(negative_slope=0.125, name="leaky_layer")(x)
    out = keras.layers.Dense(4, activation="softmax", name="head")(x)
    return keras.Model(inp, out, name="activation_families")


def shared_bn_heads() -> keras.Model:
    """BatchNormalization on the input, and one linear Dense feeding two BatchNormalization branches, each into
    its own Dense head: none can fold into the layer before it, each folds forward into the Dense after it."""
    keras.utils.set_random_seed(5)
    inp = keras.Input((8,), name="x")
    shared = keras.layers.Dense(12, name="shared")(keras.layers.BatchNormalization(name="bn_in")(inp))
    a = keras.layers.Dense(3, name="head_a")(keras.layers.BatchNormalization(name="bn_a")(shared))
    b = keras.layers.Dense(2, activation="relu", name="head_b")(keras.layers.BatchNormalization(name="bn_b")(shared))
    model = keras.Model(inp, [a, b], name="shared_bn_heads")
    randomize_batchnorm(model)
    return model


def bn_before_convs() -> keras.Model:
    """BatchNormalization on an image input before a dilated valid Conv2D, and after a ReLU before a strided
    valid Conv1D: both fold forward."""
    keras.utils.set_random_seed(6)
    inp = keras.Input((10, 10, 3), name="image")
    x = keras.layers.BatchNormalization(name="bn_image")(inp)
    x = keras.layers.Conv2D(4, 3, dilation_rate=2, activation="relu", name="conv")(x)
    x = keras.layers.Reshape((36, 4), name="rows")(x)
    x = keras.layers.BatchNormalization(name="bn_rows")(x)
    x = keras.layers.Conv1D(3, 4, strides=2, name="conv1d")(x)
    out = keras.layers.Dense(2, name="out")(keras.layers.Flatten(name="flat")(x))
    model = keras.Model(inp, out, name="bn_before_convs")
    randomize_batchnorm(model)
    return model
