"""The layer graph read from a model's nodes: run with the model's own layers, it computes what the model computes."""

import keras
import numpy as np
import pytest
from models import branching_bn, conv1d_families, conv2d_families, nested_shared, seed_fp32

from qconvert.model.graph import TensorRef, graph_of, run


def shared_with_another_model() -> keras.Model:
    """A Dense first called in a model of its own (a node this one does not own), then twice in this one."""
    dense = keras.layers.Dense(5, activation="tanh", name="shared")
    first = keras.Input((5,), name="elsewhere")
    keras.Model(first, dense(first))
    inp = keras.Input((5,), name="x")
    y = dense(inp)
    y = keras.layers.ReLU(name="relu")(y)
    out = dense(y)
    return keras.Model(inp, out, name="shared_elsewhere")


def nested_output_twice() -> keras.Model:
    """A functional model nested twice, the second call giving the model's output."""
    i = keras.Input((4,), name="inner_in")
    inner = keras.Model(i, keras.layers.Dense(4, activation="relu", name="inner_fc")(i), name="inner")
    inp = keras.Input((4,), name="x")
    return keras.Model(inp, inner(inner(inp)), name="nested_out")


def two_in_two_out() -> keras.Model:
    """Two inputs, a keyword-argument call (attention's query and value), two outputs."""
    a = keras.Input((3, 4), name="a")
    b = keras.Input((3, 4), name="b")
    att = keras.layers.MultiHeadAttention(num_heads=2, key_dim=2, name="mha")(query=a, value=b)
    flat = keras.layers.Flatten(name="flat")(keras.layers.Add(name="add")([att, a]))
    return keras.Model([a, b], [keras.layers.Dense(2, name="head1")(flat), keras.layers.Dense(1, name="head2")(flat)],
                       name="two_in_two_out")


BUILDERS = [seed_fp32, branching_bn, conv2d_families, conv1d_families, nested_shared, shared_with_another_model,
            nested_output_twice, two_in_two_out]


def _interpret(model: keras.Model, inputs: list[np.ndarray]):
    def call(c, args, kwargs):
        return model.get_layer(c.layer)(*args, **kwargs)

    return run(graph_of(model), inputs, call)


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_running_the_graph_computes_the_model(build):
    model = build()
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(3, *t.shape[1:])).astype("float32") for t in model.inputs]
    want = model(inputs if len(inputs) > 1 else inputs[0])
    got = _interpret(model, inputs)
    want, got = (want, got) if isinstance(want, (list, tuple)) else ([want], [got])
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=1e-7)


def test_calls_of_a_shared_layer_are_numbered_within_the_model():
    graph = graph_of(shared_with_another_model())
    calls = graph.calls_of("shared")
    assert [c.node for c in calls] == [0, 1]
    assert calls[0].args == (TensorRef("x"),) and calls[1].args == (TensorRef("relu"),)
    assert graph.outputs == TensorRef("shared", 1) and graph.inputs == (TensorRef("x"),)


def test_a_sequential_model_is_a_chain_from_its_input_layer():
    model = seed_fp32()
    graph = graph_of(model)
    assert graph.sequential and graph.inputs == (TensorRef(model._layers[0].name),)
    assert [c.layer for c in graph.calls] == ["fc1", "fc2", "fc3", "output"]
    assert graph.input_shapes == ((16,),) and graph.input_dtypes == ("float32",)


def test_keyword_tensors_and_input_shapes_are_kept():
    graph = graph_of(two_in_two_out())
    (mha,) = graph.calls_of("mha")
    assert mha.args == () and mha.kwargs["query"] == TensorRef("a") and mha.kwargs["value"] == TensorRef("b")
    assert graph.input_shapes == ((3, 4), (3, 4)) and graph.outputs == [TensorRef("head1"), TensorRef("head2")]
