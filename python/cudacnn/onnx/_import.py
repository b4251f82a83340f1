"""Build a cudacnn functional Model from an ONNX CNN graph.

Nodes are visited in the graph's (topological) order. A node whose inputs are all
known constants -- initializers, Constant nodes, shapes of runtime tensors -- is
folded to a constant (see ``_fold``); every other node becomes one cudacnn
layer, its weights copied from the initializers (ONNX and cudacnn share
PyTorch's layouts). ``MatMul`` followed by the ``Add`` of a constant vector fuse
into one Dense layer. Anything we cannot express raises ValueError naming the
node, before a model is returned.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
from onnx import numpy_helper

from .. import layers as L
from ..layers.base import trusted_input
from ..models import Model
from . import _fold

# A folded constant bigger than this is a corrupt or hostile file, not shape arithmetic.
_MAX_CONSTANT_ELEMENTS = 2**31


class _Importer:
    def __init__(self, graph, opset):
        self.graph = graph
        self.opset = opset  # of the default domain: Softmax's axis means one axis from opset 13 on
        self.constants = {}
        for tensor in graph.initializer:
            try:
                self.constants[tensor.name] = numpy_helper.to_array(tensor)
            except Exception as exc:  # dims that do not match the data, external data outside the folder...
                raise ValueError(f"ONNX initializer {tensor.name!r} cannot be read "
                                 f"({type(exc).__name__}: {exc})") from None
        self.tensors = {}      # ONNX name -> SymbolicTensor
        self.onnx_shapes = {}  # ONNX name -> per-sample shape as ONNX sees it
        self.aliases = {}      # ONNX name -> ONNX name it equals (Identity, fused Add, ...)
        self.consumers = {}
        self.skipped = set()
        self.used_names = set()
        self.fixed_batch = None  # the inputs' batch size when the graph was exported with a static one
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    # ----- tensor helpers --------------------------------------------------------------
    def resolve(self, name):
        while name in self.aliases:
            name = self.aliases[name]
        return name

    def is_constant(self, name):
        return name == "" or self.resolve(name) in self.constants

    def constant(self, node, index, required=None):
        """Constant input ``index`` of ``node`` (None if absent, unless ``required`` names it)."""
        if index >= len(node.input) or node.input[index] == "":
            if required:
                raise _error(node, f"lacks its required input {index} ({required})")
            return None
        name = self.resolve(node.input[index])
        if name not in self.constants:
            raise ValueError(f"ONNX node {_label(node)} ({node.op_type}): input {index} "
                             f"({node.input[index]!r}) must be a constant initializer")
        value = self.constants[name]
        if value.dtype.kind not in "biuf":
            raise _error(node, f"input {index} ({node.input[index]!r}) must hold numbers, got dtype {value.dtype}")
        return value

    def runtime(self, node, index=0, flattening=False):
        """The tensor behind input ``index``. A global pool keeps ONNX's (C, 1, 1) as cudacnn's (C,);
        a consumer that is not ``flattening`` it gets it reshaped back, so axes count as in ONNX."""
        if index >= len(node.input) or node.input[index] == "":
            raise _error(node, f"lacks its required input {index}")
        if self.resolve(node.input[index]) not in self.tensors:
            raise ValueError(f"ONNX node {_label(node)} ({node.op_type}): input "
                             f"{node.input[index]!r} is not produced by the graph")
        return self._tensor(node.input[index], flattening)

    def _tensor(self, onnx_name, flattening=False):
        name = self.resolve(onnx_name)
        tensor, onnx_shape = self.tensors[name], self._onnx_shape_of(onnx_name)
        if flattening or tuple(tensor.shape[1:]) == onnx_shape:
            return tensor
        key = f"{name} as {onnx_shape}"
        if key not in self.tensors:
            self.tensors[key] = L.Reshape(onnx_shape, name=self.layer_name(
                SimpleNamespace(name=f"{name}_keepdims", op_type="reshape")))(tensor)
        return self.tensors[key]

    def onnx_shape(self, node, index=0):
        return self._onnx_shape_of(node.input[index])

    def _onnx_shape_of(self, name):
        """The per-sample shape ONNX gives ``name``: the first one recorded along its aliases (a
        flatten that aliases a pooled (C,) tensor records (C,) for its own output)."""
        while name not in self.onnx_shapes and name in self.aliases:
            name = self.aliases[name]
        return self.onnx_shapes[name]

    def layer_name(self, node):
        """A unique layer name from an ONNX node (or graph input) name."""
        fallback = getattr(node, "op_type", "input").lower()
        base = _identifier(node.name).strip("_") or fallback
        name, k = base, 1
        while name in self.used_names:
            name, k = f"{base}_{k}", k + 1
        self.used_names.add(name)
        return name

    def emit(self, node, layer, inputs, weights=None, onnx_shape=None):
        """Call ``layer`` on ``inputs``, copy ``weights`` into it, record node output 0."""
        out = layer(inputs)
        for key, value in (weights or {}).items():
            store = layer.params if key in layer.params else layer.state
            expected = tuple(store[key].shape)
            if tuple(value.shape) != expected:
                raise ValueError(f"ONNX node {_label(node)}: weight {key} has shape {tuple(value.shape)}, "
                                 f"layer expects {expected}")
            store[key] = np.ascontiguousarray(value, dtype=np.float32)
        self.tensors[node.output[0]] = out
        self.onnx_shapes[node.output[0]] = tuple(onnx_shape if onnx_shape is not None else out.shape[1:])
        return out

    def alias(self, node, index=0):
        self.aliases[node.output[0]] = self.resolve(node.input[index])

    # ----- the walk ------------------------------------------------------------------------
    def run(self, model_name):
        inputs = []
        for value in self.graph.input:
            if value.name in self.constants:
                continue  # old exporters list initializers among the inputs
            dims = value.type.tensor_type.shape.dim
            per_sample = tuple(d.dim_value for d in dims[1:])
            if not dims or any(d <= 0 for d in per_sample):
                raise ValueError(f"ONNX input {value.name!r} needs static non-batch dimensions, got "
                                 f"{[d.dim_param or d.dim_value for d in dims]}")
            if dims and dims[0].dim_value > 0:
                self.fixed_batch = dims[0].dim_value  # x.view(x.size(0), -1) then folds to [batch, -1]
            tensor = trusted_input(per_sample, name=self.layer_name(value))  # ONNX CNN inputs are NCHW
            self.tensors[value.name] = tensor
            self.onnx_shapes[value.name] = per_sample
            inputs.append(tensor)
        if not inputs:
            raise ValueError("the ONNX graph has no (non-constant) inputs")
        if not self.graph.output:
            raise ValueError("the ONNX graph declares no outputs")
        for node in self.graph.node:
            if not node.output or not node.output[0]:
                raise _error(node, "has no outputs")
            if node.output[0] in self.skipped:
                continue
            taken = [name for name in node.output if name in self.tensors or name in self.constants
                     or name in self.aliases]
            if taken:
                raise _error(node, f"output {taken[0]!r} is already produced elsewhere in the graph")
            try:
                if self._fold(node):
                    continue
                handler = _HANDLERS.get(node.op_type)
                if handler is None:
                    raise ValueError(f"ONNX op {node.op_type} (node {_label(node)}) is not supported; supported: "
                                     f"{sorted(_HANDLERS)} and constant shape arithmetic")
                handler(self, node, _fold.attributes(node))
            except ValueError as exc:
                if _label(node) in str(exc):
                    raise
                raise _error(node, str(exc)) from exc  # e.g. a layer refusing its arguments
            except (TypeError, KeyError, IndexError, AttributeError) as exc:
                raise _error(node, f"malformed node ({type(exc).__name__}: {exc})") from exc
        outputs = []
        for value in self.graph.output:
            name = self.resolve(value.name)
            if name not in self.tensors:
                raise ValueError(f"ONNX output {value.name!r} is a constant or missing; nothing to compute")
            outputs.append(self._tensor(value.name))
        return Model(inputs[0] if len(inputs) == 1 else inputs,
                     outputs[0] if len(outputs) == 1 else outputs, name=model_name)

    def _fold(self, node):
        attrs = _fold.attributes(node)
        if node.op_type == "Shape" and node.input and self.resolve(node.input[0]) in self.onnx_shapes:
            value = _fold.shape_value(self.onnx_shape(node))
            start, end = attrs.get("start", 0), attrs.get("end", None)
            self.constants[node.output[0]] = value[start:end]
            return True
        if not all(self.is_constant(name) for name in node.input):
            return False
        values = [self.constants[self.resolve(n)] if n else None for n in node.input]
        try:
            _check_fold(node.op_type, values, attrs)
            self.constants[node.output[0]] = np.asarray(_fold.evaluate(node.op_type, values, attrs))
        except KeyError:
            raise ValueError(f"ONNX op {node.op_type} (node {_label(node)}) on constants cannot be folded") from None
        except (ValueError, TypeError, IndexError, AttributeError) as exc:  # np.AxisError is a ValueError
            raise _error(node, f"cannot fold its constant inputs: {exc}") from exc
        return True


def _check_fold(op, values, attrs):
    """Refuse, before NumPy allocates it, a folded result with an absurd number of elements; and an
    integer division by zero (NumPy would answer it with a warning and a 0)."""
    if op in ("ConstantOfShape", "Reshape"):
        dims = np.asarray(values[0 if op == "ConstantOfShape" else 1]).ravel()
        if dims.dtype.kind not in "iu":  # NumPy would truncate 2.5 to 2
            raise ValueError(f"the shape must be integers, got {dims.tolist()}")
        if op == "Reshape":
            return
        if (dims < 0).any():
            raise ValueError(f"the shape must be non-negative, got {dims.tolist()}")
        size = math.prod(int(d) for d in dims)
    elif op in ("Add", "Sub", "Mul", "Div", "Equal", "Less", "Greater"):
        size = math.prod(np.broadcast_shapes(*(np.shape(v) for v in values)))
        divisor = np.asarray(values[-1])
        if op == "Div" and len(values) == 2 and divisor.dtype.kind in "iu" and (divisor == 0).any():
            raise ValueError("integer division by zero")
    elif op == "Gather":
        data, indices = np.asarray(values[0]), np.asarray(values[1])
        axis_len = data.shape[attrs.get("axis", 0)]
        size = indices.size * (data.size // axis_len if axis_len else 0)
    else:
        return
    if size > _MAX_CONSTANT_ELEMENTS:
        raise ValueError(f"the result would have {size} elements (more than {_MAX_CONSTANT_ELEMENTS})")


# ----- node handlers ------------------------------------------------------------------------
def _identifier(name):
    """``name`` with each run of characters other than letters, digits and _ replaced by one _."""
    if isinstance(name, bytes):  # protobuf hands back a string field that is not valid UTF-8 as bytes
        name = name.decode("utf-8", errors="replace")
    return re.sub(r"[^0-9A-Za-z_]+", "_", name)


def _label(node):
    """A node's name for messages (exporters may leave names empty; outputs are named in valid graphs)."""
    return repr(node.name or (f"-> {node.output[0]}" if node.output else "<unnamed>"))


def _error(node, message):
    return ValueError(f"ONNX {node.op_type} node {_label(node)}: {message}")


def _spatial_padding(node, attrs, in_hw, kernel, strides, dilations=(1, 1)):
    """ONNX pads/auto_pad as a cudacnn padding: an int pair, or "same" for Keras-style asymmetric pads."""
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad == "VALID":
        return "valid"
    if auto_pad == "SAME_UPPER":
        return "same"
    if auto_pad not in ("NOTSET", ""):
        raise ValueError(f"ONNX node {_label(node)}: auto_pad {auto_pad} is not supported")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    if len(pads) != 4:
        raise _error(node, f"pads must have 4 entries (top, left, bottom, right), got {pads}")
    top, left, bottom, right = pads
    if (top, left) == (bottom, right):
        return (int(top), int(left))
    same = []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
        same += [total // 2, total - total // 2]
    if [top, bottom, left, right] == same:
        return "same"
    raise ValueError(f"ONNX node {_label(node)}: asymmetric pads {[top, left, bottom, right]} are not "
                     "supported (only symmetric or Keras 'same' padding)")


def _check_ceil_mode(node, attrs, in_hw, kernel, strides, pads):
    if not attrs.get("ceil_mode", 0):
        return
    for size, k, s, p in zip(in_hw, kernel, strides, pads):
        span = size + 2 * p - k
        if span % s:
            raise ValueError(f"ONNX node {_label(node)}: ceil_mode=1 changes the output size here "
                             f"(input {in_hw}, kernel {kernel}, stride {strides}); not supported")


def _conv(imp, node, attrs):
    x = imp.runtime(node)
    w, b = imp.constant(node, 1, "weight"), imp.constant(node, 2)
    if w.ndim != 4:
        raise ValueError(f"ONNX Conv {_label(node)}: only 2-D convolutions are supported, kernel {w.shape}")
    group = attrs.get("group", 1)
    if len(x.shape) != 4 or w.shape[1] * group != x.shape[1]:  # checked before the layer allocates a kernel
        raise _error(node, f"kernel of shape {w.shape} with group={group} does not fit input {x.shape}")
    kernel = tuple(w.shape[2:])
    strides = tuple(attrs.get("strides", (1, 1)))
    dilations = tuple(attrs.get("dilations", (1, 1)))
    padding = _spatial_padding(node, attrs, x.shape[2:], kernel, strides, dilations)
    layer = L.Conv2D(int(w.shape[0]), kernel, strides=strides, padding=padding, dilation_rate=dilations,
                     groups=int(group), use_bias=b is not None, name=imp.layer_name(node))
    weights = {"kernel": w} if b is None else {"kernel": w, "bias": b}
    imp.emit(node, layer, x, weights)


def _dense(imp, node, kernel, bias):
    x = imp.runtime(node)
    if len(x.shape) != 2:
        raise ValueError(f"ONNX node {_label(node)} ({node.op_type}) needs a flat (N, features) input, "
                         f"got {x.shape}")
    if kernel.ndim != 2 or kernel.shape[1] != x.shape[1]:  # checked before the layer allocates a kernel
        raise _error(node, f"weight of shape {kernel.shape} (outputs, inputs) does not fit input {x.shape}")
    if bias is not None and bias.size not in (1, kernel.shape[0]):
        raise _error(node, f"bias of {bias.size} values does not fit {kernel.shape[0]} outputs")
    layer = L.Dense(int(kernel.shape[0]), use_bias=bias is not None, name=imp.layer_name(node))
    weights = {"kernel": kernel}
    if bias is not None:
        weights["bias"] = np.broadcast_to(bias.reshape(-1), (kernel.shape[0],))
    imp.emit(node, layer, x, weights)


def _gemm(imp, node, attrs):
    if attrs.get("transA", 0):
        raise ValueError(f"ONNX Gemm {_label(node)}: transA=1 is not supported")
    b, c = imp.constant(node, 1, "B"), imp.constant(node, 2)
    kernel = attrs.get("alpha", 1.0) * (b if attrs.get("transB", 0) else b.T)
    _dense(imp, node, kernel, None if c is None else attrs.get("beta", 1.0) * c.reshape(-1))


def _matmul(imp, node, attrs):
    kernel = imp.constant(node, 1, "B").T
    bias = None
    users = imp.consumers.get(node.output[0], [])
    if len(users) == 1 and users[0].op_type == "Add":
        add = users[0]
        other = [n for n in add.input if n != node.output[0]]
        if len(other) == 1 and imp.is_constant(other[0]):
            candidate = imp.constants[imp.resolve(other[0])]
            if candidate.size == kernel.shape[0]:
                bias = candidate.reshape(-1)
                imp.skipped.add(add.output[0])
                imp.aliases[add.output[0]] = node.output[0]
    _dense(imp, node, kernel, bias)


def _activation(layer_factory):
    def handler(imp, node, attrs):
        imp.emit(node, layer_factory(attrs, imp.layer_name(node)), imp.runtime(node))
    return handler


def _softmax(imp, node, attrs):
    x = imp.runtime(node)
    axis = attrs.get("axis", -1 if imp.opset >= 13 else 1)
    rank = len(x.shape)
    over_channels = axis in (1, 1 - rank) and (rank == 2 or imp.opset >= 13)
    if not (over_channels or (rank == 2 and axis == -1)):
        raise ValueError(f"ONNX Softmax {_label(node)}: only over the channels (axis 1) of (N, C, ...) inputs "
                         f"or the features of (N, K), got shape {x.shape} axis {axis} (opset {imp.opset})")
    imp.emit(node, L.Softmax(name=imp.layer_name(node)), x)


def _pool(imp, node, attrs):
    x = imp.runtime(node)
    if "kernel_shape" not in attrs:
        raise _error(node, "lacks the required kernel_shape attribute")
    kernel = tuple(attrs["kernel_shape"])
    strides = tuple(attrs.get("strides", kernel))
    if any(d != 1 for d in attrs.get("dilations", (1, 1))):
        raise ValueError(f"ONNX {node.op_type} {_label(node)}: dilated pooling is not supported")
    padding = _spatial_padding(node, attrs, x.shape[2:], kernel, strides)
    pads = padding if isinstance(padding, tuple) else (0, 0)
    _check_ceil_mode(node, attrs, x.shape[2:], kernel, strides, pads)
    if padding == (0, 0):
        padding = "valid"
    if node.op_type == "AveragePool":
        if padding != "valid" and attrs.get("count_include_pad", 0):
            raise ValueError(f"ONNX AveragePool {_label(node)}: count_include_pad=1 with padding is not "
                             "supported (cudacnn averages only real pixels)")
        layer = L.AveragePooling2D(kernel, strides=strides, padding=padding, name=imp.layer_name(node))
    else:
        layer = L.MaxPooling2D(kernel, strides=strides, padding=padding, name=imp.layer_name(node))
    imp.emit(node, layer, x)


def _global_pool(layer_class):
    def handler(imp, node, attrs):
        x = imp.runtime(node)
        imp.emit(node, layer_class(name=imp.layer_name(node)), x, onnx_shape=(x.shape[1], 1, 1))
    return handler


def _pad(imp, node, attrs):
    """Zero padding of the spatial axes of (N, C, H, W): a ZeroPadding2D."""
    x = imp.runtime(node)
    if "pads" in attrs:  # before opset 11 pads and value were attributes
        pads, value = attrs["pads"], attrs.get("value", 0.0)
    else:
        pads, value = imp.constant(node, 1, "pads"), imp.constant(node, 2)
    if attrs.get("mode", b"constant") not in (b"constant", "constant") or (value is not None and np.any(value != 0)):
        raise _error(node, "only zero padding (mode constant, value 0) is supported")
    pads = [int(v) for v in np.asarray(pads).ravel()]
    if len(x.shape) != 4 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)) or min(pads) < 0:
        raise _error(node, f"only non-negative padding of the height and width of (N, C, H, W) is supported, "
                           f"got pads {pads} for {x.shape}")
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    imp.emit(node, L.ZeroPadding2D(((top, bottom), (left, right)), name=imp.layer_name(node)), x)


def _reduce_mean(imp, node, attrs):
    axes = attrs.get("axes")
    if axes is None and len(node.input) > 1:
        axes = imp.constant(node, 1).tolist()
    x = imp.runtime(node)
    if len(x.shape) != 4 or sorted(a % 4 for a in (axes or [])) != [2, 3]:
        raise ValueError(f"ONNX ReduceMean {_label(node)}: only the spatial mean (axes 2, 3) is supported")
    keep = attrs.get("keepdims", 1)
    imp.emit(node, L.GlobalAveragePooling2D(name=imp.layer_name(node)), x,
             onnx_shape=(x.shape[1], 1, 1) if keep else (x.shape[1],))


def _batch_norm(imp, node, attrs):
    x = imp.runtime(node)
    stats = [imp.constant(node, i, what) for i, what in enumerate(("scale", "B", "mean", "var"), start=1)]
    channels = (x.shape[1],) if len(x.shape) > 1 else None
    if any(s.shape != channels for s in stats):  # checked before the layer allocates its statistics
        raise _error(node, f"scale, B, mean and var must each have shape {channels} for input {x.shape}, "
                           f"got {[s.shape for s in stats]}")
    gamma, beta, mean, var = stats
    if not (var >= 0).all():
        raise _error(node, "the running variance has negative (or NaN) entries")
    layer = L.BatchNormalization(momentum=attrs.get("momentum", 0.9), epsilon=attrs.get("epsilon", 1e-5),
                                 name=imp.layer_name(node))
    imp.emit(node, layer, x, {"gamma": gamma, "beta": beta, "moving_mean": mean, "moving_variance": var})


def _add(imp, node, attrs):
    if any(imp.is_constant(name) for name in node.input):
        raise ValueError(f"ONNX Add {_label(node)}: adding a constant is supported only as the bias of a "
                         "MatMul (which becomes a Dense layer)")
    a, b = imp.runtime(node, 0), imp.runtime(node, 1)
    if a.shape != b.shape:
        raise ValueError(f"ONNX Add {_label(node)}: broadcasting {a.shape} + {b.shape} is not supported")
    imp.emit(node, L.Add(name=imp.layer_name(node)), [a, b])


def _concat(imp, node, attrs):
    if len(node.input) < 2:
        raise _error(node, f"needs at least 2 inputs, got {len(node.input)}")
    xs = [imp.runtime(node, i) for i in range(len(node.input))]
    rank = len(xs[0].shape)
    axis = attrs.get("axis", 1) % rank
    if axis != 1:
        raise ValueError(f"ONNX Concat {_label(node)}: only the channel axis 1 is supported, got {attrs.get('axis')}")
    imp.emit(node, L.Concatenate(axis=1, name=imp.layer_name(node)), xs)


def _flatten_to(imp, node, per_sample):
    """Flatten a runtime tensor to ``per_sample`` = (features,), aliasing when it is already flat."""
    x = imp.runtime(node, flattening=True)
    size = int(np.prod(x.shape[1:]))
    if per_sample not in ((size,), (-1,)):
        raise ValueError(f"ONNX {node.op_type} {_label(node)}: reshaping per-sample {imp.onnx_shape(node)} to "
                         f"{per_sample} is not supported (only flattening)")
    if len(x.shape) == 2:
        imp.alias(node)
        imp.onnx_shapes[node.output[0]] = (size,)
        return
    imp.emit(node, L.Flatten(name=imp.layer_name(node)), x)


def _flatten(imp, node, attrs):
    if attrs.get("axis", 1) != 1:
        raise ValueError(f"ONNX Flatten {_label(node)}: only axis=1 is supported")
    _flatten_to(imp, node, (-1,))


def _reshape(imp, node, attrs):
    imp.runtime(node, flattening=True)
    target = imp.constant(node, 1, "shape")
    if target.dtype.kind not in "iu":
        raise _error(node, f"the target shape must be integers, got {target.tolist()}")
    per_sample = _fold.reshape_keeps_batch(target, imp.fixed_batch)
    if per_sample == tuple(imp.onnx_shape(node)):  # a no-op view, e.g. x.view(N, C, H, W)
        imp.alias(node)
        return
    size = int(np.prod(imp.runtime(node, flattening=True).shape[1:]))
    if -1 not in per_sample and int(np.prod(per_sample)) != size:
        raise ValueError(f"ONNX Reshape {_label(node)}: target {list(imp.constant(node, 1))} for per-sample "
                         f"shape {imp.onnx_shape(node)} would move elements across the batch dimension")
    _flatten_to(imp, node, per_sample)


def _dropout(imp, node, attrs):
    rate = attrs.get("ratio", 0.5)
    if len(node.input) > 1 and node.input[1]:
        rate = imp.constant(node, 1)
        if rate.size != 1:
            raise _error(node, f"ratio must be a single number, got shape {rate.shape}")
        rate = rate.item()
    imp.emit(node, L.Dropout(float(rate), name=imp.layer_name(node)), imp.runtime(node))


def _identity(imp, node, attrs):
    imp.alias(node)


_HANDLERS = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Relu": _activation(lambda a, n: L.ReLU(name=n)),
    "LeakyRelu": _activation(lambda a, n: L.LeakyReLU(negative_slope=a.get("alpha", 0.01), name=n)),
    "Elu": _activation(lambda a, n: L.ELU(alpha=a.get("alpha", 1.0), name=n)),
    "Sigmoid": _activation(lambda a, n: L.Activation("sigmoid", name=n)),
    "Tanh": _activation(lambda a, n: L.Activation("tanh", name=n)),
    "Softmax": _softmax,
    "MaxPool": _pool,
    "AveragePool": _pool,
    "GlobalAveragePool": _global_pool(L.GlobalAveragePooling2D),
    "GlobalMaxPool": _global_pool(L.GlobalMaxPooling2D),
    "Pad": _pad,
    "ReduceMean": _reduce_mean,
    "BatchNormalization": _batch_norm,
    "Add": _add,
    "Concat": _concat,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Dropout": _dropout,
    "Identity": _identity,
}


def load(path):
    """Import the ONNX CNN at ``path`` as a cudacnn functional Model (weights included, CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no ONNX file at {path}")
    try:
        proto = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError and friends
        raise ValueError(f"{path}: not an ONNX model ({type(exc).__name__}: {exc})") from None
    if not proto.HasField("graph"):  # e.g. an empty file, which protobuf reads as an empty message
        raise ValueError(f"{path}: not an ONNX model (no graph)")
    try:
        opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
        return _Importer(proto.graph, opset).run(_identifier(proto.graph.name or path.stem))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
