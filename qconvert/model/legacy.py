"""Keras 2 and QKeras 0.9 model configs → Keras 3 and qkeras-v3 configs.

Pure functions, dict in → dict out: nothing here imports Keras, nothing is
evaluated. The input is what Keras 2's ``model.to_json()`` wrote (and what a
Keras 2 ``.h5`` file keeps in its ``model_config`` attribute): the ``Model`` /
``Functional`` / ``Sequential`` forms (Sequential also as the bare list of
Keras 2.2), ``batch_input_shape``, inbound nodes as nested lists, Keras 2
spellings of initializers and arguments, and QKeras 0.9 layers with their
quantizers serialized as ``{"class_name": "quantized_bits", "config": {...}}``
or written as text, ``"quantized_relu(6)"`` (parsed as literals, never run).

The output is what ``keras.saving.deserialize_keras_object`` takes. Every
difference the translation knows is in an explicit table of
:mod:`.legacy_tables`; what it cannot translate raises
:class:`LegacyConfigError` with a one-line reason naming the layer. Which class names Keras, QKeras or the user define is the caller's to
say (``classify``), so this module stays free of imports.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ..quantizers import QuantizerSyntaxError, parse_quantizer
from .legacy_tables import (
    ACTIVATION_QUANTIZER_LAYERS,
    ANY,
    DROPPED_ARGS,
    DROPPED_QUANTIZER_ARGS,
    KEPT_ARGS,
    MODEL_CLASSES,
    QKERAS_LAYERS,
    QKERAS_OBJECTS,
    QUANTIZER_ARGS,
    QUANTIZER_KEY_SUFFIX,
    RENAMED_ARGS,
    RENAMED_LAYERS,
    SCALAR_AXIS,
    VARIANCE_SCALING_DISTRIBUTIONS,
    WRAPPED_LAYER_KEYS,
)

__all__ = [
    "DROPPED_ARGS",
    "KEPT_ARGS",
    "MODEL_CLASSES",
    "QKERAS_LAYERS",
    "QKERAS_OBJECTS",
    "QUANTIZER_ARGS",
    "RENAMED_ARGS",
    "RENAMED_LAYERS",
    "LegacyConfigError",
    "Origin",
    "is_legacy_config",
    "translate_model",
    "translate_quantizer",
]

Origin = Literal["keras", "qkeras", "custom"]
Classify = Callable[[str], "Origin | None"]


class LegacyConfigError(ValueError):
    """The Keras 2 config cannot be translated; the message says which layer and why."""


# --- the model ------------------------------------------------------------------
def is_legacy_config(config: Any) -> bool:
    """Whether ``config`` looks like a Keras 2 model config (``model.to_json()``)."""
    return isinstance(config, Mapping) and config.get("class_name") in MODEL_CLASSES and "config" in config


def translate_model(config: Mapping[str, Any], classify: Classify, *, safe_mode: bool = True) -> dict[str, Any]:
    """The Keras 3 config of a Keras 2 model config. ``config`` is not changed.

    ``classify(class_name)`` says who defines a layer class: ``"keras"``,
    ``"qkeras"``, ``"custom"`` (supplied by the user) or None (nobody: an error
    naming the class). In ``safe_mode`` a Lambda layer is refused.
    """
    return _Translator(classify, safe_mode).model(copy.deepcopy(dict(config)))


class _Translator:
    def __init__(self, classify: Classify, safe_mode: bool) -> None:
        self.classify = classify
        self.safe_mode = safe_mode

    def model(self, config: dict[str, Any]) -> dict[str, Any]:
        if not is_legacy_config(config):
            raise LegacyConfigError("not a Keras model config: expected {'class_name': 'Sequential' | 'Model' | 'Functional', 'config': ...}")
        module, class_name = MODEL_CLASSES[config["class_name"]]
        inner = self.sequential(config["config"]) if class_name == "Sequential" else self.functional(config["config"])
        return {"module": module, "class_name": class_name, "config": inner, "registered_name": None}

    def sequential(self, config: Any) -> dict[str, Any]:
        if isinstance(config, list):  # Keras 2.2: the bare list of layers
            config = {"name": "sequential", "layers": config}
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise LegacyConfigError("Sequential config has no list of layers")
        layers = [self.layer(layer) for layer in config["layers"]]
        first = config["layers"][0] if config["layers"] else None
        if first is not None and first.get("class_name") != "InputLayer":
            shape = (first.get("config") or {}).get("batch_input_shape")
            takes_dim = "input_dim" not in KEPT_ARGS.get(first.get("class_name", ""), ())  # Embedding: a vocabulary
            if shape is None and takes_dim and (first.get("config") or {}).get("input_dim") is not None:
                shape = [None, first["config"]["input_dim"]]
            if shape is not None:
                name = f"{first['config'].get('name', 'layer')}_input"
                dtype = first["config"].get("dtype", "float32")
                layers.insert(0, _keras_layer("InputLayer", {"batch_shape": list(shape), "dtype": _dtype(dtype), "name": name}))
        out = {"name": config.get("name", "sequential"), "layers": layers}
        if "trainable" in config:
            out["trainable"] = config["trainable"]
        return out

    def functional(self, config: Any) -> dict[str, Any]:
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
            raise LegacyConfigError("Model config has no list of layers")
        # Keras 2 counted a nested model's own first node (input → output) when it starts
        # with an InputLayer, so calls of it are numbered from 1; Keras 3 numbers them from 0.
        skip_first = {entry.get("name") for entry in config["layers"] if _starts_with_input(entry)}
        layers = []
        for entry in config["layers"]:
            translated = self.layer(entry)
            translated["name"] = entry.get("name", translated["config"].get("name"))
            translated["inbound_nodes"] = [_node(node, skip_first) for node in entry.get("inbound_nodes", [])]
            layers.append(translated)
        out = {
            "name": config.get("name", "model"),
            "layers": layers,
            "input_layers": _endpoints(config.get("input_layers", [])),
            "output_layers": _endpoints(config.get("output_layers", [])),
        }
        if "trainable" in config:
            out["trainable"] = config["trainable"]
        return out

    def layer(self, entry: Any) -> dict[str, Any]:
        if not isinstance(entry, dict) or "class_name" not in entry:
            raise LegacyConfigError(f"a layer entry is not a {{'class_name': ..., 'config': ...}} mapping: {str(entry)[:80]}")
        class_name = RENAMED_LAYERS.get(entry["class_name"], entry["class_name"])
        config = entry.get("config")
        name = config.get("name", "?") if isinstance(config, dict) else entry.get("name", "?")
        if class_name in MODEL_CLASSES:  # a nested model
            return self.model({"class_name": class_name, "config": config})
        if not isinstance(config, dict):
            raise LegacyConfigError(f"layer {name!r} ({class_name}): config is not a mapping")
        if class_name == "Lambda":
            return _keras_layer("Lambda", self.lambda_config(name, config))
        if class_name == "TFOpLambda":
            raise LegacyConfigError(
                f"layer {name!r} is a TFOpLambda (a TensorFlow op called on Keras tensors, {config.get('function')!r}); "
                "Keras 3 has no equivalent: rebuild the model with Keras layers"
            )
        origin = self.classify(class_name)
        if origin is None:
            raise LegacyConfigError(
                f"layer {name!r} is of class {class_name!r}, which neither Keras nor QKeras defines; "
                "supply it with --custom-objects module:attr"
            )
        config = self.arguments(class_name, name, config)
        if origin == "qkeras" or (class_name in QKERAS_LAYERS and origin != "custom"):
            config = self.qkeras_arguments(class_name, name, config)
            return {"module": "qkeras", "class_name": class_name, "config": config, "registered_name": f"qkeras>{class_name}"}
        if origin == "custom":
            return {"module": None, "class_name": class_name, "config": config, "registered_name": class_name}
        return _keras_layer(class_name, config)

    def arguments(self, class_name: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        renamed = RENAMED_ARGS.get(class_name, {})
        dropped = DROPPED_ARGS.get("*", {}) | DROPPED_ARGS.get(class_name, {})
        kept = KEPT_ARGS.get(class_name, frozenset()) | (set(renamed) if class_name == "InputLayer" else set())
        dropped = {k: v for k, v in dropped.items() if k not in kept}
        wrapped = WRAPPED_LAYER_KEYS.get(class_name, ())
        for key, value in config.items():
            key = renamed.get(key, key)
            if key in wrapped and value is not None:
                out[key] = self.layer(value)
                continue
            if key in dropped:
                neutral = dropped[key]
                if neutral is ANY or value == neutral:
                    continue
                raise LegacyConfigError(f"layer {name!r} ({class_name}): {key}={value!r} has no Keras 3 equivalent")
            out[key] = self.value(key, value, name)
        if class_name in SCALAR_AXIS and isinstance(out.get("axis"), list):
            if len(out["axis"]) != 1:
                raise LegacyConfigError(f"layer {name!r} ({class_name}): axis={out['axis']!r}; Keras 3 takes one axis")
            out["axis"] = out["axis"][0]
        if "dtype" in out:
            out["dtype"] = _dtype(out["dtype"])
        return out

    def value(self, key: str, value: Any, layer: str) -> Any:
        """Initializers, regularizers, constraints: nested serialized objects."""
        if isinstance(value, dict) and "class_name" in value and "config" in value:
            return self.serialized_object(key, value, layer)
        return value

    def serialized_object(self, key: str, value: dict[str, Any], layer: str) -> dict[str, Any]:
        class_name = value["class_name"]
        config = value["config"] if isinstance(value["config"], dict) else {}
        if class_name in QUANTIZER_ARGS:
            return translate_quantizer(value, where=f"layer {layer!r}: {key}")
        if class_name == "QInitializer":
            inner = dict(config)
            inner["initializer"] = self.value("initializer", inner.get("initializer"), layer)
            if inner.get("quantizer") is not None:
                inner["quantizer"] = self.quantizer(inner["quantizer"], f"layer {layer!r}: {key}.quantizer", "weight")
            return _qkeras_object("QInitializer", inner)
        if class_name == "Clip":  # QKeras's constraint: bounds, plus an optional inner constraint and quantizer
            unknown = sorted(set(config) - {"min_value", "max_value", "constraint", "quantizer"})
            if unknown:
                raise LegacyConfigError(f"layer {layer!r}: {key}: Clip with unknown key(s) {', '.join(unknown)}")
            inner = {k: config[k] for k in ("min_value", "max_value") if k in config}
            if config.get("constraint") is not None:
                inner["constraint"] = self.value("constraint", config["constraint"], layer)
            if config.get("quantizer") is not None:
                inner["quantizer"] = self.quantizer(config["quantizer"], f"layer {layer!r}: {key}.quantizer", "weight")
            return _qkeras_object("Clip", inner)
        config = {k: v for k, v in config.items() if k != "dtype"}  # Keras 2 initializers kept a dtype
        if class_name == "VarianceScaling" and config.get("distribution") in VARIANCE_SCALING_DISTRIBUTIONS:
            config["distribution"] = VARIANCE_SCALING_DISTRIBUTIONS[config["distribution"]]
        if class_name == "Policy":  # a dtype policy
            return config.get("name", "float32")
        return {"class_name": class_name, "config": {k: self.value(k, v, layer) for k, v in config.items()}}

    def qkeras_arguments(self, class_name: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
        """QKeras 0.9 quantizers, text or serialized → qkeras-v3 serialized quantizers."""
        out = dict(config)
        for key, value in config.items():
            if key.endswith(QUANTIZER_KEY_SUFFIX) and value is not None:
                role = "activation" if key == "activation_quantizer" else "weight"
                out[key] = self.quantizer(value, f"layer {name!r}: {key}", role)
        if class_name in ACTIVATION_QUANTIZER_LAYERS and isinstance(out.get("activation"), (str, dict)):
            activation = out["activation"]
            if isinstance(activation, dict) or "(" in activation or activation in QUANTIZER_ARGS:
                out["activation"] = self.quantizer(activation, f"layer {name!r}: activation", "activation")
        return out

    def quantizer(self, value: Any, where: str, role: str) -> Any:
        if isinstance(value, dict):
            return translate_quantizer(value, where=where)
        if isinstance(value, str):
            try:
                spec = parse_quantizer(value, role)
            except QuantizerSyntaxError as exc:
                raise LegacyConfigError(f"{where}: {exc}") from None
            if spec.is_float:
                return None
            return translate_quantizer({"class_name": spec.name, "config": dict(spec.params)}, where=where)
        raise LegacyConfigError(f"{where}: cannot read quantizer {value!r}")

    def lambda_config(self, name: str, config: dict[str, Any]) -> dict[str, Any]:
        if self.safe_mode:
            raise LegacyConfigError(
                f"layer {name!r} is a Lambda layer: its Python code would run on loading, which safe mode refuses; "
                "pass --unsafe (Python: safe_mode=False) only if you trust the file"
            )
        out = {k: v for k, v in config.items()
               if k not in ("function_type", "output_shape_type", "output_shape_module", "module", "batch_input_shape")}
        out["function"] = _lambda_function(name, config.get("function"), config.get("function_type"))
        if config.get("output_shape_type") == "lambda":
            out["output_shape"] = _lambda_function(name, config.get("output_shape"), "lambda")
        if "dtype" in out:
            out["dtype"] = _dtype(out["dtype"])
        return out


def translate_quantizer(value: Mapping[str, Any], *, where: str = "quantizer") -> dict[str, Any]:
    """``{"class_name": "quantized_bits", "config": {...}}`` (QKeras 0.9) → the qkeras-v3 serialized form."""
    name = value.get("class_name")
    allowed = QUANTIZER_ARGS.get(name)  # type: ignore[arg-type]
    if allowed is None:
        raise LegacyConfigError(f"{where}: unknown QKeras quantizer {name!r}; known: {', '.join(sorted(QUANTIZER_ARGS))}")
    config = dict(value.get("config") or {})
    out: dict[str, Any] = {}
    for key, arg in config.items():
        if key in allowed:
            out[key] = arg
        elif key in DROPPED_QUANTIZER_ARGS and arg == DROPPED_QUANTIZER_ARGS[key]:
            continue
        else:
            raise LegacyConfigError(f"{where}: {name} has no argument {key!r} in qkeras-v3")
    return {"module": "qkeras.quantizers", "class_name": name, "config": out, "registered_name": f"qkeras>{name}"}


def _keras_layer(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": None}


def _qkeras_object(class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"module": "qkeras", "class_name": class_name, "config": config, "registered_name": f"qkeras>{class_name}"}


def _dtype(value: Any) -> Any:
    if isinstance(value, dict) and value.get("class_name") in ("Policy", "DTypePolicy"):
        return (value.get("config") or {}).get("name", "float32")
    return value


def _endpoints(value: Any) -> Any:
    """Keras 2 wrote one input (output) as a list of one ``[name, node, tensor]``; Keras 3 writes it bare,
    and a list of one would make the model take (return) a list instead of a tensor, as Keras 2 did not."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        return value[0]
    return value


def _starts_with_input(entry: Any) -> bool:
    """A nested model whose first layer is an InputLayer (Keras 2's ``_should_skip_first_node``)."""
    if not isinstance(entry, dict) or entry.get("class_name") not in MODEL_CLASSES:
        return False
    config = entry.get("config")
    layers = config.get("layers") if isinstance(config, dict) else config
    return bool(layers) and isinstance(layers[0], dict) and layers[0].get("class_name") == "InputLayer"


def _node(node: Any, skip_first: set[Any]) -> Any:
    """A Keras 2 inbound node (a list of ``[layer, node_index, tensor_index, kwargs]``) in the form Keras 3 reads."""
    if isinstance(node, dict):  # already the Keras 3 form
        return node
    if not isinstance(node, list):
        raise LegacyConfigError(f"cannot read inbound node {str(node)[:80]}")
    out = []
    for item in node:
        if not isinstance(item, list) or len(item) not in (3, 4) or not isinstance(item[1], int):
            raise LegacyConfigError(f"cannot read inbound node entry {str(item)[:80]}")
        index = item[1] - 1 if item[0] in skip_first and item[1] > 0 else item[1]
        out.append([item[0], index, item[2], dict(item[3]) if len(item) == 4 and item[3] else {}])
    return out


def _lambda_function(name: str, function: Any, function_type: Any) -> Any:
    if function_type == "lambda" and isinstance(function, (list, tuple)) and len(function) == 3:
        code, defaults, closure = function
        return {"class_name": "__lambda__", "config": {"code": code, "defaults": defaults, "closure": closure}}
    if function_type == "function" and isinstance(function, str):
        return function  # a function registered by name (custom objects)
    raise LegacyConfigError(f"layer {name!r} (Lambda): cannot read its function ({function_type!r})")
