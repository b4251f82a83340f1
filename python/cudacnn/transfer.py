"""Transfer learning: reuse a trained network's convolutional base on a new task.

The lecture's recipe, step by step::

    base = zoo.vgg16(include_top=False, input_shape=(3, 64, 64))  # drop the head
    load_torch_state_dict(base, "vgg16.pth", strict=False)        # pretrained weights
    x_train = preprocess_imagenet(x_train)                         # the inputs they expect
    base.trainable = False                                         # freeze it
    model = add_head(base, num_classes=2, hidden_units=(256,), dropout=0.5)
    model.compile("rmsprop", "sparse_categorical_crossentropy", ["accuracy"]); model.fit(...)
    set_trainable(base, True, from_layer="block5_conv1")           # unfreeze the last block
    model.compile(optimizers.RMSprop(1e-5), ...); model.fit(...)   # fine-tune, lower rate

or, to save compute when the base stays frozen, push the data through it once::

    extract_features(base, x_train, "train_features.npy")
    shallow = Sequential([Dense(256, activation="relu", input_shape=(d,)), Dense(2, activation="softmax")])
    shallow.fit(load_features("train_features.npy"), y_train)
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from .layers import Dense, Dropout, Flatten, GlobalAveragePooling2D
from .layers.base import to_device, trusted_input
from .models import Model
from .npy_header import read_npy_header
from .ops import _validate as check
from .safetensors import atomic_write

__all__ = ["feature_extractor", "add_head", "set_trainable", "extract_features", "load_features",
           "preprocess_imagenet"]

# torchvision's ImageNet statistics (RGB), which its pretrained weights expect
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_outputs(model):
    """Map layer -> its output symbolic tensor inside ``model`` (walking the public graph)."""
    found, stack, seen = {}, list(model.outputs), set()
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        found.setdefault(id(tensor.layer), tensor)
        stack.extend(tensor.inputs)
    return found


def feature_extractor(model, layer):
    """A model from ``model``'s inputs to the output of ``layer`` (a name or a layer), sharing weights.

    Keras' ``Model(base.input, base.get_layer(name).output)``: the head after
    ``layer`` is dropped; the layers (and their weights) are the same objects.
    """
    target = model.get_layer(layer) if isinstance(layer, str) else layer
    tensor = _layer_outputs(model).get(id(target))
    if tensor is None:
        raise ValueError(f"layer {getattr(target, 'name', target)!r} is not in model {model.name!r}")
    return Model(model.inputs[0] if len(model.inputs) == 1 else list(model.inputs), tensor,
                 name=f"{model.name}_features")


def add_head(base, num_classes, hidden_units=(), dropout=0.0, pooling="flatten",
             classifier_activation="softmax", name=None, base_training=False):
    """A new classifier on top of ``base``: Input -> base -> pooling -> [Dense(relu), Dropout]* -> Dense
    (with no hidden layers, Input -> base -> pooling -> Dropout -> Dense).

    ``pooling`` is "flatten" or "avg" (GlobalAveragePooling2D) for 3-D features and
    ignored for flat ones. ``hidden_units``: an int or a list of them. ``base`` keeps its
    ``trainable`` setting (freeze it first). The base is called with ``training=base_training``:
    False (the default) keeps it in inference mode even once unfrozen for fine-tuning, as Keras'
    transfer-learning guide does with ``base(inputs, training=False)``, so its BatchNormalization
    keeps the pretrained statistics; None lets it follow fit.
    """
    if not isinstance(base, Model):
        raise TypeError(f"add_head needs a cudacnn model as base, got {type(base).__name__}")
    num_classes = check.integer("add_head", "num_classes", num_classes, minimum=1)
    if check.is_int(hidden_units):
        hidden_units = (hidden_units,)
    hidden_units = [check.integer("add_head", "hidden_units", units, minimum=1) for units in hidden_units]
    dropout = check.real("add_head", "dropout", dropout, 0.0, 1.0, high_open=True)
    if len(base.inputs) != 1:
        raise ValueError(f"add_head needs a single-input base, {base.name!r} has {len(base.inputs)}")
    if pooling not in ("flatten", "avg"):
        raise ValueError(f"pooling must be 'flatten' or 'avg', got {pooling!r}")
    inputs = trusted_input(base.inputs[0].shape[1:], name=f"{base.name}_input")  # the base's own, checked
    x = base(inputs, training=base_training)
    if len(x.shape) > 2:
        x = (Flatten() if pooling == "flatten" else GlobalAveragePooling2D())(x)
    for units in hidden_units:
        x = Dense(units, activation="relu")(x)
        if dropout:
            x = Dropout(dropout)(x)
    if dropout and not hidden_units:
        x = Dropout(dropout)(x)
    outputs = Dense(num_classes, activation=classifier_activation)(x)
    return Model(inputs, outputs, name=name or f"{base.name}_transfer")


def set_trainable(model, trainable=True, from_layer=None):
    """Set ``trainable`` on ``model``'s layers; with ``from_layer`` (a name) only on that layer and
    the ones after it, the earlier layers getting the opposite (Keras' "fine-tune from here").

    Nested models are expanded. Recompile afterwards so the optimizer sees the change.
    """
    if not isinstance(trainable, (bool, np.bool_)):
        raise TypeError(f"trainable must be True or False, got {trainable!r}")
    leaves = model.leaf_layers()
    start = 0
    if from_layer is not None:
        names = [layer.name for layer in leaves]
        if from_layer not in names:
            raise ValueError(f"no layer {from_layer!r} in model {model.name!r}; layers: {names}")
        start = names.index(from_layer)
    for index, layer in enumerate(leaves):
        layer.trainable = bool(trainable) if index >= start else not trainable
    return model


def extract_features(model, x, path, batch_size=256):
    """Run ``x`` through ``model`` (inference) and write the flattened features to ``path`` (.npy).

    Batches are written one after the other, so the features never need to fit in
    memory; the file appears only once complete (temp file, fsync, rename).
    Returns ``path``. Read it back with :func:`load_features`.
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    expected = tuple(model.inputs[0].shape[1:])
    if getattr(x, "ndim", None) != len(expected) + 1 or tuple(x.shape[1:]) != expected:
        raise ValueError(f"model {model.name!r} takes inputs of shape (N, {', '.join(map(str, expected))}), "
                         f"got {tuple(getattr(x, 'shape', ()))}")
    out_shape = model.outputs[0].shape[1:]
    width = int(np.prod(out_shape))
    n = len(x)
    dtype = np.dtype(model.dtype).newbyteorder("<")  # float32, or float64 after model.astype
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (n, width)}
    with atomic_write(path) as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n, batch_size):
            batch = to_device(np.asarray(x[start:start + batch_size], dtype=model.dtype), model.device)
            features = to_device(model(batch, training=False), "cpu")
            f.write(np.ascontiguousarray(features.reshape(len(features), width), dtype=dtype).tobytes())
    return path


def load_features(path, mmap=True):
    """Features written by :func:`extract_features` (memory-mapped, read-only, by default).

    The file must be a complete ``.npy`` array of numbers; anything else (an ``.npz``, a
    truncated file, pickled objects) raises ValueError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no features file at {path}")
    _check_npy_file(path)
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def _check_npy_file(path):
    """Read the .npy header of ``path`` and check that the data that follows is exactly what it declares."""
    with open(path, "rb") as f:
        try:
            shape, dtype = read_npy_header(f)
        except ValueError as exc:
            raise ValueError(f"{path}: not a features (.npy) file ({exc})") from None
        data_bytes = path.stat().st_size - f.tell()
    if dtype.kind not in "biuf":
        raise ValueError(f"{path}: features must be numbers, the file holds dtype {dtype}")
    if any(d < 0 for d in shape) or math.prod(d for d in shape if d) * dtype.itemsize > sys.maxsize:
        raise ValueError(f"{path}: not a features (.npy) file (its header declares the impossible shape {shape})")
    needed = math.prod(shape) * dtype.itemsize
    if data_bytes != needed:
        problem = "truncated" if data_bytes < needed else "has trailing bytes"
        raise ValueError(f"{path}: features file {problem}: an array of shape {shape} and dtype {dtype} "
                         f"needs {needed} data bytes, the file has {data_bytes}")


def preprocess_imagenet(images):
    """Normalise RGB images (N, 3, H, W) as torchvision's pretrained weights expect.

    uint8 images are scaled from 0..255 to 0..1 first; float images must already lie in 0..1
    (other dtypes, and float values outside 0..1, raise ValueError).
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected RGB images of shape (N, 3, H, W), got {x.shape}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif x.dtype.kind == "f":
        if x.size and not (x.min() >= 0.0 and x.max() <= 1.0):  # (written so that NaN fails too)
            raise ValueError(f"float images must lie in 0..1, found {x.min()}..{x.max()}; "
                             "divide 0..255 images by 255 or pass them as uint8")
        x = x.astype(np.float32)
    else:
        raise ValueError(f"images must be uint8 (0..255) or float (0..1), got dtype {x.dtype}")
    mean = np.array(IMAGENET_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.array(IMAGENET_STD, np.float32).reshape(1, 3, 1, 1)
    return (x - mean) / std
