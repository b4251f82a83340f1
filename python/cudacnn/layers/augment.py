"""Data augmentation as layers, active only in training (identity at inference, except
RandomCrop which centre-crops). Random draws come from ``cudacnn.random`` (per-sample
parameters on the CPU, a handful of numbers per image) and the image work runs with
the data's array module, on the data's device.

Geometric layers (translation, rotation, zoom) resample through one affine map per
image with Keras' fill modes ("reflect", "constant", "nearest", "wrap") and
"bilinear" or "nearest" interpolation; their backward scatters the gradient back.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from ..ops import _validate as check
from .. import random as _random
from .base import Layer

FILL_MODES = ("reflect", "constant", "nearest", "wrap")


def _check_image(layer, input_shape):
    if len(input_shape) != 3:
        raise ValueError(f"{layer.name}: expects per-sample images (C, H, W), got {tuple(input_shape)}")


def _factor_range(factor, what):
    if check.is_real(factor):
        factor = check.real("augmentation", what, factor)
        low, high = -abs(factor), abs(factor)
    else:
        try:
            low, high = (check.real("augmentation", what, f) for f in factor)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{what} must be a number or a (lower, upper) pair of numbers, got {factor!r}") from error
    if low > high:
        raise ValueError(f"{what}: lower bound {low} exceeds upper bound {high}")
    if abs(low) > 1 or abs(high) > 1:
        raise ValueError(f"{what} must lie within [-1, 1], got ({low}, {high})")
    return low, high


def _scatter_add(xp, target, index, values):
    if xp is np:
        np.add.at(target, index, values)
    else:
        import cupyx
        cupyx.scatter_add(target, index, values)


def _fill_index(index, size, mode, xp):
    """Map integer sample positions into [0, size) by the fill mode; valid mask for "constant"."""
    if mode == "reflect":  # d c b a | a b c d | d c b a
        period = 2 * size
        index = index % period
        return xp.where(index >= size, period - 1 - index, index), None
    if mode == "wrap":
        return index % size, None
    valid = (index >= 0) & (index < size)
    return xp.clip(index, 0, size - 1), (valid if mode == "constant" else None)


class _Random(Layer):
    def forward(self, x, training=False):
        self._active = bool(training)
        return self._augment(x) if self._active else x

    def backward(self, dy):
        return self._augment_backward(dy) if self._active else dy


class RandomFlip(_Random):
    """mode: "horizontal", "vertical" or "horizontal_and_vertical" (each flip with probability 1/2)."""

    def __init__(self, mode="horizontal_and_vertical", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(f"RandomFlip mode must be 'horizontal', 'vertical' or 'horizontal_and_vertical', "
                             f"got {mode!r}")
        self.mode = mode

    def compute_output_shape(self, input_shape):
        _check_image(self, input_shape)
        return input_shape

    def _augment(self, x):
        xp = backend.get_array_module(x)
        n = x.shape[0]
        gen = _random.generator()
        self._flips = []
        if self.mode in ("horizontal", "horizontal_and_vertical"):
            self._flips.append((3, xp.asarray(gen.random(n) < 0.5).reshape(n, 1, 1, 1)))
        if self.mode in ("vertical", "horizontal_and_vertical"):
            self._flips.append((2, xp.asarray(gen.random(n) < 0.5).reshape(n, 1, 1, 1)))
        return self._apply(x, self._flips)

    @staticmethod
    def _apply(x, flips):
        xp = backend.get_array_module(x)
        for axis, mask in flips:
            x = xp.where(mask, xp.flip(x, axis=axis), x)
        return x

    def _augment_backward(self, dy):
        return self._apply(dy, list(reversed(self._flips)))

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class GaussianNoise(_Random):
    """Add zero-mean Gaussian noise of ``stddev`` while training."""

    def __init__(self, stddev, **kwargs):
        super().__init__(**kwargs)
        self.stddev = check.real(self.name, "GaussianNoise stddev", stddev, 0.0)

    def _augment(self, x):
        xp = backend.get_array_module(x)
        if xp is np:
            noise = _random.generator().standard_normal(x.shape)
        else:
            noise = xp.random.RandomState(_random.next_seed()).standard_normal(x.shape, dtype=x.dtype)
        return x + (self.stddev * noise).astype(x.dtype)

    def _augment_backward(self, dy):
        return dy

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


class _Affine(_Random):
    def __init__(self, fill_mode="reflect", interpolation="bilinear", fill_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
        self.fill_mode = fill_mode
        self.interpolation = interpolation
        self.fill_value = float(fill_value)

    def compute_output_shape(self, input_shape):
        _check_image(self, input_shape)
        return input_shape

    def _transforms(self, n, height, width):
        """(matrices (n, 2, 2), offsets (n, 2)): source = M @ (p - centre) + centre + offset."""
        raise NotImplementedError

    def _augment(self, x):
        xp = backend.get_array_module(x)
        n, c, h, w = x.shape
        mats, offsets = self._transforms(n, h, w)
        mats, offsets = xp.asarray(mats, dtype=x.dtype), xp.asarray(offsets, dtype=x.dtype)
        ys, xs = xp.meshgrid(xp.arange(h, dtype=x.dtype) - (h - 1) / 2,
                             xp.arange(w, dtype=x.dtype) - (w - 1) / 2, indexing="ij")
        src = mats @ xp.stack([ys.ravel(), xs.ravel()])  # (n, 2, h*w)
        src_y = src[:, 0] + (h - 1) / 2 + offsets[:, :1]
        src_x = src[:, 1] + (w - 1) / 2 + offsets[:, 1:]
        if self.interpolation == "nearest":
            corners = [(xp.floor(src_y + 0.5), xp.floor(src_x + 0.5), None)]
        else:
            y0, x0 = xp.floor(src_y), xp.floor(src_x)
            wy, wx = src_y - y0, src_x - x0
            corners = [(y0, x0, (1 - wy) * (1 - wx)), (y0, x0 + 1, (1 - wy) * wx),
                       (y0 + 1, x0, wy * (1 - wx)), (y0 + 1, x0 + 1, wy * wx)]
        flat = x.reshape(n, c, h * w)
        batch = xp.arange(n)[:, None, None]
        channel = xp.arange(c)[None, :, None]
        out = xp.zeros_like(flat)
        covered = xp.zeros((n, h * w), dtype=x.dtype)
        self._taps = []
        for yi, xi, weight in corners:
            yi, valid_y = _fill_index(yi.astype(xp.int64), h, self.fill_mode, xp)
            xi, valid_x = _fill_index(xi.astype(xp.int64), w, self.fill_mode, xp)
            weight = xp.ones_like(src_y) if weight is None else weight
            if valid_y is not None:
                weight = weight * (valid_y & valid_x)
            index = (yi * w + xi)[:, None, :]
            out += flat[batch, channel, index] * weight[:, None, :]
            covered += weight
            self._taps.append((index, weight))
        if self.fill_mode == "constant" and self.fill_value:
            out += (self.fill_value * (1 - covered))[:, None, :]
        self._shape = x.shape
        return out.reshape(x.shape)

    def _augment_backward(self, dy):
        xp = backend.get_array_module(dy)
        n, c, h, w = self._shape
        flat_dy = dy.reshape(n, c, h * w)
        dx = xp.zeros_like(flat_dy)
        batch = xp.broadcast_to(xp.arange(n)[:, None, None], flat_dy.shape)
        channel = xp.broadcast_to(xp.arange(c)[None, :, None], flat_dy.shape)
        for index, weight in self._taps:
            _scatter_add(xp, dx, (batch, channel, xp.broadcast_to(index, flat_dy.shape)),
                         flat_dy * weight[:, None, :])
        return dx.reshape(self._shape)

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}


class RandomTranslation(_Affine):
    """Shift by a fraction of the height/width drawn from [-f, f] (or the (lower, upper) given)."""

    def __init__(self, height_factor, width_factor, **kwargs):
        super().__init__(**kwargs)
        self.height_factor = _factor_range(height_factor, "height_factor")
        self.width_factor = _factor_range(width_factor, "width_factor")

    def _transforms(self, n, height, width):
        gen = _random.generator()
        dy = gen.uniform(*self.height_factor, size=n) * height
        dx = gen.uniform(*self.width_factor, size=n) * width
        return np.broadcast_to(np.eye(2), (n, 2, 2)), -np.stack([dy, dx], axis=1)

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": list(self.width_factor)}


class RandomRotation(_Affine):
    """Rotate by an angle drawn from [-f, f] * 2*pi (Keras' ``factor`` as a fraction of a turn);
    positive angles turn the image counter-clockwise, as in Keras."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = _factor_range(factor, "factor")

    def _transforms(self, n, height, width):
        angle = _random.generator().uniform(*self.factor, size=n) * 2 * math.pi
        cos, sin = np.cos(angle), np.sin(angle)
        # Output pixel (row, col) offsets from the centre sample the input at R(-angle) of them:
        # rows grow downwards, so this turns the picture counter-clockwise.
        mats = np.stack([np.stack([cos, sin], 1), np.stack([-sin, cos], 1)], 1)
        return mats, np.zeros((n, 2))

    def get_config(self):
        return {**super().get_config(), "factor": list(self.factor)}


class RandomZoom(_Affine):
    """Zoom by 1 + a factor drawn from [-f, f]; positive zooms out, negative zooms in (Keras).
    Without ``width_factor`` both axes share one zoom (aspect kept)."""

    def __init__(self, height_factor, width_factor=None, **kwargs):
        super().__init__(**kwargs)
        self.height_factor = _factor_range(height_factor, "height_factor")
        self.width_factor = None if width_factor is None else _factor_range(width_factor, "width_factor")

    def _transforms(self, n, height, width):
        gen = _random.generator()
        zoom_y = 1.0 + gen.uniform(*self.height_factor, size=n)
        zoom_x = zoom_y if self.width_factor is None else 1.0 + gen.uniform(*self.width_factor, size=n)
        mats = np.zeros((n, 2, 2))
        mats[:, 0, 0], mats[:, 1, 1] = zoom_y, zoom_x
        return mats, np.zeros((n, 2))

    def get_config(self):
        return {**super().get_config(), "height_factor": list(self.height_factor),
                "width_factor": None if self.width_factor is None else list(self.width_factor)}


class RandomCrop(Layer):
    """Crop a random ``height`` x ``width`` window while training, the centre one at inference."""

    def __init__(self, height, width, **kwargs):
        super().__init__(**kwargs)
        self.height = check.integer(self.name, "RandomCrop height", height, minimum=1)
        self.width = check.integer(self.name, "RandomCrop width", width, minimum=1)

    def compute_output_shape(self, input_shape):
        _check_image(self, input_shape)
        c, h, w = input_shape
        if h < self.height or w < self.width:
            raise ValueError(f"{self.name}: cannot crop {self.height}x{self.width} from {h}x{w} images")
        return (c, self.height, self.width)

    def forward(self, x, training=False):
        xp = backend.get_array_module(x)
        n, c, h, w = x.shape
        self._shape = x.shape
        if training:
            gen = _random.generator()
            top = gen.integers(0, h - self.height + 1, size=n)
            left = gen.integers(0, w - self.width + 1, size=n)
        else:
            top = np.full(n, (h - self.height) // 2)
            left = np.full(n, (w - self.width) // 2)
        rows = xp.asarray(top[:, None] + np.arange(self.height))[:, None, :, None]
        cols = xp.asarray(left[:, None] + np.arange(self.width))[:, None, None, :]
        self._index = (xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None], rows, cols)
        return x[self._index]

    def backward(self, dy):
        xp = backend.get_array_module(dy)
        dx = xp.zeros(self._shape, dtype=dy.dtype)
        dx[self._index] = dy  # windows never overlap within one image: plain assignment suffices
        return dx

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}
