"""The lectures' own Keras-workshop networks (seeds 000 and 002), plus our default digits net.

Each builder mirrors the Keras code shown in class, channels first:

* ``mnist_workshop``: the "Taller MNIST con CNN en Keras" (28x28x1).
* ``mnist_conv``: one 64-filter convolution feeding a softmax (the MNIST slide, test acc. 0.98).
* ``cifar10_conv``, ``cifar10_conv_pool``, ``cifar10_deeper``: the three CIFAR-10 models
  (1,845,354 / 462,954 / 564,426 parameters in the lecture's summaries).
* ``allcnn_c``: the All-Convolutional net of the lecture's summary (1,369,738 parameters).
* ``digits_cnn``: a small, fast net for the 8x8 digits, the default of ``cudacnn train``.
"""
from __future__ import annotations

from ..layers import Activation, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D, MaxPooling2D
from ..models import Sequential


def digits_cnn(input_shape=(1, 8, 8), num_classes=10, classifier_activation="softmax"):
    """Conv32-Conv32-MaxPool-Conv64-Flatten-Dense, 38,314 parameters at 8x8x1.

    Measured on the digits test split: 0.978 and 0.975 (seeds 0, 1) after 6 epochs of
    Adam(2e-3), batch 32, about 30 s of CPU time with the NumPy backend.
    """
    return Sequential([
        Conv2D(32, 3, padding="same", activation="relu", input_shape=input_shape, name="conv1"),
        Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
        MaxPooling2D(2, name="pool"),
        Conv2D(64, 3, padding="same", activation="relu", name="conv3"),
        Flatten(name="flatten"),
        Dense(num_classes, activation=classifier_activation, name="predictions"),
    ], name="digits_cnn")


def mnist_workshop(input_shape=(1, 28, 28), num_classes=10, classifier_activation="softmax"):
    """Conv2D(32,3,relu)-MaxPool(2)-Conv2D(64,3,relu)-MaxPool(2)-Flatten-Dense(64,relu)-Dropout(0.3)-Dense."""
    return Sequential([
        Conv2D(32, 3, activation="relu", input_shape=input_shape),
        MaxPooling2D(2),
        Conv2D(64, 3, activation="relu"),
        MaxPooling2D(2),
        Flatten(),
        Dense(64, activation="relu"),
        Dropout(0.3),
        Dense(num_classes, activation=classifier_activation),
    ], name="mnist_workshop")


def mnist_conv(input_shape=(1, 28, 28), num_classes=10, classifier_activation="softmax"):
    """Conv2D(64,3,relu)-Flatten-Dense: the single convolution layer of the MNIST slide."""
    return Sequential([
        Conv2D(64, 3, activation="relu", input_shape=input_shape),
        Flatten(),
        Dense(num_classes, activation=classifier_activation),
    ], name="mnist_conv")


def cifar10_conv(input_shape=(3, 32, 32), num_classes=10, classifier_activation="softmax"):
    """Conv2D(64,3,relu)-Flatten-Dense(32,relu)-Dense: 1,845,354 parameters at 32x32x3."""
    return Sequential([
        Conv2D(64, 3, activation="relu", input_shape=input_shape),
        Flatten(),
        Dense(32, activation="relu"),
        Dense(num_classes, activation=classifier_activation),
    ], name="cifar10_conv")


def cifar10_conv_pool(input_shape=(3, 32, 32), num_classes=10, classifier_activation="softmax"):
    """Conv2D(64,3,relu)-MaxPool(2)-Flatten-Dense(32,relu)-Dense: 462,954 parameters."""
    return Sequential([
        Conv2D(64, 3, activation="relu", input_shape=input_shape),
        MaxPooling2D(2),
        Flatten(),
        Dense(32, activation="relu"),
        Dense(num_classes, activation=classifier_activation),
    ], name="cifar10_conv_pool")


def cifar10_deeper(input_shape=(3, 32, 32), num_classes=10, classifier_activation="softmax"):
    """Two Conv2D(64,3,same,relu)+MaxPool(2) stages, Dense(128,relu), Dense: 564,426 parameters."""
    return Sequential([
        Conv2D(64, 3, padding="same", activation="relu", input_shape=input_shape),
        MaxPooling2D(2),
        Conv2D(64, 3, padding="same", activation="relu"),
        MaxPooling2D(2),
        Flatten(),
        Dense(128, activation="relu"),
        Dense(num_classes, activation=classifier_activation),
    ], name="cifar10_deeper")


def allcnn_c(input_shape=(3, 32, 32), num_classes=10, classifier_activation="softmax"):
    """All-CNN-C (Springenberg et al. 2015) as in the lecture: convolutions only, strided
    convolutions instead of pooling, global average pooling instead of dense layers."""
    def conv(filters, kernel, strides=1, **kw):
        return Conv2D(filters, kernel, strides=strides, padding="same", activation="relu", **kw)

    return Sequential([
        conv(96, 3, input_shape=input_shape), conv(96, 3), conv(96, 3, strides=2),
        conv(192, 3), conv(192, 3), conv(192, 3, strides=2),
        conv(192, 3), conv(192, 1),
        Conv2D(num_classes, 1, padding="same", activation="relu"),
        GlobalAveragePooling2D(),
        Activation(classifier_activation or "linear"),
    ], name="allcnn_c")
