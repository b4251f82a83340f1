"""Model zoo: the networks of the lectures, built on the functional/Sequential API.

``cudacnn.zoo.get(name, input_shape=None, num_classes=None, **kw)`` builds one by
name (``None`` keeps the architecture's own default), ``names()`` lists them.
Every builder takes ``input_shape`` (channels first, no batch axis) and
``num_classes``; the large ImageNet nets also take ``include_top`` (drop the
classifier head, for transfer learning) and ``pooling`` (None or "avg" when the
head is dropped). Classifiers end in softmax unless ``classifier_activation=None``
asks for logits. VGG and ResNet take Keras' ``weights=`` too: None (random), or the
path of a torchvision state_dict file to load (cudacnn downloads nothing, so
``weights="imagenet"`` explains where to get one).
"""
from __future__ import annotations

import functools
import inspect

from .classic import alexnet, lenet5
from .inception import googlenet, inception_module
from .lecture import (allcnn_c, cifar10_conv, cifar10_conv_pool, cifar10_deeper, digits_cnn,
                      mnist_conv, mnist_workshop)
from .resnet import resnet18, resnet34, resnet50
from .vgg import vgg16, vgg19


def _with_weights(builder):
    """``builder`` with Keras' ``weights=``: None, or a torchvision state_dict file to load
    (the matching tensors only when ``include_top=False`` drops the classifier)."""

    @functools.wraps(builder)
    def build(*args, weights=None, **kwargs):
        if isinstance(weights, str) and weights.lower() == "imagenet":
            raise ValueError(
                f"{builder.__name__}: cudacnn ships and downloads no pretrained weights. Save torchvision's "
                f"(torch.save(torchvision.models.{builder.__name__}(weights='DEFAULT').state_dict(), "
                f"'{builder.__name__}.pth')) and pass weights='{builder.__name__}.pth', or load them later with "
                "cudacnn.interchange.load_torch_state_dict(model, path)")
        model = builder(*args, **kwargs)
        if weights is not None:
            from ..interchange import load_torch_state_dict
            include_top = signature.bind(*args, **kwargs).arguments.get("include_top", True)
            # Without the top the file's classifier is left over; every weight we have must still come from it.
            report = load_torch_state_dict(model, weights, arch=builder.__name__, strict=include_top)
            if report["missing"] or report["mismatched"]:
                raise ValueError(f"{builder.__name__}: {weights} does not fit this model: missing "
                                 f"{report['missing'][:4]}{'...' if len(report['missing']) > 4 else ''}, "
                                 f"mismatched {report['mismatched'][:4]}")
        return model

    signature = inspect.signature(builder)
    build.__signature__ = signature.replace(parameters=[
        *signature.parameters.values(), inspect.Parameter("weights", inspect.Parameter.KEYWORD_ONLY, default=None)])
    return build


vgg16, vgg19 = _with_weights(vgg16), _with_weights(vgg19)
resnet18, resnet34, resnet50 = _with_weights(resnet18), _with_weights(resnet34), _with_weights(resnet50)

_BUILDERS = {
    "digits_cnn": digits_cnn,
    "mnist_workshop": mnist_workshop,
    "mnist_conv": mnist_conv,
    "cifar10_conv": cifar10_conv,
    "cifar10_conv_pool": cifar10_conv_pool,
    "cifar10_deeper": cifar10_deeper,
    "allcnn_c": allcnn_c,
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "googlenet": googlenet,
}

__all__ = ["get", "names", "inception_module", *_BUILDERS]


def names() -> list[str]:
    """Every model name ``get`` accepts."""
    return list(_BUILDERS)


def get(name: str, input_shape=None, num_classes=None, **kwargs):
    """Build zoo model ``name``; ``input_shape``/``num_classes`` of None keep its defaults."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise ValueError(f"unknown model {name!r}; choose one of {names()}")
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    if num_classes is not None:
        kwargs["num_classes"] = int(num_classes)
    accepted = inspect.signature(builder).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(f"zoo model {name!r} does not take {unknown}; it takes {list(accepted)}")
    return builder(**kwargs)
