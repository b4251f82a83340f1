"""Real-time image augmentation on the host: ``ImageDataGenerator``, mirroring Keras's
``tf.keras.preprocessing.image.ImageDataGenerator`` (same arguments and meaning).

``flow(x, y)`` gives a ``NumpyArrayIterator`` of augmented ``(x, y)`` batches for ``model.fit``:
a Keras-style Sequence that is also an endless iterator, reshuffled every pass.
``flow_from_directory(dir)`` gives a ``DirectoryIterator`` that reads image files, one subfolder
per class, with Pillow (``load_img``, ``img_to_array`` and ``array_to_img`` come from
``cudacnn.image_files``, channels-first). As in Keras the work is NumPy on the CPU, batch by
batch: one bilinear affine resample per image (rotation, shift, shear, zoom), the flips, then
``standardize``. Draws come from ``cudacnn.random``
(``cudacnn.set_seed`` repeats a run) unless a ``seed`` is given. Where Keras versions disagree
this follows Keras's documentation: width_shift_range moves images sideways, height_shift_range
up and down, positive angles turn counter-clockwise about the true centre, "wrap" tiles.
"""
from __future__ import annotations

import math
import numbers
import os
import warnings

import numpy as np

from . import backend
from . import image_files as _files
from . import random as _random
from .image_files import array_to_img, img_to_array, load_img
from .layers.augment import FILL_MODES, _fill_index

__all__ = ["ImageDataGenerator", "Iterator", "NumpyArrayIterator", "DirectoryIterator", "load_img",
           "img_to_array", "array_to_img"]

_DEFAULTS = {"theta": 0.0, "tx": 0.0, "ty": 0.0, "shear": 0.0, "zx": 1.0, "zy": 1.0,
             "flip_horizontal": False, "flip_vertical": False}


def _number(value, name, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or (minimum is not None and value < minimum):
        need = "a finite number" if minimum is None else f"a number >= {minimum}"
        raise ValueError(f"{name} must be {need}, got {value!r}")
    return value


def _shift_spec(value, name):
    """Keras's shift ranges: int n -> whole pixels in (-n, n); float f -> uniform in [-f, f]
    (a fraction of the size when f < 1); a 1-D list -> one of its values, random sign."""
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            values = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            values = np.zeros(0)
        if values.ndim != 1 or values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError(f"{name} must be a number or a non-empty 1-D list of numbers, got {value!r}")
        return "choice", values
    _number(value, name, 0)
    return ("int", int(value)) if isinstance(value, (int, np.integer)) else ("float", float(value))


def _draw_shift(rng, spec, size):
    kind, value = spec
    if kind == "choice":
        shift = rng.choice(value) * rng.choice([-1, 1])
        return shift * size if np.max(value) < 1 else shift
    if not value:
        return 0.0
    if kind == "int":
        return float(rng.integers(0, value) * rng.choice([-1, 1]))
    return rng.uniform(-value, value) * (size if value < 1 else 1)


def _zoom_range(zoom_range):
    if isinstance(zoom_range, numbers.Real) and not isinstance(zoom_range, bool):
        z = _number(zoom_range, "zoom_range", 0)
        low, high = 1.0 - z, 1.0 + z
    else:
        try:
            low, high = (float(v) for v in zoom_range)
        except (TypeError, ValueError):
            raise ValueError(f"zoom_range must be a float or a (lower, upper) pair, got {zoom_range!r}") from None
    if not (0 < low <= high and math.isfinite(high)):
        raise ValueError(f"zoom_range must give zooms 0 < lower <= upper, got {zoom_range!r} -> ({low}, {high})")
    return low, high


def _source_coords(p, h, w):
    """Where each output pixel samples the input: (rows, cols), each (n, h*w). Keras's
    ``apply_affine_transform`` in (x=col, y=row) coordinates about the image centre c:
    source = R(theta) @ (S(shear) @ Z(zx, zy) @ (out - c) + (tx, ty)) + c."""
    theta, shear = np.deg2rad(p["theta"]), np.deg2rad(p["shear"])
    cos, sin = np.cos(theta), np.sin(theta)
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear_zoom = np.zeros_like(rot)
    shear_zoom[:, 0, 0] = p["zx"]
    shear_zoom[:, 0, 1] = -np.sin(shear) * p["zy"]
    shear_zoom[:, 1, 1] = np.cos(shear) * p["zy"]
    ys, xs = np.mgrid[0:h, 0:w]
    grid = np.stack([xs.ravel() - (w - 1) / 2, ys.ravel() - (h - 1) / 2]).astype(np.float64)
    src = rot @ shear_zoom @ grid + (rot @ np.stack([p["tx"], p["ty"]], -1)[..., None])
    return src[:, 1] + (h - 1) / 2, src[:, 0] + (w - 1) / 2


def _bilinear(x, rows, cols, fill_mode, cval):
    """Sample (n, c, h, w) images at float positions (n, p) bilinearly, vectorised over the batch.
    "constant" gives cval to samples outside the image, as scipy.ndimage's "constant" mode."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    index_mode = "nearest" if fill_mode == "constant" else fill_mode
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = (rows - r0).astype(x.dtype), (cols - c0).astype(x.dtype)
    r0, c0 = r0.astype(np.int64), c0.astype(np.int64)
    out = np.zeros((n, c, rows.shape[1]), dtype=x.dtype)
    for dr, wr in ((0, 1 - fr), (1, fr)):
        ri = _fill_index(r0 + dr, h, index_mode, np)[0]
        for dc, wc in ((0, 1 - fc), (1, fc)):
            ci = _fill_index(c0 + dc, w, index_mode, np)[0]
            out += np.take_along_axis(flat, (ri * w + ci)[:, None, :], axis=2) * (wr * wc)[:, None, :]
    if fill_mode == "constant":
        tol = 1e-6
        outside = (rows < -tol) | (rows > h - 1 + tol) | (cols < -tol) | (cols > w - 1 + tol)
        out[np.broadcast_to(outside[:, None, :], out.shape)] = cval
    return out.reshape(n, c, h, w)


def _host_array(a, dtype=None):
    return np.asarray(a.get() if backend.is_gpu_array(a) else a, dtype=dtype)


class ImageDataGenerator:
    """Augment and normalise batches of images on the fly, with Keras's arguments and meaning.

    rotation_range: degrees; each image turns by an angle from U(-r, r), positive counter-clockwise.
    width_shift_range, height_shift_range: float < 1: fraction of the width/height; float >= 1:
        pixels, from U(-f, f); int n: whole pixels in (-n, n); 1-D list: one of its values with a
        random sign. shear_range: degrees (counter-clockwise). zoom_range: float z -> [1-z, 1+z],
        or (lower, upper); each axis draws its own zoom, > 1 zooms out.
    horizontal_flip, vertical_flip: flip each image with probability 1/2.
    fill_mode: "nearest" (aaa|abcd|ddd), "constant" (kkk|abcd|kkk, k = cval), "reflect"
        (dcba|abcd|dcba) or "wrap" (abcd|abcd|abcd) for points outside the image.
    rescale: factor the images are multiplied by (after augmentation).
    preprocessing_function: called on each augmented image (rank 3, same shape out), first of all
        in ``standardize``. samplewise_center / samplewise_std_normalization: per image.
    featurewise_center / featurewise_std_normalization: per channel, with statistics from ``fit(x)``.
    validation_split: fraction held out; ``flow(..., subset="validation")`` gives the first
        ``int(n * validation_split)`` images and ``subset="training"`` the rest (as Keras);
        ``flow_from_directory`` splits each class's sorted files that way.
    data_format: "channels_first" (N, C, H, W; cudacnn's layout, the default) or "channels_last"
        (N, H, W, C; Keras's default). Data is taken and batches are yielded in this layout, so
        with "channels_last" the model must be built for (H, W, C) inputs: that is up to you.
    dtype: float dtype of the yielded images (float32).
    """

    def __init__(self, featurewise_center=False, samplewise_center=False,
                 featurewise_std_normalization=False, samplewise_std_normalization=False,
                 rotation_range=0, width_shift_range=0.0, height_shift_range=0.0, shear_range=0.0,
                 zoom_range=0.0, fill_mode="nearest", cval=0.0, horizontal_flip=False,
                 vertical_flip=False, rescale=None, preprocessing_function=None,
                 data_format="channels_first", validation_split=0.0, dtype="float32"):
        self.rotation_range = float(_number(rotation_range, "rotation_range", 0))
        self.shear_range = float(_number(shear_range, "shear_range", 0))
        self.width_shift_range, self.height_shift_range = width_shift_range, height_shift_range
        self._width_shift = _shift_spec(width_shift_range, "width_shift_range")
        self._height_shift = _shift_spec(height_shift_range, "height_shift_range")
        self.zoom_range = _zoom_range(zoom_range)
        if fill_mode not in FILL_MODES:
            raise ValueError(f"fill_mode must be one of {FILL_MODES}, got {fill_mode!r}")
        self.fill_mode, self.cval = fill_mode, float(_number(cval, "cval"))
        self.horizontal_flip, self.vertical_flip = bool(horizontal_flip), bool(vertical_flip)
        self.rescale = None if rescale is None else float(_number(rescale, "rescale"))
        if preprocessing_function is not None and not callable(preprocessing_function):
            raise ValueError(f"preprocessing_function must be callable, got {preprocessing_function!r}")
        self.preprocessing_function = preprocessing_function
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}")
        self.data_format = data_format
        self.channel_axis, self.row_axis, self.col_axis = (1, 2, 3) if data_format == "channels_first" else (3, 1, 2)
        if not 0 <= _number(validation_split, "validation_split") < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
        self.validation_split = float(validation_split)
        if dtype not in ("float16", "float32", "float64", np.float16, np.float32, np.float64):
            raise ValueError(f"dtype must be a float dtype, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        self.featurewise_center, self.featurewise_std_normalization = bool(featurewise_center), bool(
            featurewise_std_normalization)
        self.samplewise_center, self.samplewise_std_normalization = bool(samplewise_center), bool(
            samplewise_std_normalization)
        for kind in ("featurewise", "samplewise"):  # Keras: the std normalisation implies centring
            if getattr(self, f"{kind}_std_normalization") and not getattr(self, f"{kind}_center"):
                setattr(self, f"{kind}_center", True)
                warnings.warn(f"{kind}_std_normalization also turns on {kind}_center", stacklevel=2)
        self.mean = self.std = None

    def _images(self, x, what):
        x = _host_array(x, self.dtype)
        if x.ndim != 4:
            layout = "(N, C, H, W)" if self.data_format == "channels_first" else "(N, H, W, C)"
            raise ValueError(f"{what} must be a 4-D batch of images {layout}, got shape {x.shape}")
        other_axis = 3 if self.channel_axis == 1 else 1  # the channels axis of the other layout
        if x.shape[self.channel_axis] not in (1, 3, 4) and x.shape[other_axis] in (1, 3, 4) \
                and x.shape[other_axis] < x.shape[self.channel_axis]:
            warnings.warn(f"{what} of shape {x.shape} has {x.shape[self.channel_axis]} channels on axis "
                          f"{self.channel_axis}; is data_format={self.data_format!r} right?", stacklevel=3)
        return x

    def _check_fitted_channels(self, x, what):
        """fit() keeps one mean/std per channel: images with another channel count would fail to
        broadcast mid-flow or, fitted on one channel, all share that channel's statistics."""
        for stat, used in ((self.mean, self.featurewise_center), (self.std, self.featurewise_std_normalization)):
            if not used or np.ndim(stat) != 3:  # not fitted (a warning later), or set by hand
                continue
            fitted, channels = np.shape(stat)[self.channel_axis - 1], x.shape[self.channel_axis]
            if fitted != channels:
                raise ValueError(f"{what} has {channels} channel(s) (shape {x.shape}), but the featurewise "
                                 f"statistics were fit on {fitted} channel(s): fit the generator on images "
                                 f"like these")

    def _hw(self, img_shape):
        if len(img_shape) != 3:
            raise ValueError(f"expected the shape of one image (3 axes), got {tuple(img_shape)}")
        return tuple(img_shape[1:]) if self.data_format == "channels_first" else tuple(img_shape[:2])

    def _draw(self, rng, img_shape):
        h, w = self._hw(img_shape)
        theta = rng.uniform(-self.rotation_range, self.rotation_range) if self.rotation_range else 0.0
        ty = _draw_shift(rng, self._height_shift, h)
        tx = _draw_shift(rng, self._width_shift, w)
        shear = rng.uniform(-self.shear_range, self.shear_range) if self.shear_range else 0.0
        zx, zy = (1.0, 1.0) if self.zoom_range == (1.0, 1.0) else rng.uniform(*self.zoom_range, size=2)
        flip_h, flip_v = rng.random() < 0.5, rng.random() < 0.5
        return {"theta": float(theta), "tx": float(tx), "ty": float(ty), "shear": float(shear),
                "zx": float(zx), "zy": float(zy), "flip_horizontal": bool(flip_h and self.horizontal_flip),
                "flip_vertical": bool(flip_v and self.vertical_flip)}

    def get_random_transform(self, img_shape, seed=None):
        """Random parameters for one image of shape ``img_shape``: theta, shear (degrees), tx, ty
        (pixels along x = width and y = height), zx, zy, flip_horizontal, flip_vertical."""
        rng = _random.generator() if seed is None else np.random.default_rng(seed)
        return self._draw(rng, img_shape)

    def _transform_batch(self, x, params):
        """Apply one parameter dict per image to a batch in this generator's layout."""
        x = np.array(x, dtype=self.dtype)
        if self.data_format == "channels_last":
            x = x.transpose(0, 3, 1, 2)
        n, _, h, w = x.shape
        p = {k: np.array([q.get(k, d) for q in params], dtype=np.float64) for k, d in _DEFAULTS.items()}
        moved = (p["theta"] != 0) | (p["tx"] != 0) | (p["ty"] != 0) | (p["shear"] != 0) \
            | (p["zx"] != 1) | (p["zy"] != 1)
        if moved.any():  # images without a geometric change are left exactly as they are
            rows, cols = _source_coords({k: v[moved] for k, v in p.items()}, h, w)
            x[moved] = _bilinear(x[moved], rows, cols, self.fill_mode, self.cval)
        flip_h, flip_v = p["flip_horizontal"].astype(bool), p["flip_vertical"].astype(bool)
        x[flip_h] = x[flip_h][..., ::-1]
        x[flip_v] = x[flip_v][..., ::-1, :]
        return x.transpose(0, 2, 3, 1) if self.data_format == "channels_last" else x

    def apply_transform(self, x, transform_parameters):
        """Transform one image by a dict like ``get_random_transform``'s (missing keys: identity).
        As in Keras the parameters say where each output pixel samples the input, so
        ``tx=2`` moves the content 2 pixels left and ``zx=2`` zooms out (halves the width)."""
        unknown = sorted(set(transform_parameters) - set(_DEFAULTS))
        if unknown:  # a typo ("rotation") or a Keras key this generator lacks would do nothing
            raise ValueError(f"apply_transform: unknown transform parameter(s) {unknown}; the supported ones "
                             f"are {sorted(_DEFAULTS)} (brightness and channel shifts are not implemented)")
        x = _host_array(x)
        self._hw(x.shape)
        return self._transform_batch(x[None], [transform_parameters])[0]

    def random_transform(self, x, seed=None):
        """One image, randomly transformed (``seed`` makes the draw repeatable)."""
        return self.apply_transform(x, self.get_random_transform(np.shape(x), seed))

    def standardize(self, x):
        """The normalisation for one image or a batch, on a copy (Keras changes x in place)."""
        x = np.array(_host_array(x), dtype=self.dtype)
        single = x.ndim == 3
        x = x[None] if single else x
        if x.ndim != 4:
            raise ValueError(f"standardize takes one image or a batch, got shape {x.shape}")
        self._check_fitted_channels(x, "standardize: x")
        if self.preprocessing_function is not None:
            out = [np.asarray(self.preprocessing_function(img), dtype=self.dtype) for img in x]
            if any(o.shape != x.shape[1:] for o in out):
                raise ValueError(f"preprocessing_function must return images of shape {x.shape[1:]}")
            x = np.stack(out)
        if self.rescale:
            x *= self.rescale
        if self.samplewise_center:
            x -= x.mean(axis=(1, 2, 3), keepdims=True)
        if self.samplewise_std_normalization:
            x /= x.std(axis=(1, 2, 3), keepdims=True) + 1e-6
        if (self.featurewise_center and self.mean is None) or (self.featurewise_std_normalization
                                                                and self.std is None):  # Keras warns, goes on
            warnings.warn("featurewise normalisation is on but the generator has not been fit: call .fit(x)",
                          stacklevel=2)
        if self.featurewise_center and self.mean is not None:
            x -= self.mean
        if self.featurewise_std_normalization and self.std is not None:
            x /= self.std + 1e-6
        return x[0] if single else x

    def fit(self, x, augment=False, rounds=1, seed=None):
        """Per-channel mean and std of ``x`` (rescaled first; with ``augment``, of ``rounds``
        randomly transformed copies) for featurewise_center / featurewise_std_normalization."""
        x = self._images(x, "fit: x")
        if isinstance(rounds, bool) or not isinstance(rounds, numbers.Integral) or rounds < 1:
            raise ValueError(f"rounds must be a positive int, got {rounds!r}")
        if self.rescale:
            x = x * self.rescale
        if augment:
            rng = _random.generator() if seed is None else np.random.default_rng(seed)
            x = np.concatenate([self._transform_batch(x, [self._draw(rng, x.shape[1:]) for _ in x])
                                for _ in range(rounds)])
        axes, shape = (0, self.row_axis, self.col_axis), [1, 1, 1]
        shape[self.channel_axis - 1] = -1
        mean = x.mean(axis=axes, dtype=np.float64).reshape(shape)
        if self.featurewise_center:
            self.mean = mean.astype(self.dtype)
        if self.featurewise_std_normalization:
            self.std = x.std(axis=axes, dtype=np.float64).reshape(shape).astype(self.dtype)

    def flow(self, x, y=None, batch_size=32, shuffle=True, seed=None, subset=None, ignore_class_split=False):
        """An iterator of augmented ``(x, y)`` batches (``x`` alone when y is None) for ``model.fit``."""
        it = NumpyArrayIterator(x, y, self, batch_size, shuffle, seed, subset, ignore_class_split)
        if self.rescale is not None and abs(self.rescale) < 1:
            # The lectures' rescale=1./255 is for Keras's uint8 0..255 data; cudacnn's data sets are
            # float32 in [0, 1] already, and scaling them again trains on values <= 0.004.
            low, high = float(it.x.min()), float(it.x.max())  # no |x| copy of a large data set
            peak = max(high, -low)
            if 0 < peak <= 1:
                warnings.warn(f"flow: x looks already scaled (values in [{low:g}, {high:g}]) and "
                              f"rescale={self.rescale:g} shrinks it to at most {peak * abs(self.rescale):.3g} "
                              "(cudacnn's data sets come in [0, 1] already, Keras's as 0..255): drop rescale "
                              "for data already in [0, 1]", UserWarning, stacklevel=2)
        return it

    def flow_from_directory(self, directory, target_size=(256, 256), color_mode="rgb", classes=None,
                            class_mode="categorical", batch_size=32, shuffle=True, seed=None, save_to_dir=None,
                            save_prefix="", save_format="png", follow_links=False, subset=None,
                            interpolation="nearest", keep_aspect_ratio=False):
        """A ``DirectoryIterator`` of augmented batches read from ``directory``, which holds one
        subfolder per class (Keras 2's arguments and meaning; needs Pillow). ``target_size`` is
        (height, width); images come in this generator's data_format, channels-first by default."""
        return DirectoryIterator(directory, self, target_size, color_mode, classes, class_mode, batch_size,
                                 shuffle, seed, save_to_dir=save_to_dir, save_prefix=save_prefix,
                                 save_format=save_format, follow_links=follow_links, subset=subset,
                                 interpolation=interpolation, keep_aspect_ratio=keep_aspect_ratio)


class Iterator:
    """The Keras-style Sequence behind ``flow`` and ``flow_from_directory``: ``len()`` =
    ceil(n / batch_size), ``it[i]`` is batch i, ``on_epoch_end()`` reshuffles, and it is an endless
    iterator (``next(it)``) that wraps around, reshuffling at the start of every pass. ``seed``
    gives it its own generator. Subclasses say how to read images (``_images_at``) and what to
    yield with them (``_output``); each image is augmented and standardised here."""

    def __init__(self, n, image_data_generator, batch_size, shuffle, seed):
        _check_batching(batch_size, seed)
        self.image_data_generator, self.n = image_data_generator, int(n)
        self.batch_size, self.shuffle, self.seed = int(batch_size), bool(shuffle), seed
        self._rng = None if seed is None else np.random.default_rng(seed)
        self.index_array, self.batch_index, self.total_batches_seen = None, 0, 0

    def _generator(self):
        return self._rng if self._rng is not None else _random.generator()

    def _set_index_array(self):
        self.index_array = self._generator().permutation(self.n) if self.shuffle else np.arange(self.n)

    def __len__(self):
        return -(-self.n // self.batch_size)

    def __getitem__(self, idx):
        if not 0 <= idx < len(self):
            raise IndexError(f"batch index {idx} is out of range for {len(self)} batches")
        if self.index_array is None:
            self._set_index_array()
        return self._batch(self.index_array[idx * self.batch_size:(idx + 1) * self.batch_size])

    def on_epoch_end(self):
        self._set_index_array()

    def reset(self):  # the next next() starts a pass
        self.batch_index = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.batch_index == 0:
            self._set_index_array()
        start = self.batch_index * self.batch_size
        self.batch_index = self.batch_index + 1 if start + self.batch_size < self.n else 0
        return self._batch(self.index_array[start:start + self.batch_size])

    next = __next__

    def _batch(self, indices):
        gen, rng = self.image_data_generator, self._generator()
        self.total_batches_seen += 1
        xb = self._images_at(indices)
        xb = gen.standardize(gen._transform_batch(xb, [gen._draw(rng, xb.shape[1:]) for _ in indices]))
        return self._output(indices, xb)

    def _images_at(self, indices):
        raise NotImplementedError

    def _output(self, indices, xb):
        raise NotImplementedError


class NumpyArrayIterator(Iterator):
    """Augmented batches from arrays, as Keras's (see ``Iterator``)."""

    def __init__(self, x, y, image_data_generator, batch_size=32, shuffle=True, seed=None, subset=None,
                 ignore_class_split=False):
        gen = image_data_generator
        x = gen._images(x, "flow: x")
        gen._check_fitted_channels(x, "flow: x")
        if y is not None:
            y = _host_array(y)
            if y.ndim == 0 or len(y) != len(x):
                raise ValueError(f"x and y must have the same length, got {len(x)} images and "
                                 f"{'a scalar' if y.ndim == 0 else len(y)} targets")
        if subset is not None:
            _check_subset(subset, gen)
            split = int(len(x) * gen.validation_split)
            if split == 0 or split == len(x):
                raise ValueError(f"validation_split={gen.validation_split} of {len(x)} images leaves an empty "
                                 f"{'validation' if split == 0 else 'training'} subset")
            if (y is not None and y.ndim == 1 and not ignore_class_split
                    and not np.array_equal(np.unique(y[:split]), np.unique(y[split:]))):
                raise ValueError("the training and validation subsets hold different classes after the split "
                                 "(is the data sorted by label? shuffle it, or pass ignore_class_split=True)")
            part = slice(None, split) if subset == "validation" else slice(split, None)
            x, y = x[part], (None if y is None else y[part])
        if len(x) == 0:
            raise ValueError(f"no images to flow (subset={subset!r})")
        super().__init__(len(x), gen, batch_size, shuffle, seed)
        self.x, self.y = x, y

    def _images_at(self, indices):
        return self.x[indices]

    def _output(self, indices, xb):
        return xb if self.y is None else (xb, self.y[indices])


def _check_batching(batch_size, seed):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
        raise ValueError(f"seed must be None or an int >= 0, got {seed!r}")


def _check_subset(subset, gen):
    if subset not in ("training", "validation"):
        raise ValueError(f"subset must be 'training', 'validation' or None, got {subset!r}")
    if not gen.validation_split:
        raise ValueError(f"subset={subset!r} needs ImageDataGenerator(validation_split=...) > 0")


class DirectoryIterator(Iterator):
    """Augmented batches of image files, as Keras 2's: ``directory`` holds one subfolder per class
    (searched recursively for .png, .jpg, .jpeg, .bmp, .ppm, .tif and .tiff files, any case).

    Files are read with Pillow batch by batch, converted to ``color_mode``, resized to
    ``target_size`` (height, width), made float arrays of the generator's dtype and layout, then
    each is augmented and standardised as ``flow`` does. Attributes as Keras's: ``class_indices``
    (name -> label), ``classes`` (the label of each file), ``filenames`` (relative to
    ``directory``), ``filepaths``, ``samples`` = ``n``, ``num_classes``, ``image_shape``.

    class_mode: "categorical" (one-hot, the generator's float dtype), "binary" (0./1., exactly two
    classes), "sparse" (int32 labels), "input" (the images as targets) or None (images only).
    subset: with ImageDataGenerator(validation_split=v), as Keras 2 each class's sorted files
    [0, int(v * n)) are "validation" and [int(v * n), n) are "training".
    """

    allowed_class_modes = ("categorical", "binary", "sparse", "input", None)

    def __init__(self, directory, image_data_generator=None, target_size=(256, 256), color_mode="rgb",
                 classes=None, class_mode="categorical", batch_size=32, shuffle=True, seed=None,
                 save_to_dir=None, save_prefix="", save_format="png", follow_links=False, subset=None,
                 interpolation="nearest", keep_aspect_ratio=False):
        gen = ImageDataGenerator() if image_data_generator is None else image_data_generator
        if save_to_dir is not None:
            raise NotImplementedError("flow_from_directory(save_to_dir=...) is not supported by cudacnn: "
                                      "leave save_to_dir=None (array_to_img(x).save(path) saves a batch's image)")
        self.target_size = _files.check_target_size(target_size)
        self.color_mode = _files.check_color_mode(color_mode)
        self.interpolation = _files.check_interpolation(interpolation)
        if class_mode not in self.allowed_class_modes:
            raise ValueError(f"class_mode must be one of {self.allowed_class_modes}, got {class_mode!r}")
        self.class_mode, self.keep_aspect_ratio = class_mode, bool(keep_aspect_ratio)
        self.data_format, self.dtype = gen.data_format, gen.dtype
        channels = _files.COLOR_CHANNELS[color_mode]
        self.image_shape = (channels, *self.target_size) if self.data_format == "channels_first" \
            else (*self.target_size, channels)
        _check_batching(batch_size, seed)  # before the scan, not after "Found ..."
        self.subset, self.split = subset, None
        if subset is not None:
            _check_subset(subset, gen)
            # As Keras 2 (keras_preprocessing's DirectoryIterator: split = (0, v) or (v, 1)): per class,
            # of its n files listed sorted (recursively), "validation" takes [0, int(v * n)) and
            # "training" [int(v * n), n), so the two are disjoint and every class is split alike.
            v = gen.validation_split
            self.split = (0.0, v) if subset == "validation" else (v, 1.0)
        gen._check_fitted_channels(np.empty((0, *self.image_shape)), f"flow_from_directory({color_mode!r})")
        _files._pil("flow_from_directory")  # before the scan: say so now, not at the first batch
        self.directory = directory = os.fspath(directory)
        if not os.path.exists(directory):
            raise FileNotFoundError(f"flow_from_directory: directory {directory!r} does not exist")
        if not os.path.isdir(directory):
            raise NotADirectoryError(f"flow_from_directory: {directory!r} is not a directory")
        class_names = _files.list_classes(directory, classes)
        if class_mode == "binary" and len(class_names) != 2:
            raise ValueError(f"class_mode='binary' needs exactly 2 classes, found {len(class_names)} in "
                             f"{directory!r}: {class_names}; use class_mode='categorical' or 'sparse'")
        self.class_indices = {name: i for i, name in enumerate(class_names)}
        self.num_classes = len(class_names)
        self.filenames, self.classes, empty = _files.scan(directory, class_names, self.split, follow_links)
        if not self.filenames:
            raise ValueError(_files.describe_missing(directory, class_names, subset))
        _files.warn_empty_classes(empty, subset)
        self.samples = len(self.filenames)
        print(f"Found {self.samples} images belonging to {self.num_classes} classes.")
        super().__init__(self.samples, gen, batch_size, shuffle, seed)

    @property
    def filepaths(self):
        return [os.path.join(self.directory, name) for name in self.filenames]

    @property
    def labels(self):
        return self.classes

    def _images_at(self, indices):
        batch = np.zeros((len(indices), *self.image_shape), dtype=self.dtype)
        for i, j in enumerate(indices):
            img = _files.load_img(os.path.join(self.directory, self.filenames[j]), self.color_mode,
                                  self.target_size, self.interpolation, self.keep_aspect_ratio)
            batch[i] = _files.img_to_array(img, self.data_format, self.dtype)
            img.close()
        return batch

    def _output(self, indices, xb):
        if self.class_mode is None:
            return xb
        if self.class_mode == "input":
            return xb, xb.copy()
        labels = self.classes[indices]
        if self.class_mode == "sparse":
            return xb, labels
        if self.class_mode == "binary":
            return xb, labels.astype(self.dtype)
        return xb, np.eye(self.num_classes, dtype=self.dtype)[labels]


