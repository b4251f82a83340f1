"""Add and Concatenate: multi-input layers taking and returning lists, and Keras' functional
spellings ``add([a, b])`` and ``concatenate([a, b], axis=1)``."""
from __future__ import annotations

import warnings

from .. import backend
from ..ops import _validate as check
from .base import Layer


def _check_list(layer, inputs):
    if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
        raise TypeError(f"{layer.name}: {type(layer).__name__} takes a list of at least 2 inputs")


def _check_batches(layer, inputs):
    """Per-sample shapes are checked at build; the batch sizes must agree too (as in Keras),
    or NumPy would broadcast one sample across the batch."""
    _check_list(layer, inputs)
    sizes = [x.shape[0] for x in inputs]
    if len(set(sizes)) > 1:
        raise ValueError(f"{layer.name}: {type(layer).__name__} got inputs of different batch sizes {sizes} "
                         f"(shapes {[tuple(x.shape) for x in inputs]})")


class Add(Layer):
    def compute_output_shape(self, input_shape):
        _check_list(self, input_shape)
        first = tuple(input_shape[0])
        for shape in input_shape[1:]:
            if tuple(shape) != first:
                raise ValueError(f"{self.name}: Add needs equal shapes, got {[tuple(s) for s in input_shape]}")
        return first

    def forward(self, inputs, training=False):
        _check_batches(self, inputs)
        self._count = len(inputs)
        out = inputs[0] + inputs[1]
        for x in inputs[2:]:
            out += x
        return out

    def backward(self, dy):
        # The same array for every branch: the graph accumulates with out-of-place adds.
        return [dy] * self._count


class Concatenate(Layer):
    """Join along ``axis`` (default 1, the channel axis in channels-first layout)."""

    def __init__(self, axis=1, **kwargs):
        super().__init__(**kwargs)
        if not check.is_int(axis):  # int() would turn 1.5 into 1 and True into 1
            raise TypeError(f"{self.name}: Concatenate axis must be an int, got {axis!r}")
        if axis == 0:
            raise ValueError("Concatenate cannot join along the batch axis 0")
        self.axis = int(axis)

    def compute_output_shape(self, input_shape):
        _check_list(self, input_shape)
        rank = len(input_shape[0])
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis
        if not 0 <= axis < rank:
            raise ValueError(f"{self.name}: axis {self.axis} out of range for inputs of rank {rank + 1}")
        shapes = [tuple(s) for s in input_shape]
        # Keras joins channels along its last axis (-1, or 3 for images); here they are axis 1.
        keras_habit = rank == 3 and self.axis in (-1, 3)
        hint = (" (cudacnn is channels-first: feature maps join their channels along axis=1, Keras' "
                "default axis=-1 is the width here)") if keras_habit else ""
        for shape in shapes:
            if len(shape) != rank or any(shape[i] != shapes[0][i] for i in range(rank) if i != axis):
                raise ValueError(f"{self.name}: shapes {shapes} differ outside the concat axis {self.axis}{hint}")
        if keras_habit:
            warnings.warn(f"{self.name}: joining feature maps along axis {self.axis}, their width{hint}",
                          stacklevel=3)
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def forward(self, inputs, training=False):
        _check_batches(self, inputs)
        xp = backend.get_array_module(*inputs)
        self._sizes = [x.shape[self.axis] for x in inputs]
        return xp.concatenate(inputs, axis=self.axis)

    def backward(self, dy):
        xp = backend.get_array_module(dy)
        bounds, total = [], 0
        for size in self._sizes[:-1]:
            total += size
            bounds.append(total)
        return [xp.ascontiguousarray(part) for part in xp.split(dy, bounds, axis=self.axis)]

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    """``Add(**kwargs)(inputs)``, Keras' functional spelling."""
    return Add(**kwargs)(inputs)


def concatenate(inputs, axis=1, **kwargs):
    """``Concatenate(axis, **kwargs)(inputs)``, Keras' functional spelling (channels-first: axis 1)."""
    return Concatenate(axis=axis, **kwargs)(inputs)
