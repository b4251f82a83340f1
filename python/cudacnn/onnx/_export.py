"""Write a cudacnn model as an ONNX graph (opset 13) for inference.

Each layer becomes one or two ONNX nodes; weights become initializers in their
own (PyTorch-compatible) layouts. Keras 'same' padding is written as the explicit
(possibly asymmetric) pads it stands for; Dense becomes ``Gemm(transB=1)``;
Dropout and random augmentation are left out (inference), RandomCrop keeps its
centre window; GlobalAveragePooling2D is
``GlobalAveragePool`` followed by ``Flatten`` (ONNX keeps the 1x1 spatial dims).
Nested models are inlined. The batch dimension is symbolic (``N``).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..layers.activations import LEAKY_RELU_SLOPE
from ..layers.base import InputLayer, to_device
from ..models import Model
from ..safetensors import atomic_write

OPSET = 13
# Regularisers and random augmentation are the identity in an inference graph.
_IDENTITY_AT_INFERENCE = ("Dropout", "GaussianNoise", "RandomFlip", "RandomTranslation", "RandomRotation",
                          "RandomZoom")


def _same_pads(size, kernel, stride, dilation=1):
    """Keras/TF 'same': out = ceil(in/stride); the odd pixel of padding goes bottom/right."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _pads(padding, spatial, kernel, strides, dilations=None):
    """ONNX ``pads`` (every spatial start, then every end: [top, left, bottom, right] in 2-D) for a
    cudacnn padding value."""
    dilations = dilations or (1,) * len(spatial)
    if padding == "valid":
        pairs = [(0, 0)] * len(spatial)
    elif padding == "same":
        pairs = [_same_pads(*args) for args in zip(spatial, kernel, strides, dilations)]
    else:
        values = (padding,) * len(spatial) if isinstance(padding, int) else tuple(padding)
        pairs = [(v, v) for v in values]
    return [start for start, _ in pairs] + [end for _, end in pairs]


def _padding(config):
    """A layer config's padding as "valid", "same", an int or a tuple (configs hold lists)."""
    value = config["padding"]
    return value if isinstance(value, (str, int)) else tuple(value)


class _Exporter:
    def __init__(self):
        self.nodes, self.initializers, self.names = [], [], set()

    def fresh(self, base):
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def weight(self, layer, key, value):
        return self.constant(f"{layer.name}.{key}", np.ascontiguousarray(to_device(value, "cpu"), dtype=np.float32))

    def constant(self, base, array):
        name = self.fresh(base)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op, inputs, base, **attrs):
        out = self.fresh(base)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def activation(self, name, x, base, config):
        if name in (None, "linear"):
            return x
        if name == "relu":
            return self.node("Relu", [x], base)
        if name == "leaky_relu":
            return self.node("LeakyRelu", [x], base, alpha=float(config.get("negative_slope", LEAKY_RELU_SLOPE)))
        if name == "elu":
            return self.node("Elu", [x], base, alpha=float(config.get("alpha", 1.0)))
        if name == "sigmoid":
            return self.node("Sigmoid", [x], base)
        if name == "tanh":
            return self.node("Tanh", [x], base)
        if name == "softmax":
            return self.node("Softmax", [x], base, axis=1)  # the channels; the features of (N, K)
        raise ValueError(f"cannot export activation {name!r} to ONNX")

    # ----- layers ----------------------------------------------------------------------------
    def layer(self, layer, inputs):
        """ONNX value name of ``layer`` applied to ``inputs`` (ONNX names)."""
        kind = type(layer).__name__
        config = layer.get_config()
        x = inputs[0]
        shape = layer.input_shape  # includes the batch (None)
        if kind in ("Conv2D", "Conv1D"):
            kernel = tuple(config["kernel_size"])
            strides, dilations = tuple(config["strides"]), tuple(config["dilation_rate"])
            pad_value = _padding(config)
            args = [x, self.weight(layer, "kernel", layer.params["kernel"])]
            if "bias" in layer.params:
                args.append(self.weight(layer, "bias", layer.params["bias"]))
            y = self.node("Conv", args, layer.name, kernel_shape=list(kernel), strides=list(strides),
                          dilations=list(dilations), group=int(config.get("groups", 1)),
                          pads=_pads(pad_value, shape[2:], kernel, strides, dilations))
            return self.activation(config.get("activation"), y, f"{layer.name}_act", config)
        if kind == "Dense":
            args = [x, self.weight(layer, "kernel", layer.params["kernel"])]
            if "bias" in layer.params:
                args.append(self.weight(layer, "bias", layer.params["bias"]))
            y = self.node("Gemm", args, layer.name, transB=1)
            return self.activation(config.get("activation"), y, f"{layer.name}_act", config)
        if kind in ("MaxPooling2D", "AveragePooling2D"):
            kernel, strides = tuple(config["pool_size"]), tuple(config["strides"])
            pads = _pads(_padding(config), shape[2:], kernel, strides)
            attrs = dict(kernel_shape=list(kernel), strides=list(strides), pads=pads)
            if kind == "AveragePooling2D":
                return self.node("AveragePool", [x], layer.name, count_include_pad=0, **attrs)
            return self.node("MaxPool", [x], layer.name, **attrs)
        if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            op = "GlobalAveragePool" if kind == "GlobalAveragePooling2D" else "GlobalMaxPool"
            return self.node("Flatten", [self.node(op, [x], layer.name)], f"{layer.name}_flatten", axis=1)
        if kind == "ZeroPadding2D":
            (top, bottom), (left, right) = config["padding"]
            pads = self.constant(f"{layer.name}.pads", np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
            return self.node("Pad", [x, pads], layer.name, mode="constant")
        if kind == "Reshape":  # per sample; 0 keeps the batch dimension
            target = self.constant(f"{layer.name}.shape", np.array([0, *config["target_shape"]], np.int64))
            return self.node("Reshape", [x, target], layer.name)
        if kind == "Flatten":
            return self.node("Flatten", [x], layer.name, axis=1)
        if kind == "BatchNormalization":
            if config.get("axis", 1) != 1:
                raise ValueError(f"cannot export {layer.name}: BatchNormalization over axis {config['axis']}")
            c = layer.state["moving_mean"].shape[0]
            gamma = layer.params.get("gamma", np.ones(c, np.float32))
            beta = layer.params.get("beta", np.zeros(c, np.float32))
            args = [x, self.weight(layer, "gamma", gamma), self.weight(layer, "beta", beta),
                    self.weight(layer, "moving_mean", layer.state["moving_mean"]),
                    self.weight(layer, "moving_variance", layer.state["moving_variance"])]
            return self.node("BatchNormalization", args, layer.name, epsilon=float(config["epsilon"]),
                             momentum=float(config["momentum"]))
        if kind in ("Activation", "ReLU", "LeakyReLU", "ELU", "Softmax"):
            name = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "Softmax": "softmax"}.get(
                kind, config.get("activation"))
            return self.activation(name, x, layer.name, config)
        if kind in _IDENTITY_AT_INFERENCE:
            return x
        if kind == "RandomCrop":  # the centre window at inference
            top, left = (shape[2] - config["height"]) // 2, (shape[3] - config["width"]) // 2
            bounds = {"starts": [top, left], "ends": [top + config["height"], left + config["width"]],
                      "axes": [2, 3]}
            names = [self.constant(f"{layer.name}.{key}", np.array(v, np.int64)) for key, v in bounds.items()]
            return self.node("Slice", [x, *names], layer.name)
        if kind == "Add":
            total = x
            for i, other in enumerate(inputs[1:]):
                total = self.node("Add", [total, other], layer.name if i == len(inputs) - 2 else f"{layer.name}_{i}")
            return total
        if kind == "Concatenate":
            return self.node("Concat", list(inputs), layer.name, axis=int(config["axis"]))
        raise ValueError(f"cannot export layer {layer.name!r} of type {kind} to ONNX")

    def model(self, model, input_names):
        """Emit ``model``'s graph with its inputs bound to ``input_names``; return its output names."""
        values = {id(t): name for t, name in zip(model.inputs, input_names)}
        for tensor in _topological(model.outputs):
            if id(tensor) in values:
                continue
            if tensor.training:  # e.g. BatchNormalization on batch statistics even in predict
                raise ValueError(f"cannot export layer {tensor.layer.name!r} to ONNX: it is called with "
                                 "training=True, which an inference graph cannot express")
            args = [values[id(p)] for p in tensor.inputs]
            if isinstance(tensor.layer, Model):  # nested: inline its graph
                values[id(tensor)] = self.model(tensor.layer, args)[0]
            else:
                values[id(tensor)] = self.layer(tensor.layer, args)
        return [values[id(t)] for t in model.outputs]


def _topological(outputs):
    """Symbolic tensors producers-first (iterative post-order over ``tensor.inputs``)."""
    order, seen, stack = [], set(), [(t, False) for t in reversed(outputs)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
        elif id(tensor) not in seen:
            seen.add(id(tensor))
            stack.append((tensor, True))
            stack.extend((p, False) for p in reversed(tensor.inputs))
    return order


def to_onnx(model) -> onnx.ModelProto:
    """The ONNX ModelProto of a built cudacnn model."""
    if not getattr(model, "outputs", None):
        raise ValueError(f"model {model.name!r} has no graph yet: give its first layer input_shape or call it on data")
    exporter = _Exporter()
    graph_inputs, input_names = [], []
    for tensor in model.inputs:
        if not isinstance(tensor.layer, InputLayer):
            raise ValueError(f"model input {tensor.layer.name!r} is not an Input layer")
        name = exporter.fresh(tensor.layer.name)
        input_names.append(name)
        graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *tensor.shape[1:]]))
    out_names = exporter.model(model, input_names)
    graph_outputs = []
    for i, (name, tensor) in enumerate(zip(out_names, model.outputs)):
        if name in input_names or any(name == other for other in out_names[:i]):
            name = exporter.node("Identity", [name], f"output_{i}")
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *tensor.shape[1:]]))
    graph = helper.make_graph(exporter.nodes, model.name, graph_inputs, graph_outputs, exporter.initializers)
    proto = helper.make_model(graph, producer_name="cudacnn", opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = min(proto.ir_version, 8)  # readable by onnxruntime releases of the last years
    onnx.checker.check_model(proto)
    return proto


def export_onnx(model, path):
    """Write ``model`` to ``path`` as ONNX (atomically) and return the path."""
    proto = to_onnx(model)
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())
    return path
