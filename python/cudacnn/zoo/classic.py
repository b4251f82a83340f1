"""LeNet-5 (LeCun et al. 1998) and AlexNet (Krizhevsky et al. 2012), as the lectures describe them."""
from __future__ import annotations

from ..layers import AveragePooling2D, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D, MaxPooling2D
from ..models import Sequential


def lenet5(input_shape=(1, 32, 32), num_classes=10, classifier_activation="softmax"):
    """Two 5x5 tanh convolutions, each followed by 2x2 average pooling, then Dense 120-84-classes.

    61,706 parameters at the paper's 32x32 input (the lecture's ">60K").
    """
    return Sequential([
        Conv2D(6, 5, activation="tanh", input_shape=input_shape, name="c1"),
        AveragePooling2D(2, name="s2"),
        Conv2D(16, 5, activation="tanh", name="c3"),
        AveragePooling2D(2, name="s4"),
        Flatten(name="flatten"),
        Dense(120, activation="tanh", name="c5"),
        Dense(84, activation="tanh", name="f6"),
        Dense(num_classes, activation=classifier_activation, name="predictions"),
    ], name="lenet5")


def alexnet(input_shape=(3, 227, 227), num_classes=1000, include_top=True, pooling=None,
            classifier_activation="softmax"):
    """Single-tower AlexNet: 11x11/4 96, 5x5 256, three 3x3 (384, 384, 256), 3x3/2 max pooling,
    two Dense(4096) with dropout 0.5. 62,378,344 parameters at 227x227x3 and 1000 classes.
    (The paper's local response normalisation is left out, as in most re-implementations.)
    """
    layers = [
        Conv2D(96, 11, strides=4, activation="relu", input_shape=input_shape, name="conv1"),
        MaxPooling2D(3, strides=2, name="pool1"),
        Conv2D(256, 5, padding="same", activation="relu", name="conv2"),
        MaxPooling2D(3, strides=2, name="pool2"),
        Conv2D(384, 3, padding="same", activation="relu", name="conv3"),
        Conv2D(384, 3, padding="same", activation="relu", name="conv4"),
        Conv2D(256, 3, padding="same", activation="relu", name="conv5"),
        MaxPooling2D(3, strides=2, name="pool5"),
    ]
    if include_top:
        layers += [
            Flatten(name="flatten"),
            Dense(4096, activation="relu", name="fc1"), Dropout(0.5, name="drop1"),
            Dense(4096, activation="relu", name="fc2"), Dropout(0.5, name="drop2"),
            Dense(num_classes, activation=classifier_activation, name="predictions"),
        ]
    elif pooling == "avg":
        layers.append(GlobalAveragePooling2D(name="avg_pool"))
    elif pooling is not None:
        raise ValueError(f"pooling must be None or 'avg', got {pooling!r}")
    return Sequential(layers, name="alexnet")
