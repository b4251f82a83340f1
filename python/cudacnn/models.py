"""Functional ``Model`` (a DAG of layers) and ``Sequential``; configs and weights by name.

A model is itself a layer, so models nest (``Sequential([base, Flatten(), Dense(10)])``).
Graph nodes are the symbolic tensors recorded when layers were called; each layer
may appear once per model (no shared layers). Backward walks the nodes in reverse
order, summing gradients where one tensor feeds several layers, and skips the part
of the graph below the last trainable layer.
"""
from __future__ import annotations

import numpy as np

from . import backend
from .layers.base import InputLayer, Input, Layer, SymbolicTensor, trusted_input
from .ops import _validate as check
from .summary import print_summary
from .training import TrainingMixin


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


class Model(TrainingMixin, Layer):
    """``Model(inputs, outputs)``: the functional API."""

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self.inputs, self.outputs, self._nodes, self._layers = [], [], [], []
        self._init_training()
        if inputs is not None or outputs is not None:
            if inputs is None or outputs is None:
                raise ValueError("Model needs both inputs and outputs")
            self._init_graph(inputs, outputs)

    # ----- graph ----------------------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        inputs, outputs = _as_list(inputs), _as_list(outputs)
        if not inputs or not outputs:
            raise ValueError(f"a Model needs at least one input and one output, got {len(inputs)} and {len(outputs)}")
        for t in (*inputs, *outputs):
            if not isinstance(t, SymbolicTensor):
                raise TypeError(f"Model inputs and outputs must be symbolic tensors (from Input or a layer "
                                f"call), got {type(t).__name__}")
        for t in inputs:
            if not isinstance(t.layer, InputLayer):
                raise ValueError(f"model inputs must come from Input(...), got a tensor from {t.layer.name!r}")
        input_ids = {id(t) for t in inputs}
        order, seen, stack = [], set(), [(t, False) for t in reversed(outputs)]
        while stack:  # iterative post-order DFS: producers before consumers
            tensor, expanded = stack.pop()
            if expanded:
                order.append(tensor)
                continue
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            stack.append((tensor, True))
            if id(tensor) in input_ids:
                continue
            if isinstance(tensor.layer, InputLayer):
                raise ValueError(f"graph disconnected: it needs input {tensor.layer.name!r}, "
                                 f"which is not among the model inputs")
            stack.extend((p, False) for p in reversed(tensor.inputs))
        nodes = [t for t in order if id(t) not in input_ids]
        used = {}
        for t in nodes:
            if id(t.layer) in used:
                raise ValueError(f"layer {t.layer.name!r} is used twice in one model; shared layers are "
                                 "not supported (create a second layer)")
            used[id(t.layer)] = t
        names = [t.layer.name for t in (*inputs, *nodes)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"layer names must be unique within a model, repeated: {duplicates}")
        _check_leaf_names(t.layer for t in (*inputs, *nodes))
        self.inputs, self.outputs, self._nodes = inputs, outputs, nodes
        self._layers = [t.layer for t in inputs] + [t.layer for t in nodes]
        self.built = True
        in_shapes = [t.shape[1:] for t in inputs]
        self.input_shape = inputs[0].shape if self._single_input else [t.shape for t in inputs]
        self.output_shape = outputs[0].shape if self._single_output else [t.shape for t in outputs]
        self._graph_input_shapes = in_shapes

    @property
    def layers(self):
        return list(self._layers)

    @property
    def input(self):
        self._require_inputs("input")
        return self.inputs[0] if self._single_input else list(self.inputs)

    @property
    def output(self):
        self._require_inputs("output")
        return self.outputs[0] if self._single_output else list(self.outputs)

    def _require_inputs(self, what):
        if not self.inputs:
            raise AttributeError(f"model {self.name!r} has no {what} yet: it is built on the first data it "
                                 "sees; give its first layer input_shape=, or call model.build(input_shape)")

    def get_layer(self, name=None, index=None):
        if index is not None:
            layers = self.layers
            if not check.is_int(index) or not -len(layers) <= index < len(layers):
                raise ValueError(f"layer index {index!r} is out of range for {len(layers)} layers")
            return layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"no layer named {name!r}; layers are {[l.name for l in self.layers]}")

    def leaf_layers(self):
        """Every non-model layer, nested models expanded, in model order."""
        leaves = []
        for layer in self.layers:
            leaves.extend(layer.leaf_layers() if isinstance(layer, Model) else [layer])
        return leaves

    # ----- Layer interface (so models nest) --------------------------------------------------
    @property
    def trainable(self):
        """Setting it sets every layer inside, as Keras. Afterwards each layer's own flag decides
        whether it trains (``transfer.set_trainable`` relies on that); Keras would also keep the
        layers of a frozen container frozen whatever their own flags."""
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        try:
            layers = self.layers
        except AttributeError:  # still inside __init__
            layers = []
        for layer in layers:
            layer.trainable = bool(value)

    def compute_output_shape(self, input_shape):
        self._require_graph()
        given = input_shape if isinstance(input_shape, list) else [input_shape]
        expected = self._graph_input_shapes
        if [tuple(s) for s in given] != [tuple(s) for s in expected]:
            raise ValueError(f"model {self.name!r} expects inputs of shape {expected}, got {given}")
        outs = [t.shape[1:] for t in self.outputs]
        return outs[0] if self._single_output else outs

    def ensure_built(self, input_shape, device="cpu"):
        self._require_graph(input_shape)
        return Layer.ensure_built(self, input_shape, device)

    def _require_graph(self, input_shape=None):
        if not self.built:
            raise ValueError(f"model {self.name!r} has no input shape yet: give input_shape to its first "
                             "layer or call it on data")

    def forward(self, x, training=False):
        outs = self._run_forward(_as_list(x) if not self._single_input else [x], training)
        return outs[0] if self._single_output else outs

    def backward(self, dy):
        # Nested in a model with nothing trainable below it, the input gradient is not needed.
        dxs = self._run_backward(_as_list(dy) if not self._single_output else [dy],
                                 need_input_grads=self._need_dx)
        return dxs[0] if self._single_input else dxs

    def _run_forward(self, inputs, training):
        if len(inputs) != len(self.inputs):
            raise ValueError(f"model {self.name!r} takes {len(self.inputs)} inputs, got {len(inputs)}")
        values = {id(t): x for t, x in zip(self.inputs, inputs)}
        for t in self._nodes:
            args = [values[id(p)] for p in t.inputs]
            mode = training if t.training is None else t.training  # a call's training= wins
            values[id(t)] = t.layer.forward(args if t.multi_input else args[0], training=mode)
        return [values[id(t)] for t in self.outputs]

    def _run_backward(self, douts, need_input_grads=False):
        needs = {id(t): need_input_grads for t in self.inputs}
        for t in self._nodes:
            needs[id(t)] = _has_trainable(t.layer) or any(needs[id(p)] for p in t.inputs)
        grads = {id(t): d for t, d in zip(self.outputs, douts)}
        for t in reversed(self._nodes):
            grad = grads.pop(id(t), None)
            if grad is None or not needs[id(t)]:
                continue
            t.layer._need_dx = any(needs[id(p)] for p in t.inputs)
            dx = t.layer.backward(grad)
            for parent, d in zip(t.inputs, dx if t.multi_input else [dx]):
                if not needs[id(parent)]:
                    continue
                key = id(parent)
                # Out-of-place sum: branches may hand back the very same array (Add).
                grads[key] = grads[key] + d if key in grads else d
        return [grads.get(id(t)) for t in self.inputs]

    # ----- weights --------------------------------------------------------------------------
    def count_params(self):
        self._require_graph()
        return sum(layer.count_params() for layer in self.leaf_layers())

    def count_trainable_params(self):
        return sum(layer.count_trainable_params() for layer in self.leaf_layers())

    def weight_items(self):
        return [(f"{layer.name}/{key}", value)
                for layer in self.leaf_layers() for key, value in layer.weight_items()]

    def named_weights(self):
        """``{"layer_name/param_name": array}``: each layer's params then its state, in model order."""
        return dict(self.weight_items())

    @property
    def weights(self):
        return [w for layer in self.leaf_layers() for w in layer.weights]

    @property
    def trainable_weights(self):
        return [w for layer in self.leaf_layers() for w in layer.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [w for layer in self.leaf_layers() for w in layer.non_trainable_weights]

    def trainable_layers(self):
        return [l for l in self.leaf_layers() if l.trainable and l.params]

    def get_weights(self):
        return [w for layer in self.leaf_layers() for w in layer.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        expected = sum(len(layer.weight_items()) for layer in self.leaf_layers())
        if len(weights) != expected:
            raise ValueError(f"model {self.name!r} expects {expected} weight arrays, got {len(weights)}")
        start = 0
        for layer in self.leaf_layers():
            count = len(layer.weight_items())
            layer.set_weights(weights[start:start + count])
            start += count

    def to(self, device):
        """Move every weight to ``"cpu"`` (numpy) or ``"gpu"`` (cupy); returns the model."""
        for layer in self.leaf_layers():
            layer.to(device)
        if self.optimizer is not None:
            self.optimizer.to(device)
        return self

    def astype(self, dtype):
        for layer in self.leaf_layers():
            layer.astype(dtype)
        return self

    @property
    def device(self):
        for _, value in self.weight_items():
            return "gpu" if backend.is_gpu_array(value) else "cpu"
        return "cpu"

    @property
    def dtype(self):
        for _, value in self.weight_items():
            return value.dtype
        return np.dtype("float32")

    def summary(self, line_length=None, print_fn=None):
        print_summary(self, line_length=line_length, print_fn=print_fn)

    # ----- persistence ----------------------------------------------------------------------
    def get_config(self):
        self._require_graph()
        layers = []
        for layer in self.layers:
            entry = {"class_name": type(layer).__name__, "config": layer.get_config()}
            tensor = self._tensor_of(layer)
            if tensor is not None and not isinstance(layer, InputLayer):
                entry["inbound"] = [p.layer.name for p in tensor.inputs]
                entry["call_with_list"] = tensor.multi_input
                if tensor.training is not None:
                    entry["training"] = tensor.training
            layers.append(entry)
        return {"name": self.name, "trainable": self.trainable, "layers": layers,
                "input_layers": [t.layer.name for t in self.inputs],
                "output_layers": [t.layer.name for t in self.outputs],
                "single_input": self._single_input, "single_output": self._single_output}

    def _tensor_of(self, layer):
        for t in (*self.inputs, *self._nodes):
            if t.layer is layer:
                return t
        return None

    @classmethod
    def from_config(cls, config):
        from .layers import get as get_layer_class
        tensors = {}
        for entry in config["layers"]:
            class_name, layer_config = entry["class_name"], entry["config"]
            if class_name == "InputLayer":
                tensors[layer_config["name"]] = trusted_input(tuple(layer_config["shape"]), layer_config["name"],
                                                              layer_config.get("data_format"))
                continue
            layer = _layer_from_entry(entry, get_layer_class)
            inbound = [tensors[name] for name in entry["inbound"]]
            tensors[layer.name] = layer(inbound if entry.get("call_with_list") else inbound[0],
                                        training=entry.get("training"))
        inputs = [tensors[n] for n in config["input_layers"]]
        outputs = [tensors[n] for n in config["output_layers"]]
        model = cls(inputs[0] if config.get("single_input", True) else inputs,
                    outputs[0] if config.get("single_output", True) else outputs,
                    name=config.get("name"))
        # Each layer's own flag came with its config.
        model._trainable = check.flag(model.name, "trainable", config.get("trainable", True))
        return model

    def save(self, path, **kwargs):
        from . import io
        return io.save_model(self, path, **kwargs)

    def save_weights(self, path, **kwargs):
        from . import io
        return io.save_weights(self, path, **kwargs)

    def load_weights(self, path, **kwargs):
        from . import io
        return io.load_weights(self, path, **kwargs)

    def export_onnx(self, path):
        """Write this model as ONNX (opset 13) to ``path``; see ``cudacnn.onnx``."""
        from .onnx import export_onnx
        return export_onnx(self, path)


def _check_leaf_names(layers):
    """Weights are saved, loaded and given optimizer state by layer name, so the layers inside
    nested models must not share a name with each other or with the outer layers."""
    where, repeated = {}, {}
    for layer in layers:
        owner = layer.name
        for leaf in (layer.leaf_layers() if isinstance(layer, Model) else [layer]):
            if leaf.name in where:
                repeated.setdefault(leaf.name, [where[leaf.name]]).append(owner)
            where[leaf.name] = owner
    if repeated:
        listed = "; ".join(f"{name!r} (in {', '.join(map(repr, owners))})" for name, owners in repeated.items())
        raise ValueError(f"layer names must be unique across nested models too (weights are saved and "
                         f"trained by layer name), repeated: {listed}; give one of them another name "
                         "(name= when creating it, or set layer.name)")


def _has_trainable(layer):
    if isinstance(layer, Model):
        return any(_has_trainable(l) for l in layer.leaf_layers())
    return layer.trainable and bool(layer.params)


def _layer_from_entry(entry, get_layer_class):
    class_name, config = entry["class_name"], entry["config"]
    if class_name in ("Sequential", "Model", "Functional"):
        return model_from_config(entry)
    layer = get_layer_class(class_name).from_config(dict(config))
    return layer


class Sequential(Model):
    """A linear stack of layers. The first layer's ``input_shape`` (or an ``Input``) fixes the
    input; without one the model is built on the first data it sees."""

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__(name=name, trainable=trainable)
        self._stack = []
        self._input_tensor = None
        self._single_input = self._single_output = True
        for layer in layers or []:
            self.add(layer)

    @property
    def layers(self):
        return list(self._stack)

    def add(self, layer):
        if isinstance(layer, SymbolicTensor) and isinstance(layer.layer, InputLayer) and not self._stack:
            self._input_tensor = layer
            return
        if isinstance(layer, InputLayer) and not self._stack:
            self._input_tensor = layer.output_tensor
            return
        if not isinstance(layer, Layer) or isinstance(layer, InputLayer):
            raise TypeError(f"Sequential.add expects a Layer, got {layer!r}")
        if any(l is layer for l in self._stack):
            raise ValueError(f"layer {layer.name!r} is already in this Sequential model")
        input_before = self._input_tensor
        self._stack.append(layer)
        if self._input_tensor is None and len(self._stack) == 1:
            shape = _declared_input(layer)
            if shape is not None:
                self._input_tensor = trusted_input(shape)

        def undo():
            self._stack.pop()
            self._input_tensor = input_before
        self._rebuild_or_undo(undo)

    def pop(self):
        if not self._stack:
            raise ValueError("cannot pop from an empty Sequential model")
        layer = self._stack.pop()
        self._rebuild()
        return layer

    def _rebuild_or_undo(self, undo):
        """Rebuild after a change; if a layer refuses it, ``undo()`` the change and rebuild the
        model as it was (its layers' shapes included) before re-raising, as Keras leaves a model
        whose add() failed unchanged."""
        try:
            self._rebuild()
        except Exception:
            undo()
            self._rebuild()
            raise

    def _rebuild(self):
        if self._input_tensor is None or not self._stack:
            self.built = False
            return
        tensor = self._input_tensor
        for layer in self._stack:
            tensor = layer(tensor)
        self._init_graph(self._input_tensor, tensor)

    def build(self, input_shape=None):
        """Fix the input shape (per sample, without batch axis), as Keras' ``model.build``."""
        if input_shape is not None:
            if check.is_int(input_shape):
                input_shape = (input_shape,)
            shape = tuple(input_shape)
            if len(shape) > 1 and shape[0] is None:
                shape = shape[1:]
            input_before = self._input_tensor
            self._input_tensor = Input(shape, data_format=self._stack[0].data_format if self._stack else None)
            self._rebuild_or_undo(lambda: setattr(self, "_input_tensor", input_before))

    def _build_from_data(self, x):
        if not self.built:
            self.build(tuple(x.shape[1:]))

    def _require_graph(self, input_shape=None):
        if not self.built and input_shape is not None and not isinstance(input_shape, list):
            self.build(input_shape)
        if not self.built and self._input_tensor is not None and not self._stack:
            raise ValueError(f"model {self.name!r} has an input but no layers yet: add some")
        super()._require_graph()

    def get_config(self):
        layers = [{"class_name": type(l).__name__, "config": l.get_config()} for l in self._stack]
        input_shape = None if self._input_tensor is None else list(self._input_tensor.shape[1:])
        return {"name": self.name, "trainable": self.trainable, "input_shape": input_shape, "layers": layers}

    @classmethod
    def from_config(cls, config):
        from .layers import get as get_layer_class
        model = cls(name=config.get("name"))
        if config.get("input_shape") is not None:
            model.add(trusted_input(tuple(config["input_shape"])))
        for entry in config["layers"]:
            model.add(_layer_from_entry(entry, get_layer_class))
        # Each layer's own flag came with its config.
        model._trainable = check.flag(model.name, "trainable", config.get("trainable", True))
        return model


def _declared_input(layer):
    if isinstance(layer, Model):
        return tuple(layer.inputs[0].shape[1:]) if layer.built and layer._single_input else None
    return layer._declared_input_shape


def model_from_config(config):
    """Rebuild a model (freshly initialised) from ``model.get_config()`` or ``{"class_name", "config"}``."""
    if not isinstance(config, dict):
        raise TypeError(f"model config must be a dict, got {type(config).__name__}")
    if "class_name" in config and "config" in config:
        class_name, inner = config["class_name"], config["config"]
    else:
        class_name, inner = ("Model" if "input_layers" in config else "Sequential"), config
    if class_name == "Sequential":
        return Sequential.from_config(inner)
    if class_name in ("Model", "Functional"):
        return Model.from_config(inner)
    raise ValueError(f"unknown model class {class_name!r} (expected 'Sequential' or 'Model')")
