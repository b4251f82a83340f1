"""The Layer base class, symbolic tensors for the functional API, and Input.

A layer is called either on arrays (eager: builds itself from the shape, then
``forward``) or on symbolic tensors (records a graph node and returns a new
symbolic tensor). Shapes given to ``build``/``compute_output_shape`` exclude
the batch axis; ``layer.input_shape``/``output_shape`` include it as None, as in
Keras. Layers keep what ``backward`` needs from the last ``forward``.
"""
from __future__ import annotations

import contextlib
import contextvars
import re
from collections import Counter, defaultdict

import numpy as np

from .. import backend
from .. import initializers
from .. import regularizers as regularizers_module
from ..ops import _validate as check

_name_counts: dict[str, int] = defaultdict(int)
# Every layer name in use in this process, given or automatic: an automatic name skips
# them, so a head added to a loaded model ("dense" in its file) becomes "dense_1".
_names_taken: set[str] = set()

# While a saved model is rebuilt from its config (io.load_model), the weight shapes its file
# holds: a weight of any other shape (an edited config's filters: 10**9) is refused before it
# is allocated. Each stored tensor serves one weight, as loading pairs them anyway.
_allowed_weight_shapes: contextvars.ContextVar = contextvars.ContextVar("allowed_weight_shapes", default=None)


@contextlib.contextmanager
def only_weight_shapes(shapes):
    token = _allowed_weight_shapes.set(Counter(tuple(s) for s in shapes))
    try:
        yield
    finally:
        _allowed_weight_shapes.reset(token)


def to_snake_case(name: str) -> str:
    """Keras' rule: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, ReLU -> re_lu."""
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()


def unique_name(base: str) -> str:
    """base, base_1, base_2, ...: the first not yet taken in this process."""
    while True:
        count = _name_counts[base]
        _name_counts[base] += 1
        name = base if count == 0 else f"{base}_{count}"
        if name not in _names_taken:
            return take_name(name)


def take_name(name: str) -> str:
    """Mark ``name`` as in use (automatic names will avoid it) and return it."""
    _names_taken.add(name)
    return name


def reset_names() -> None:
    """Restart automatic names (conv2d, conv2d_1, ...) from scratch."""
    _name_counts.clear()
    _names_taken.clear()


def _keras_layout_hint(ours, given) -> str:
    """Keras stores kernels as (kh, kw, in, out) and Dense kernels as (in, out); ours are
    PyTorch's (out, in, kh, kw) and (out, in)."""
    ours, given = tuple(ours), tuple(given)
    if len(ours) == 4 and given == (ours[2], ours[3], ours[1], ours[0]):
        return " (a Keras-layout kernel: pass kernel.transpose(3, 2, 0, 1))"
    if len(ours) == 2 and given == ours[::-1]:
        return " (a Keras-layout Dense kernel: pass kernel.T)"
    return ""


def to_device(array, device: str):
    """``array`` as a numpy ("cpu") or cupy ("gpu") array (no copy when already there)."""
    if device == "cpu":
        return array.get() if backend.is_gpu_array(array) else array
    if device == "gpu":
        cp = backend._cupy()
        if cp is None or backend.gpu_count() == 0:
            raise RuntimeError(f"cannot move to the GPU: {backend.availability()['cupy']}")
        return cp.asarray(array)
    raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")


def _shape_tuple(shape, what="input_shape"):
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if dims is None or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in dims):
        raise TypeError(f"{what} must be a tuple of ints (without the batch axis), got {shape!r}")
    shape = tuple(int(d) for d in dims)
    if any(d <= 0 for d in shape):
        raise ValueError(f"{what} must have positive sizes, got {shape}")
    return shape


def check_channels_first(shape, data_format, what, signals=False, data=True):
    """cudacnn is channels-first. Keras' default is channels-last, so a Keras-style
    ``input_shape=(32, 32, 3)`` would silently build a net for 32 channels of 32x3
    images: such shapes are refused with the fix, unless ``data_format="channels_first"``
    says they are meant. ``signals``: also (steps, channels) shapes of 1-D inputs (Conv1D).
    ``data``: the shape describes the data (so the fix includes a transpose)."""
    if data_format not in (None, "channels_first", "channels_last"):
        raise ValueError(f"data_format must be 'channels_first', got {data_format!r}")
    if data_format == "channels_last":
        raise ValueError("cudacnn layers are channels-first (N, C, H, W): give input_shape as (C, H, W) and "
                         "transpose channels-last data with x.transpose(0, 3, 1, 2)")
    if data_format is not None or shape is None:
        return
    shape = tuple(shape)
    if len(shape) == 3 and shape[2] in (1, 3, 4) and min(shape[:2]) >= 8:
        meant, reading, axes = f"{shape[0]}x{shape[1]} images with {shape[2]} channel(s)", \
            f"{shape[0]} channels of {shape[1]}x{shape[2]} images", "0, 3, 1, 2"
    elif signals and len(shape) == 2 and shape[1] <= 4 and shape[0] >= 8:
        meant, reading, axes = f"signals of {shape[0]} steps with {shape[1]} channel(s)", \
            f"{shape[0]} channels of length {shape[1]}", "0, 2, 1"
    else:
        return
    fix = (shape[-1], *shape[:-1])
    raise ValueError(f"{what}={shape} reads as {reading}: cudacnn is channels-first, unlike Keras' default. "
                     f"For {meant} use {what}={fix}" + (f" and x.transpose({axes})" if data else "")
                     + f"; if {shape[0]} channels are meant, add data_format='channels_first'")


class SymbolicTensor:
    """A placeholder flowing through the functional API: a shape (batch first, None) and its producer."""

    def __init__(self, shape, layer, inputs, multi_input=False, training=None):
        self.shape = (None, *shape)
        self.layer = layer
        self.inputs = list(inputs)
        self.multi_input = multi_input  # the layer was called with a list
        self.training = training  # None: the model's mode; False/True: fixed by the call, as Keras

    def __repr__(self):
        return f"<SymbolicTensor shape={self.shape} from {self.layer.name!r}>"


class Layer:
    """Base class: params (trainable arrays), state (non-trainable), grads, config."""

    def __init__(self, name=None, trainable=True, input_shape=None, data_format=None, **kwargs):
        input_dim = kwargs.pop("input_dim", None)
        batch_input_shape = kwargs.pop("batch_input_shape", None)
        kwargs.pop("dtype", None)  # float32 everywhere; accepted for Keras-config compatibility
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(kwargs)}")
        if input_shape is None and batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_shape is None and input_dim is not None:
            input_shape = (input_dim,)
        self.name = take_name(name) if name else unique_name(to_snake_case(type(self).__name__))
        self.trainable = check.flag(self.name, "trainable", trainable)  # bool("no") would be True
        self.params: dict = {}
        self.state: dict = {}
        self.grads: dict = {}
        self.regularizers: dict = {}  # param name -> Regularizer (kernel_regularizer=, bias_regularizer=)
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._declared_input_shape = None if input_shape is None else _shape_tuple(input_shape)
        check_channels_first(self._declared_input_shape, data_format, "input_shape")
        self.data_format = data_format
        self._emit_logits = False  # set by the training loop for the fused softmax-CE path
        self._need_dx = True  # cleared by a model when nothing below this layer needs gradients

    # ----- building -------------------------------------------------------------------------
    def build(self, input_shape):
        """Create weights for a per-sample ``input_shape``. Default: none."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def ensure_built(self, input_shape, device="cpu"):
        if not self.built:
            self.build(input_shape)
            for store in (self.params, self.state):
                for key, value in store.items():
                    store[key] = to_device(value, device)
            self.built = True
        out_shape = self.compute_output_shape(input_shape)
        self.input_shape = _with_batch(input_shape)
        self.output_shape = _with_batch(out_shape)
        return out_shape

    def set_regularizers(self, **by_param):
        """``set_regularizers(kernel=..., bias=...)``: penalties on those weights (see regularizers)."""
        self.regularizers = {name: reg for name, reg in
                             ((name, regularizers_module.get(r)) for name, r in by_param.items()) if reg is not None}

    def regularization_penalty(self, add_gradients=False):
        """The sum of this layer's weight penalties (0.0 without any); with ``add_gradients``
        their gradients also join ``self.grads``."""
        total = 0.0
        for name, reg in self.regularizers.items():
            if name not in self.params:
                continue
            total = total + reg.penalty(self.params[name])
            if add_gradients and name in self.grads:
                self.grads[name] = self.grads[name] + reg.gradient(self.params[name])
        return total

    def add_weight(self, name, shape, initializer="zeros", trainable=True):
        allowed = _allowed_weight_shapes.get()
        if allowed is not None:
            wanted = tuple(int(d) for d in shape)
            if allowed[wanted] <= 0:
                raise ValueError(f"layer {self.name!r} would get a {name} of shape {wanted}, but the file "
                                 "holds no (further) tensor of that shape")
            allowed[wanted] -= 1
        value = initializers.initialize(initializer, shape, what=f"layer {self.name!r} weight {name!r}")
        (self.params if trainable else self.state)[name] = value
        return value

    # ----- calling --------------------------------------------------------------------------
    def __call__(self, inputs, training=None):
        """On arrays: the forward (inference unless ``training``). On symbolic tensors: a graph
        node; ``training=False`` there keeps this layer (a base model's BatchNormalization)
        in inference mode even while the model trains, as in Keras' fine-tuning recipe."""
        if training is not None:
            training = check.flag(self.name, "training", training)
        items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        if any(isinstance(t, SymbolicTensor) for t in items):
            if not all(isinstance(t, SymbolicTensor) for t in items):
                raise TypeError(f"{self.name}: cannot mix symbolic tensors and arrays as inputs")
            shapes = [t.shape[1:] for t in items]
            in_shape = shapes if isinstance(inputs, (list, tuple)) else shapes[0]
            out_shape = self.ensure_built(in_shape)
            multi = isinstance(inputs, (list, tuple))
            if isinstance(out_shape, list):
                raise ValueError(f"{self.name}: layers with several outputs cannot be called symbolically")
            self._symbolic_input = inputs
            self._symbolic_output = SymbolicTensor(out_shape, self, items, multi_input=multi, training=training)
            return self._symbolic_output
        if not all(hasattr(a, "shape") and len(a.shape) >= 2 for a in items):
            raise TypeError(f"{self.name}: call a layer on numpy/cupy arrays with a batch axis, or on "
                            f"symbolic tensors; got {[type(a).__name__ for a in items]}")
        shapes = [tuple(a.shape[1:]) for a in items]
        in_shape = shapes if isinstance(inputs, (list, tuple)) else shapes[0]
        self.ensure_built(in_shape, "gpu" if backend.is_gpu_array(items[0]) else "cpu")
        return self.forward(inputs, training=bool(training))

    def forward(self, x, training=False):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    @property
    def input(self):
        """The symbolic tensor(s) this layer was last called on (Keras' ``layer.input``)."""
        return self._symbolic("_symbolic_input")

    @property
    def output(self):
        """The symbolic tensor this layer last produced, e.g. ``Model(base.input, layer.output)``."""
        return self._symbolic("_symbolic_output")

    def _symbolic(self, attribute):
        value = getattr(self, attribute, None)
        if value is None:
            raise AttributeError(f"layer {self.name!r} has not been called on a symbolic input "
                                 "(Input(...) or a model's graph), so it has no symbolic input/output")
        return value

    # ----- weights --------------------------------------------------------------------------
    @property
    def weights(self):
        return [v for _, v in self.weight_items()]

    @property
    def trainable_weights(self):
        return list(self.params.values()) if self.trainable else []

    @property
    def non_trainable_weights(self):
        return (list(self.state.values()) if self.trainable
                else [*self.params.values(), *self.state.values()])

    def count_params(self) -> int:
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: give input_shape or call it on data")
        return int(sum(int(np.prod(v.shape)) for v in (*self.params.values(), *self.state.values())))

    def count_trainable_params(self) -> int:
        if not self.trainable:
            return 0
        return int(sum(int(np.prod(v.shape)) for v in self.params.values()))

    def weight_items(self):
        """(key, array) pairs: params then state, in creation order."""
        return [*self.params.items(), *self.state.items()]

    def get_weights(self):
        return [to_device(v, "cpu").copy() for _, v in self.weight_items()]

    def set_weights(self, weights):
        items = self.weight_items()
        if len(weights) != len(items):
            raise ValueError(f"layer {self.name!r} expects {len(items)} weight arrays, got {len(weights)}")
        weights = [w if hasattr(w, "shape") else np.asarray(w, dtype=np.float32) for w in weights]
        for (key, old), new in zip(items, weights):
            if tuple(new.shape) != tuple(old.shape):
                raise ValueError(f"layer {self.name!r} weight {key!r}: expected shape {tuple(old.shape)}, "
                                 f"got {tuple(new.shape)}{_keras_layout_hint(old.shape, new.shape)}")
        for (key, old), new in zip(items, weights):
            store = self.params if key in self.params else self.state
            value = to_device(new, "gpu" if backend.is_gpu_array(old) else "cpu")
            store[key] = value.astype(old.dtype, copy=True)

    def to(self, device):
        for store in (self.params, self.state):
            for key, value in store.items():
                store[key] = to_device(value, device)
        self.grads = {}
        return self

    def astype(self, dtype):
        """Cast weights (e.g. to float64 for gradient checks)."""
        for store in (self.params, self.state):
            for key, value in store.items():
                store[key] = value.astype(dtype)
        return self

    # ----- config ---------------------------------------------------------------------------
    def get_config(self) -> dict:
        config = {"name": self.name, "trainable": self.trainable}
        if self._declared_input_shape is not None:
            config["input_shape"] = list(self._declared_input_shape)
        if self.data_format is not None:
            config["data_format"] = self.data_format
        for name, reg in self.regularizers.items():
            config[f"{name}_regularizer"] = regularizers_module.serialize(reg)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


def _with_batch(shape):
    if isinstance(shape, list):
        return [(None, *s) for s in shape]
    return (None, *shape)


class InputLayer(Layer):
    """The source of a functional graph; holds no weights."""

    def __init__(self, shape=None, name=None, input_shape=None, data_format=None, **kwargs):
        shape = shape if shape is not None else input_shape
        if shape is None:
            raise ValueError("InputLayer needs shape=(C, H, W) (without the batch axis)")
        super().__init__(name=name or unique_name("input"), **kwargs)
        self.shape = _shape_tuple(shape, "shape")
        check_channels_first(self.shape, data_format, "shape")
        self.data_format = data_format
        self.ensure_built(self.shape)
        self.output_tensor = SymbolicTensor(self.shape, self, [])

    def forward(self, x, training=False):
        return x

    def backward(self, dy):
        return dy

    @property
    def output(self):
        return self.output_tensor

    def get_config(self):
        config = {"name": self.name, "shape": list(self.shape)}
        if self.data_format is not None:
            config["data_format"] = self.data_format
        return config


def Input(shape, name=None, data_format=None):
    """A symbolic input for the functional API; ``shape`` excludes the batch axis (channels first)."""
    return InputLayer(shape=shape, name=name, data_format=data_format).output_tensor


def trusted_input(shape, name=None, data_format=None):
    """An Input for a shape known to be channels-first (a checked layer's, a saved model's):
    not checked again, and its config keeps the ``data_format`` given (None: as the user left it)."""
    layer = InputLayer(shape=shape, name=name, data_format="channels_first")
    layer.data_format = data_format
    return layer.output_tensor
