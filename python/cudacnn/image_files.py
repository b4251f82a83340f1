"""Image files on disk, as Keras 2's ``keras.preprocessing.image`` reads them, channels-first:
``load_img`` (a PIL image), ``img_to_array`` ((C, H, W) floats), ``array_to_img`` and the scan of
a folder with one subfolder per class behind ``ImageDataGenerator.flow_from_directory``.

Pillow is optional (``pip install pillow``, or the ``images`` extra): it is imported on first use.
"""
from __future__ import annotations

import io
import numbers
import os
import warnings

import numpy as np

from . import backend

__all__ = ["load_img", "img_to_array", "array_to_img", "WHITE_LIST_FORMATS"]

# Keras 2's white_list_formats, matched case-insensitively against the end of each file name.
WHITE_LIST_FORMATS = ("png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff")
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "hamming", "box", "lanczos")
COLOR_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
DATA_FORMATS = ("channels_first", "channels_last")


def _pil(what):
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(f"{what} needs Pillow to read and write images: pip install pillow "
                          "(or pip install 'cudacnn[images]')") from err
    return Image


def check_color_mode(color_mode):
    if color_mode not in COLOR_CHANNELS:
        raise ValueError(f"color_mode must be one of {tuple(COLOR_CHANNELS)}, got {color_mode!r}")
    return color_mode


def check_interpolation(interpolation):
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    return interpolation


def check_target_size(target_size, allow_none=False):
    """(height, width), two positive ints, as Keras's target_size."""
    if target_size is None and allow_none:
        return None
    if isinstance(target_size, (tuple, list)) and len(target_size) == 2 and all(
            isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in target_size):
        return int(target_size[0]), int(target_size[1])
    raise ValueError(f"target_size must be (height, width), two positive ints, got {target_size!r}")


def _check_data_format(data_format):
    if data_format not in DATA_FORMATS:
        raise ValueError(f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}")
    return data_format


def load_img(path, color_mode="rgb", target_size=None, interpolation="nearest", keep_aspect_ratio=False):
    """An image file as a PIL image, as Keras's ``load_img``: converted to ``color_mode``
    ("grayscale", "rgb" or "rgba"; 16/32-bit grayscale files stay as they are, as in Keras) and,
    when ``target_size=(height, width)`` differs from the file's, resized with ``interpolation``
    (with ``keep_aspect_ratio``, from the largest centred crop of the target's aspect ratio).
    A file Pillow cannot decode raises a ValueError naming it."""
    image_module = _pil("load_img")
    check_color_mode(color_mode)
    target_size = check_target_size(target_size, allow_none=True)
    check_interpolation(interpolation)
    path = os.fspath(path)
    with open(path, "rb") as f:  # missing or unreadable: the OSError, which names the file
        data = f.read()
    try:
        img = image_module.open(io.BytesIO(data))
        img.load()  # decode now: a truncated file fails here, not later
        if color_mode == "grayscale":
            if img.mode not in ("L", "I;16", "I"):
                img = img.convert("L")
        elif color_mode == "rgba":
            if img.mode != "RGBA":
                img = img.convert("RGBA")
        elif img.mode != "RGB":
            img = img.convert("RGB")
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ... for bad files
        raise ValueError(f"cannot read image file {path!r} ({len(data)} bytes): {type(err).__name__}: {err}. "
                         "Is it a valid image? Remove or replace it.") from err
    if target_size is not None:
        width_height = (target_size[1], target_size[0])
        if img.size != width_height:
            resample = getattr(getattr(image_module, "Resampling", image_module), interpolation.upper())
            box = None
            if keep_aspect_ratio:  # Keras: the centred crop with the target's aspect ratio
                width, height = img.size
                crop_h = min(height, (width * width_height[1]) // width_height[0])
                crop_w = min(width, (height * width_height[0]) // width_height[1])
                top, left = (height - crop_h) // 2, (width - crop_w) // 2
                box = (left, top, left + crop_w, top + crop_h)
            img = img.resize(width_height, resample, box=box)
    return img


def img_to_array(img, data_format="channels_first", dtype="float32"):
    """A PIL image as an array: (C, H, W) for cudacnn's "channels_first" (the default),
    (H, W, C) for "channels_last" (Keras's default). Pixel values as they are (0..255 for 8 bits)."""
    _check_data_format(data_format)
    x = np.asarray(img, dtype=dtype)
    if x.ndim == 2:
        x = x[None] if data_format == "channels_first" else x[..., None]
    elif x.ndim == 3:
        x = x.transpose(2, 0, 1) if data_format == "channels_first" else x
    else:
        raise ValueError(f"img_to_array: unsupported image shape {x.shape}")
    return np.ascontiguousarray(x)


def array_to_img(x, data_format="channels_first", scale=True):
    """A (C, H, W) array (or (H, W, C) with ``data_format="channels_last"``) of 1, 3 or 4 channels
    as a PIL image ("L", "RGB" or "RGBA"), as Keras's ``array_to_img``. ``scale`` stretches the
    values to 0..255 first; without it they are rounded and clipped to 0..255 (a 1-channel image
    with values past 255 becomes a 32-bit "I" image, as in Keras)."""
    image_module = _pil("array_to_img")
    _check_data_format(data_format)
    x = np.array(x.get() if backend.is_gpu_array(x) else x, dtype=np.float64)
    layout = "(C, H, W)" if data_format == "channels_first" else "(H, W, C)"
    if x.ndim != 3:
        raise ValueError(f"array_to_img takes one image {layout}, got shape {x.shape}")
    shape = x.shape
    if data_format == "channels_first":
        x = x.transpose(1, 2, 0)
    if x.shape[2] not in (1, 3, 4):
        hint = " (is it channels-last? pass data_format='channels_last')" \
            if data_format == "channels_first" and shape[2] in (1, 3, 4) else ""
        raise ValueError(f"array_to_img: an image {layout} must have 1, 3 or 4 channels, got shape {shape}{hint}")
    if scale:
        x = x - np.min(x)
        top = np.max(x)
        if top != 0:
            x = x / top
        x = x * 255
    x = np.rint(x)
    if x.shape[2] == 1:
        if np.max(x) > 255:
            return image_module.fromarray(x[:, :, 0].astype(np.int32), "I")
        return image_module.fromarray(np.clip(x[:, :, 0], 0, 255).astype(np.uint8), "L")
    return image_module.fromarray(np.clip(x, 0, 255).astype(np.uint8), "RGBA" if x.shape[2] == 4 else "RGB")


def _valid_files(directory, follow_links):
    """(root, file name) of the image files under ``directory``, recursively, as Keras 2's
    ``_iter_valid_files``: folders sorted by path, files by name."""
    for root, _, files in sorted(os.walk(directory, followlinks=follow_links), key=lambda walk: walk[0]):
        for name in sorted(files):
            if name.lower().endswith(tuple("." + ext for ext in WHITE_LIST_FORMATS)):
                yield root, name


def list_classes(directory, classes):
    """The class names: the given list, in its order, or the subfolders of ``directory`` sorted."""
    if classes is None:
        classes = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
        if not classes:
            loose = [name for _, name in _valid_files(directory, False)]
            raise ValueError(
                f"no class subfolders in {directory!r}: flow_from_directory wants one subfolder per class "
                f"(e.g. {os.path.join(directory, 'cats', 'cat.1.jpg')!r})"
                + (f"; {len(loose)} image file(s) lie directly in it: move them into a class subfolder"
                   if loose else ""))
        return classes
    if isinstance(classes, str) or not isinstance(classes, (list, tuple)) or not classes \
            or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"classes must be None or a non-empty list of subfolder names, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes has duplicate names: {list(classes)!r}")
    missing = [c for c in classes if not os.path.isdir(os.path.join(directory, c))]
    if missing:
        raise ValueError(f"class folder(s) {missing} not found in {directory!r}")
    return list(classes)


def scan(directory, classes, split, follow_links):
    """Relative file names and int32 labels of the images of each class folder, in class order.
    ``split=(start, stop)`` keeps, per class, files [int(start * n), int(stop * n)) of its n
    sorted files (Keras 2's DirectoryIterator)."""
    filenames, labels, empty = [], [], []
    for index, name in enumerate(classes):
        class_dir = os.path.join(directory, name)
        files = list(_valid_files(class_dir, follow_links))
        if split is not None:
            files = files[int(split[0] * len(files)):int(split[1] * len(files))]
        if not files:
            empty.append(name)
        for root, fname in files:
            filenames.append(os.path.join(name, os.path.relpath(os.path.join(root, fname), class_dir)))
        labels.extend([index] * len(files))
    return filenames, np.asarray(labels, dtype=np.int32), empty


def describe_missing(directory, classes, subset):
    where = f" for subset={subset!r}" if subset is not None else ""
    exts = ", ".join("." + ext for ext in WHITE_LIST_FORMATS)
    return (f"no images found{where} in the class folders {classes} of {directory!r} "
            f"(looked for files ending in {exts}, any case)")


def warn_empty_classes(empty, subset):
    if empty:
        where = f" in the {subset} subset" if subset is not None else ""
        warnings.warn(f"class folder(s) {empty} hold no images{where}; they still count as classes",
                      stacklevel=4)
