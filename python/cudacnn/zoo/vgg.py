"""VGG-16 and VGG-19 (Simonyan & Zisserman 2015) with Keras' layer names.

Layer names follow ``keras.applications`` (block1_conv1 ... block5_pool, fc1, fc2,
predictions), so the summary reads like the lecture's; ``cudacnn.interchange``
maps torchvision's ``features.N``/``classifier.N`` onto them. With
``include_top`` at 224x224 the classifier takes the 7x7x512 = 25088 features of
torchvision's (then identity) adaptive pooling; other sizes give ``fc1`` a
matching input width.
"""
from __future__ import annotations

from ..layers import Conv2D, Dense, Flatten, GlobalAveragePooling2D, Input, MaxPooling2D
from ..models import Model

CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_FILTERS = (64, 128, 256, 512, 512)


def _vgg(arch, input_shape, num_classes, include_top, pooling, classifier_activation):
    inputs = Input(input_shape, name="input")
    x = inputs
    for block, (count, filters) in enumerate(zip(CONVS_PER_BLOCK[arch], _FILTERS), start=1):
        for conv in range(1, count + 1):
            x = Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}")(x)
        x = MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    if include_top:
        x = Flatten(name="flatten")(x)
        x = Dense(4096, activation="relu", name="fc1")(x)
        x = Dense(4096, activation="relu", name="fc2")(x)
        x = Dense(num_classes, activation=classifier_activation, name="predictions")(x)
    elif pooling == "avg":
        x = GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling is not None:
        raise ValueError(f"pooling must be None or 'avg', got {pooling!r}")
    return Model(inputs, x, name=arch)


def vgg16(input_shape=(3, 224, 224), num_classes=1000, include_top=True, pooling=None,
          classifier_activation="softmax"):
    """VGG-16: 13 3x3 convolutions in 5 blocks, Dense 4096-4096-classes (138,357,544 parameters)."""
    return _vgg("vgg16", input_shape, num_classes, include_top, pooling, classifier_activation)


def vgg19(input_shape=(3, 224, 224), num_classes=1000, include_top=True, pooling=None,
          classifier_activation="softmax"):
    """VGG-19: 16 3x3 convolutions in 5 blocks, Dense 4096-4096-classes (143,667,240 parameters)."""
    return _vgg("vgg19", input_shape, num_classes, include_top, pooling, classifier_activation)
