"""GoogLeNet / Inception-v1 (Szegedy et al. 2015) from the paper's table 1.

Each Inception module runs four branches side by side -- 1x1; 1x1 bottleneck
then 3x3; 1x1 bottleneck then 5x5; 3x3 max pooling then 1x1 projection -- and
concatenates them along the channels. The bottlenecks are what keep the net at
about 7 million parameters. Left out, as in most re-implementations: local
response normalisation and the two auxiliary classifiers (training aids only).
"""
from __future__ import annotations

from ..layers import Concatenate, Conv2D, Dense, Dropout, GlobalAveragePooling2D, Input, MaxPooling2D
from ..models import Model

# name: (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), as in table 1 of the paper
_MODULES = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _conv(x, filters, kernel, name, strides=1):
    return Conv2D(filters, kernel, strides=strides, padding="same", activation="relu", name=name)(x)


def inception_module(x, sizes, name):
    """One Inception-v1 module: four branches concatenated on the channel axis."""
    n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj = sizes
    branch1 = _conv(x, n1x1, 1, f"{name}_1x1")
    branch2 = _conv(_conv(x, n3x3_reduce, 1, f"{name}_3x3_reduce"), n3x3, 3, f"{name}_3x3")
    branch3 = _conv(_conv(x, n5x5_reduce, 1, f"{name}_5x5_reduce"), n5x5, 5, f"{name}_5x5")
    pooled = MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch4 = _conv(pooled, pool_proj, 1, f"{name}_pool_proj")
    return Concatenate(axis=1, name=f"{name}_output")([branch1, branch2, branch3, branch4])


def googlenet(input_shape=(3, 224, 224), num_classes=1000, include_top=True, pooling=None,
              classifier_activation="softmax"):
    """Inception-v1: stem, modules 3a-3b, 4a-4e, 5a-5b with 3x3/2 max pooling between stages."""
    inputs = Input(input_shape, name="input")
    x = _conv(inputs, 64, 7, "conv1_7x7", strides=2)
    x = MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv(x, 64, 1, "conv2_3x3_reduce")
    x = _conv(x, 192, 3, "conv2_3x3")
    x = MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    for name, sizes in _MODULES.items():
        if name in ("4a", "5a"):
            x = MaxPooling2D(3, strides=2, padding="same", name=f"pool{name[0]}")(x)
        x = inception_module(x, sizes, f"inception_{name}")
    if include_top or pooling == "avg":
        x = GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling is not None:
        raise ValueError(f"pooling must be None or 'avg', got {pooling!r}")
    if include_top:
        x = Dropout(0.4, name="dropout")(x)
        x = Dense(num_classes, activation=classifier_activation, name="predictions")(x)
    return Model(inputs, x, name="googlenet")
