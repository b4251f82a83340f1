"""Keras-style layers (channels first). ``get(class_name)`` returns a layer class by name."""
from .activations import ELU, Activation, LeakyReLU, ReLU, Softmax
from .augment import (GaussianNoise, RandomCrop, RandomFlip, RandomRotation, RandomTranslation,
                      RandomZoom)
from .base import Input, InputLayer, Layer, SymbolicTensor
from .conv import Conv1D, Conv2D, ZeroPadding2D
from .core import Dense, Dropout, Flatten, Reshape
from .merge import Add, Concatenate, add, concatenate
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D

__all__ = [
    "Layer", "Input", "InputLayer", "SymbolicTensor",
    "Conv1D", "Conv2D", "ZeroPadding2D", "Dense", "Reshape", "Flatten", "Dropout", "BatchNormalization",
    "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Add", "Concatenate", "add", "concatenate",
    "RandomFlip", "RandomTranslation", "RandomRotation", "RandomZoom", "RandomCrop", "GaussianNoise",
    "get",
]

# Keras spellings that name the same classes.
MaxPool2D, AvgPool2D, GlobalAvgPool2D = MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D
GlobalMaxPool2D = GlobalMaxPooling2D
_ALIASES = {"MaxPool2D": MaxPooling2D, "AvgPool2D": AveragePooling2D, "GlobalAvgPool2D": GlobalAveragePooling2D,
            "GlobalMaxPool2D": GlobalMaxPooling2D, "Convolution2D": Conv2D}


def get(class_name):
    """The layer class called ``class_name`` (as stored in configs), or a ValueError."""
    if class_name in _ALIASES:
        return _ALIASES[class_name]
    if class_name in __all__ and class_name not in ("get", "Input", "SymbolicTensor"):
        return globals()[class_name]
    if class_name in ("Sequential", "Model", "Functional"):
        from .. import models
        return models.Sequential if class_name == "Sequential" else models.Model
    raise ValueError(f"unknown layer class {class_name!r}")
