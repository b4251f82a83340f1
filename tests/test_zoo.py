"""Model zoo: published parameter counts (no forward pass needed), small-input forwards, get()/names()."""
import numpy as np
import pytest

from cudacnn import zoo


def _summary_text(model):
    lines = []
    model.summary(print_fn=lines.append)
    return "\n".join(lines)


def _layer_params(model):
    return {layer.name: layer.count_params() for layer in model.layers}


def test_vgg16_matches_the_published_138_357_544():
    model = zoo.vgg16()  # 224x224x3, 1000 classes
    assert model.count_params() == 138_357_544
    assert "Total params: 138,357,544" in _summary_text(model)
    per_layer = _layer_params(model)  # the lecture's Keras summary, layer by layer
    assert per_layer["block1_conv1"] == 1_792 and per_layer["block3_conv2"] == 590_080
    assert per_layer["block5_conv3"] == 2_359_808 and per_layer["fc1"] == 102_764_544
    assert per_layer["fc2"] == 16_781_312 and per_layer["predictions"] == 4_097_000
    assert model.get_layer("block5_pool").output_shape == (None, 512, 7, 7)


def test_allcnn_c_matches_the_lecture_summary():
    model = zoo.allcnn_c()
    assert model.count_params() == 1_369_738
    convs = [layer.count_params() for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert convs == [2688, 83040, 83040, 166080, 331968, 331968, 331968, 37056, 1930]
    assert model.layers[-3].output_shape == (None, 10, 8, 8)


@pytest.mark.parametrize("name,total", [
    ("cifar10_conv", 1_845_354), ("cifar10_conv_pool", 462_954), ("cifar10_deeper", 564_426),
    ("mnist_workshop", 121_930), ("lenet5", 61_706), ("alexnet", 62_378_344),
])
def test_lecture_and_classic_counts(name, total):
    assert zoo.get(name).count_params() == total


@pytest.mark.parametrize("name,parameters,bn_channels", [
    ("resnet18", 11_689_512, 4_800), ("resnet50", 25_557_032, 26_560),
])
def test_resnets_match_torchvision(name, parameters, bn_channels):
    # torchvision counts parameters; BatchNorm running mean/variance are buffers, our non-trainable state.
    model = zoo.get(name)
    assert model.count_trainable_params() == parameters
    assert model.count_params() == parameters + 2 * bn_channels


def test_mnist_workshop_is_the_lecture_net():
    kinds = [type(layer).__name__ for layer in zoo.mnist_workshop().layers]
    assert kinds == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"]
    dropout = zoo.mnist_workshop().layers[6]
    assert dropout.get_config()["rate"] == 0.3


def test_googlenet_modules_concatenate_four_bottlenecked_branches():
    model = zoo.googlenet(input_shape=(3, 64, 64), num_classes=10)
    assert model.get_layer("inception_3a_output").output_shape == (None, 64 + 128 + 32 + 32, 8, 8)
    assert model.get_layer("inception_5b_output").output_shape == (None, 1024, 2, 2)
    # the 1x1 bottleneck in front of the 5x5: 192 -> 16 channels, then 16 -> 32
    assert model.get_layer("inception_3a_5x5_reduce").count_params() == 192 * 16 + 16
    assert model.get_layer("inception_3a_5x5").count_params() == 16 * 25 * 32 + 32


SMALL = [
    ("digits_cnn", (1, 8, 8)), ("mnist_workshop", (1, 28, 28)), ("mnist_conv", (1, 12, 12)),
    ("cifar10_conv", (3, 12, 12)), ("cifar10_conv_pool", (3, 12, 12)), ("cifar10_deeper", (3, 12, 12)),
    ("allcnn_c", (3, 16, 16)), ("lenet5", (1, 28, 28)), ("alexnet", (3, 67, 67)),
    ("vgg16", (3, 32, 32)), ("vgg19", (3, 32, 32)), ("resnet18", (3, 32, 32)), ("resnet34", (3, 32, 32)),
    ("resnet50", (3, 32, 32)), ("googlenet", (3, 32, 32)),
]


@pytest.mark.parametrize("name,shape", SMALL, ids=[n for n, _ in SMALL])
def test_every_model_runs_on_small_inputs(rng, name, shape):
    assert name in zoo.names()
    model = zoo.get(name, input_shape=shape, num_classes=4)
    probs = model.predict(rng.random((2, *shape), dtype=np.float32))
    assert probs.shape == (2, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert model.name == name


@pytest.mark.parametrize("name", ["vgg16", "resnet18", "googlenet", "alexnet"])
def test_include_top_false_drops_the_head(name):
    shape = (3, 67, 67) if name == "alexnet" else (3, 32, 32)
    full = zoo.get(name, input_shape=shape, num_classes=10)
    base = zoo.get(name, input_shape=shape, include_top=False)
    assert len(base.output_shape) == 4  # feature maps, no classifier
    assert base.count_params() < full.count_params()
    pooled = zoo.get(name, input_shape=shape, include_top=False, pooling="avg")
    assert len(pooled.output_shape) == 2


def test_logits_on_request(rng):
    model = zoo.get("digits_cnn", classifier_activation=None)
    out = model.predict(rng.random((3, 1, 8, 8), dtype=np.float32))
    assert not np.allclose(out.sum(axis=1), 1.0)


def test_get_reports_bad_names_and_arguments():
    with pytest.raises(ValueError, match="unknown model 'vgg17'.*vgg16"):
        zoo.get("vgg17")
    with pytest.raises(TypeError, match="'digits_cnn' does not take \\['include_top'\\]"):
        zoo.get("digits_cnn", include_top=False)
    with pytest.raises(ValueError):
        zoo.get("vgg16", input_shape=(3, 16, 16))  # five 2x2 poolings need at least 32x32
    assert zoo.get("digits_cnn", input_shape=[1, 8, 8], num_classes=3).output_shape == (None, 3)
    for required in ("digits_cnn", "mnist_workshop", "lenet5", "alexnet", "vgg16", "vgg19", "resnet18",
                     "resnet34", "resnet50", "allcnn_c", "googlenet"):
        assert required in zoo.names()
