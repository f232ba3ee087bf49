"""Legacy model files: Keras 2 JSON + weights, Keras 2 full-model .h5, QKeras 0.9 JSON.

The oracle is tf_keras (the Keras 2 implementation): it loads the same files,
and the model qconvert loads must compute the same outputs. Fixtures are
written by tests/fixtures/make_keras2_fixtures.py.
"""

import importlib.util
import json
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from kit import run_cli as run

import qconvert
from qconvert.model.load import find_weights, resolve_custom_objects

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SIX_BIT = ROOT / "rules" / "6bit.yaml"
NAMES = ["jet_bn", "branches", "conv1d", "conv2d", "nested", "embed_bilstm", "gru", "embed_lstm"]
FILES = [f"keras2/json/{n}.json" for n in NAMES] + [f"keras2/json_old/{n}.json" for n in NAMES] + [
    f"keras2/h5/{n}.h5" for n in NAMES
] + [f"keras2/keras215/{n}.keras" for n in ("branches", "nested", "embed_bilstm", "gru")]
WEIGHTED = ("Dense", "Conv1D", "Conv2D", "SimpleRNN", "LSTM", "GRU")



def assert_clean_error(result, *needles):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("qconvert: error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def tf_keras_model(path: Path):
    """The same file loaded by Keras 2 itself."""
    tf_keras = pytest.importorskip("tf_keras")
    if path.suffix == ".json":
        from tf_keras.src.saving.serialization_lib import SafeModeScope

        with SafeModeScope(False):  # only the trusted lambda fixture needs it
            model = tf_keras.models.model_from_json(path.read_text())
        model.load_weights(str(find_weights(path)))
        return model
    if path.suffix == ".keras":  # a Keras 2.15 archive: tf_keras reads the .h5 the same model was saved to
        path = path.parent.parent / "h5" / f"{path.stem}.h5"
    return tf_keras.models.load_model(path, compile=False)


def random_input(shape, n=16, seed=0, vocabulary=None):
    """Normal floats, or token ids below ``vocabulary`` for a model that starts with an Embedding."""
    rng = np.random.default_rng(seed)
    if vocabulary is not None:
        return rng.integers(0, vocabulary, size=(n, *shape[1:])).astype("int32")
    return rng.normal(0, 1, size=(n, *shape[1:])).astype("float32")


def vocabulary(model):
    embeddings = [layer for layer in model.layers if type(layer).__name__ == "Embedding"]
    return embeddings[0].input_dim if embeddings else None


@pytest.mark.parametrize("name", FILES)
def test_keras2_fixture_loads_equal_to_tf_keras_and_converts(name):
    path = FIXTURES / name
    reference = tf_keras_model(path)
    x = random_input(reference.input_shape, vocabulary=vocabulary(reference))
    expected = reference(x, training=False).numpy()
    model = qconvert.load_model(path)
    assert isinstance(model, keras.Model)
    got = np.asarray(model(x))
    assert got.shape == expected.shape  # one tensor in, one out, as in Keras 2
    assert np.max(np.abs(got - expected)) <= 1e-5
    qmodel, _ = qconvert.convert(model, SIX_BIT)
    wrapped = {id(inner) for layer in qmodel._flatten_layers() if type(layer).__name__ == "Bidirectional"
               for inner in layer._flatten_layers(include_self=False)}  # stays float, with its RNNs (a note says so)
    layers = {type(l).__name__ for l in qmodel._flatten_layers() if id(l) not in wrapped}
    assert not layers & set(WEIGHTED), layers  # every weighted layer became a Q-layer
    assert layers & {"QDense", "QConv1D", "QConv2D"}
    assert np.all(np.isfinite(np.asarray(qmodel(x))))


def test_json_forms_give_the_same_model():
    """Keras 2.2's bare-list Sequential, TF 2.2–2.12's 'Model' and TF 2.13+'s 'Functional' load alike."""
    for name in ("jet_bn", "branches"):
        new, old, h5 = (qconvert.load_model(FIXTURES / f"keras2/{form}/{name}{ext}")
                        for form, ext in (("json", ".json"), ("json_old", ".json"), ("h5", ".h5")))
        x = random_input(new.inputs[0].shape, seed=1)
        np.testing.assert_array_equal(np.asarray(new(x)), np.asarray(old(x)))
        np.testing.assert_array_equal(np.asarray(new(x)), np.asarray(h5(x)))


def _quantizer_layers(config):
    """{layer name: layer config} of the Q-layers in a QKeras 0.9 JSON."""
    return {entry["config"]["name"]: (entry["class_name"], entry["config"])
            for entry in config["config"]["layers"] if entry["class_name"].startswith("Q")}


def _same_quantizer(quantizer, written):
    """A qkeras-v3 quantizer object against its QKeras 0.9 serialization (dict or text)."""
    if isinstance(written, str):  # QKeras 0.9 kept text as the user wrote it
        from qkeras.utils import get_quantizer

        written = {"class_name": written.split("(")[0], "config": get_quantizer(written).get_config()}
    assert type(quantizer).__name__ == written["class_name"]
    config = quantizer.get_config()
    for key, value in written["config"].items():
        assert config[key] == value, (key, config[key], value)


@pytest.mark.parametrize("name", ["jet_6bit.json", "qconv.json", "jet_6bit.h5"])
def test_qkeras09_model_loads_as_qkeras_v3_with_the_same_quantizers(name):
    """QKeras 0.9 JSON + weights, and a QKeras 0.9 full-model .h5 (its ``model_config`` attribute)."""
    path = FIXTURES / "qkeras2" / name
    if path.suffix == ".h5":
        with h5py.File(path) as fh:
            written = _quantizer_layers(json.loads(fh.attrs["model_config"]))
    else:
        written = _quantizer_layers(json.loads(path.read_text()))
    model = qconvert.load_model(path)
    import qkeras

    assert written
    for layer_name, (class_name, config) in written.items():
        layer = model.get_layer(layer_name)
        assert type(layer) is getattr(qkeras, class_name)
        if class_name == "QActivation":
            _same_quantizer(layer.activation, config["activation"])
            continue
        _same_quantizer(layer.kernel_quantizer_internal, config["kernel_quantizer"])
        _same_quantizer(layer.bias_quantizer_internal, config["bias_quantizer"])
        assert type(layer.kernel_constraint).__name__ == "Clip"
        assert layer.kernel_constraint.max_value == config["kernel_constraint"]["config"]["max_value"]
        with h5py.File(find_weights(path) if path.suffix == ".json" else path) as fh:  # weights by layer name
            group = fh.get("model_weights", fh)
            np.testing.assert_array_equal(np.asarray(layer.kernel), group[layer_name][layer_name]["kernel:0"][()])
    x = random_input(model.inputs[0].shape)
    assert np.all(np.isfinite(np.asarray(model(x))))
    qmodel, _ = qconvert.convert(model, SIX_BIT)  # already QKeras: converts without error
    assert type(qmodel.get_layer(next(iter(written)))).__name__.startswith("Q")


def test_qkeras09_auto_po2_keeps_its_qinitializer():
    model = qconvert.load_model(FIXTURES / "qkeras2" / "qconv.json")
    layer = model.get_layer("qconv1")
    assert type(layer.kernel_initializer).__name__ == "QInitializer"
    assert layer.kernel_quantizer_internal.alpha == "auto_po2"


def test_cli_converts_json_with_weights_beside_it(tmp_path):
    out = tmp_path / "jet.keras"
    result = run(FIXTURES / "keras2/json/jet_bn.json", "--rules", SIX_BIT, "-o", out)
    assert result.exit_code == 0, result.output
    assert qconvert.read_provenance(out)["input"]["path"].endswith("jet_bn.json")
    assert type(qconvert.load_model(out).get_layer("fc1")).__name__ == "QDense"


def test_cli_weights_option(tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text((FIXTURES / "keras2/json/conv1d.json").read_text())
    assert_clean_error(run(arch, "--rules", SIX_BIT, "-o", tmp_path / "o.keras"), "no weights file", "--weights")
    result = run(arch, "--rules", SIX_BIT, "-o", tmp_path / "o.keras", "--weights",
                 FIXTURES / "keras2/json/conv1d_weights.h5")
    assert result.exit_code == 0, result.output


def test_custom_layer_is_refused_by_name_and_file_then_supplied(tmp_path, monkeypatch):
    path = FIXTURES / "special" / "binary_dense.json"
    assert_clean_error(run(path, "--rules", SIX_BIT, "-o", tmp_path / "o.keras"), "BinaryDense", str(path),
                       "--custom-objects")
    module = FIXTURES / "special" / "binary_layers.py"
    result = run(path, "--rules", SIX_BIT, "-o", tmp_path / "o.keras", "--custom-objects", f"{module}:BinaryDense")
    assert result.exit_code == 0, result.output
    monkeypatch.syspath_prepend(str(module.parent))  # the module:attr spelling
    model = qconvert.load_model(path, custom_objects=resolve_custom_objects(["binary_layers:BinaryDense"]))
    assert type(model.get_layer("bd1")).__name__ == "BinaryDense" and model.get_layer("bd1").H == 1.0
    bad = run(path, "--rules", SIX_BIT, "-o", tmp_path / "o.keras", "--custom-objects", "no_such_module:X")
    assert_clean_error(bad, "no_such_module")


@pytest.mark.parametrize("name", ["lambda.json", "lambda.h5"])
def test_lambda_is_refused_unless_unsafe(tmp_path, name):
    path = FIXTURES / "special" / name
    assert_clean_error(run(path, "--rules", SIX_BIT, "-o", tmp_path / "o.keras"), "Lambda", "--unsafe", str(path))
    assert_clean_error(run("rules", "show", path, "--rules", SIX_BIT), "Lambda")
    reference = tf_keras_model(path)
    x = random_input(reference.input_shape)
    model = qconvert.load_model(path, safe_mode=False)
    assert np.max(np.abs(np.asarray(model(x)) - reference(x).numpy())) <= 1e-5
    result = run(path, "--rules", SIX_BIT, "-o", tmp_path / "o.keras", "--unsafe")
    assert result.exit_code == 0, result.output
    # the converted model keeps its Lambda: refused in safe mode, computed when the user trusts it
    assert_clean_error(run(tmp_path / "o.keras", "--rules", SIX_BIT, "-o", tmp_path / "again.keras"), "--unsafe")
    converted = qconvert.load_model(tmp_path / "o.keras", safe_mode=False)
    assert any(type(layer).__name__ == "Lambda" for layer in converted.layers)
    assert np.all(np.isfinite(np.asarray(converted(x))))


def _copy_json(tmp_path, name="jet_bn"):
    arch = tmp_path / f"{name}.json"
    arch.write_text((FIXTURES / f"keras2/json/{name}.json").read_text())
    weights = tmp_path / f"{name}_weights.h5"
    weights.write_bytes((FIXTURES / f"keras2/json/{name}_weights.h5").read_bytes())
    return arch, weights


def test_weights_missing_for_a_layer(tmp_path):
    arch, weights = _copy_json(tmp_path)
    with h5py.File(weights, "r+") as fh:
        names = [n for n in fh.attrs["layer_names"] if n != b"fc2" and n != "fc2"]
        fh.attrs["layer_names"] = names
    with pytest.raises(qconvert.ModelLoadError, match=r"jet_bn_weights.h5: no weights for layer 'fc2'"):
        qconvert.load_model(arch)


def test_weights_of_another_model(tmp_path):
    arch, _ = _copy_json(tmp_path)
    with pytest.raises(qconvert.ModelLoadError, match="no weights for layer 'fc1'"):
        qconvert.load_model(arch, weights=FIXTURES / "keras2/json/conv1d_weights.h5")


def test_weight_shape_mismatch(tmp_path):
    arch, weights = _copy_json(tmp_path)
    with h5py.File(weights, "r+") as fh:
        del fh["fc2/fc2/kernel:0"]
        fh["fc2/fc2/kernel:0"] = np.zeros((32, 17), "float32")
    with pytest.raises(qconvert.ModelLoadError, match=r"layer 'fc2': weight 'kernel' has shape \(32, 17\) in the file, "
                                                      r"\(32, 16\) in the architecture"):
        qconvert.load_model(arch)


def test_keras3_custom_class_in_keras_archive_is_named(tmp_path):
    @keras.saving.register_keras_serializable("qconvert_tests")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inp = keras.Input((3,))
    path = tmp_path / "custom.keras"
    keras.Model(inp, Doubler()(inp)).save(path)
    del keras.saving.get_custom_objects()["qconvert_tests>Doubler"]
    with pytest.raises(qconvert.ModelLoadError, match="'Doubler' is defined by neither Keras nor QKeras"):
        qconvert.load_model(path)


def test_fixture_generator_runs_and_matches_the_committed_architectures(tmp_path):
    """The generator is runnable; it writes the same files (architectures byte for byte, weights by value)."""
    pytest.importorskip("tf_keras")
    spec = importlib.util.spec_from_file_location("make_keras2_fixtures", FIXTURES / "make_keras2_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_all(tmp_path)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*")
                       if p.suffix in (".json", ".h5", ".keras"))
    assert written == committed
    for rel in written:
        if rel.endswith(".json") and "lambda" not in rel:  # a lambda's bytecode holds its line number
            assert (tmp_path / rel).read_text() == (FIXTURES / rel).read_text(), rel
    with h5py.File(tmp_path / "keras2/json/branches_weights.h5") as a, \
            h5py.File(FIXTURES / "keras2/json/branches_weights.h5") as b:
        np.testing.assert_array_equal(a["stem/stem/kernel:0"][()], b["stem/stem/kernel:0"][()])
    assert sum((FIXTURES / rel).stat().st_size for rel in committed) < 1_000_000  # fixtures stay small


def _jet_6bit_with_clip(tmp_path, **extra):
    """The QKeras 0.9 jet fixture with ``extra`` keys in fc1's kernel Clip constraint."""
    config = json.loads((FIXTURES / "qkeras2" / "jet_6bit.json").read_text())
    layer = next(entry for entry in config["config"]["layers"] if entry["config"]["name"] == "fc1")
    layer["config"]["kernel_constraint"]["config"].update(extra)
    path = tmp_path / "jet_6bit.json"
    path.write_text(json.dumps(config))
    (tmp_path / "jet_6bit_weights.h5").write_bytes((FIXTURES / "qkeras2" / "jet_6bit_weights.h5").read_bytes())
    return path


def test_clip_keeps_its_inner_quantizer(tmp_path):
    quantizer = {"class_name": "quantized_bits", "config": {"bits": 4, "integer": 0, "symmetric": 0, "keep_negative": True,
                                                            "alpha": 1}}
    model = qconvert.load_model(_jet_6bit_with_clip(tmp_path, quantizer=quantizer))
    clip = model.get_layer("fc1").kernel_constraint
    assert type(clip).__name__ == "Clip" and clip.quantizer is not None and clip.quantizer.bits == 4


def test_clip_with_keys_qkeras_does_not_know_is_refused_not_dropped(tmp_path):
    path = _jet_6bit_with_clip(tmp_path, step=0.5)
    assert_clean_error(run(path, "--rules", SIX_BIT, "-o", tmp_path / "o.keras"), "Clip", "step", "fc1")
