"""ResNet-18/34/50 (He et al. 2016), the torchvision variant (stride on the bottleneck's 3x3).

Layers are named after torchvision's modules with dots turned into underscores
(``layer1.0.conv1`` -> ``layer1_0_conv1``, ``layer2.0.downsample.0`` ->
``layer2_0_downsample_0``), so ``cudacnn.interchange`` maps state_dicts by rule.
BatchNormalization uses PyTorch's eps=1e-5 and momentum 0.1 (Keras momentum 0.9).
"""
from __future__ import annotations

from ..layers import Activation, Add, BatchNormalization, Conv2D, Dense, GlobalAveragePooling2D, Input, MaxPooling2D
from ..models import Model

_BLOCKS = {"resnet18": ("basic", (2, 2, 2, 2)), "resnet34": ("basic", (3, 4, 6, 3)),
           "resnet50": ("bottleneck", (3, 4, 6, 3))}


def _conv_bn(x, filters, kernel, stride, name, bn_name):
    x = Conv2D(filters, kernel, strides=stride, padding=kernel // 2, use_bias=False, name=name)(x)
    return BatchNormalization(momentum=0.9, epsilon=1e-5, name=bn_name)(x)


def _basic_block(x, planes, stride, prefix, downsample):
    shortcut = x
    out = _conv_bn(x, planes, 3, stride, f"{prefix}_conv1", f"{prefix}_bn1")
    out = Activation("relu", name=f"{prefix}_relu1")(out)
    out = _conv_bn(out, planes, 3, 1, f"{prefix}_conv2", f"{prefix}_bn2")
    if downsample:
        shortcut = _conv_bn(x, planes, 1, stride, f"{prefix}_downsample_0", f"{prefix}_downsample_1")
    out = Add(name=f"{prefix}_add")([out, shortcut])
    return Activation("relu", name=f"{prefix}_out")(out)


def _bottleneck_block(x, planes, stride, prefix, downsample):
    shortcut = x
    out = _conv_bn(x, planes, 1, 1, f"{prefix}_conv1", f"{prefix}_bn1")
    out = Activation("relu", name=f"{prefix}_relu1")(out)
    out = _conv_bn(out, planes, 3, stride, f"{prefix}_conv2", f"{prefix}_bn2")
    out = Activation("relu", name=f"{prefix}_relu2")(out)
    out = _conv_bn(out, planes * 4, 1, 1, f"{prefix}_conv3", f"{prefix}_bn3")
    if downsample:
        shortcut = _conv_bn(x, planes * 4, 1, stride, f"{prefix}_downsample_0", f"{prefix}_downsample_1")
    out = Add(name=f"{prefix}_add")([out, shortcut])
    return Activation("relu", name=f"{prefix}_out")(out)


def _resnet(arch, input_shape, num_classes, include_top, pooling, classifier_activation):
    kind, counts = _BLOCKS[arch]
    block, expansion = (_basic_block, 1) if kind == "basic" else (_bottleneck_block, 4)
    inputs = Input(input_shape, name="input")
    x = _conv_bn(inputs, 64, 7, 2, "conv1", "bn1")
    x = Activation("relu", name="relu")(x)
    x = MaxPooling2D(3, strides=2, padding=1, name="maxpool")(x)
    channels = 64
    for stage, count in enumerate(counts, start=1):
        planes = 64 * 2 ** (stage - 1)
        for index in range(count):
            stride = 2 if stage > 1 and index == 0 else 1
            downsample = index == 0 and (stride != 1 or channels != planes * expansion)
            x = block(x, planes, stride, f"layer{stage}_{index}", downsample)
            channels = planes * expansion
    if include_top or pooling == "avg":
        x = GlobalAveragePooling2D(name="avgpool")(x)
    elif pooling is not None:
        raise ValueError(f"pooling must be None or 'avg', got {pooling!r}")
    if include_top:
        x = Dense(num_classes, activation=classifier_activation, name="fc")(x)
    return Model(inputs, x, name=arch)


def resnet18(input_shape=(3, 224, 224), num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax"):
    """ResNet-18: basic blocks [2, 2, 2, 2] (11,689,512 parameters at 1000 classes)."""
    return _resnet("resnet18", input_shape, num_classes, include_top, pooling, classifier_activation)


def resnet34(input_shape=(3, 224, 224), num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax"):
    """ResNet-34: basic blocks [3, 4, 6, 3] (21,797,672 parameters at 1000 classes)."""
    return _resnet("resnet34", input_shape, num_classes, include_top, pooling, classifier_activation)


def resnet50(input_shape=(3, 224, 224), num_classes=1000, include_top=True, pooling=None,
             classifier_activation="softmax"):
    """ResNet-50: bottleneck blocks [3, 4, 6, 3]; torchvision's layout (convolutions without bias): 25,610,152
    parameters at 1000 classes, 25,557,032 of them trainable (Keras' ResNet50, with conv biases: 25,636,712)."""
    return _resnet("resnet50", input_shape, num_classes, include_top, pooling, classifier_activation)
