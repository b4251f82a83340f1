"""PyTorch state_dict import: our logits equal PyTorch's with the same weights (CPU, float32).

The reference nets are plain torch.nn with torchvision's module names (tests/torch_reference.py),
so their state_dict keys are torchvision's. Tolerance on logits:
max |ours - torch| <= 1e-4 * max |torch logits| + 1e-7 (float32 GEMM/conv rounding).
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cudacnn import zoo  # noqa: E402
from cudacnn.interchange import load_torch_state_dict, read_state_dict  # noqa: E402
from cudacnn.safetensors import write_safetensors  # noqa: E402

import torch_reference as ref  # noqa: E402


def _assert_logits_equal(ours, theirs):
    assert ours.shape == theirs.shape
    bound = 1e-4 * float(np.abs(theirs).max()) + 1e-7
    assert float(np.abs(ours - theirs).max()) <= bound, (float(np.abs(ours - theirs).max()), bound)


def _torch_out(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def _input(shape, batch=2, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(np.float32)


@pytest.mark.parametrize("arch,builder", [("resnet18", ref.resnet18), ("resnet34", ref.resnet34),
                                          ("resnet50", ref.resnet50)])
def test_resnet_logits_match_torch(arch, builder):
    torch.manual_seed(0)
    net = ref.randomize_batchnorm(builder(num_classes=1000).eval())
    model = zoo.get(arch, input_shape=(3, 64, 64), classifier_activation=None)
    report = load_torch_state_dict(model, net.state_dict())
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []
    x = _input((3, 64, 64))
    _assert_logits_equal(model.predict(x), _torch_out(net, x))


@pytest.mark.slow
def test_vgg16_logits_match_torch_at_224():
    torch.manual_seed(0)
    net = ref.vgg16().eval()
    model = zoo.vgg16(classifier_activation=None)
    load_torch_state_dict(model, net.state_dict())
    x = _input((3, 224, 224), batch=1)
    _assert_logits_equal(model.predict(x), _torch_out(net, x))


def test_vgg16_headless_features_match_torch_and_report_the_dropped_head():
    torch.manual_seed(0)
    net = ref.vgg16().eval()
    base = zoo.vgg16(input_shape=(3, 32, 32), include_top=False)
    report = load_torch_state_dict(base, net.state_dict(), strict=False)
    assert report["missing"] == [] and report["mismatched"] == []
    assert sorted(report["unexpected"]) == sorted(f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias"))
    x = _input((3, 32, 32))
    _assert_logits_equal(base.predict(x), _torch_out(net.features, x))


def test_state_dict_files_pth_and_safetensors(tmp_path):
    torch.manual_seed(0)
    net = ref.randomize_batchnorm(ref.resnet18(num_classes=10).eval())
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    arrays = {k: v.numpy() for k, v in net.state_dict().items()}
    write_safetensors(tmp_path / "r18.safetensors", arrays)
    x = _input((3, 32, 32))
    expected = _torch_out(net, x)
    for name in ("r18.pth", "r18.safetensors"):
        model = zoo.resnet18(input_shape=(3, 32, 32), num_classes=10, classifier_activation=None)
        load_torch_state_dict(model, tmp_path / name)
        _assert_logits_equal(model.predict(x), expected)
    assert set(read_state_dict(tmp_path / "r18.pth")) == set(arrays)


def test_every_problem_is_reported_at_once_and_nothing_loads():
    torch.manual_seed(0)
    state = ref.resnet18(num_classes=1000).state_dict()
    del state["layer2.0.bn1.running_var"]
    state["layer9.0.conv1.weight"] = torch.zeros(3)
    model = zoo.resnet18(input_shape=(3, 32, 32), num_classes=10)
    before = {k: v.copy() for k, v in model.named_weights().items()}
    with pytest.raises(ValueError) as info:
        load_torch_state_dict(model, state)
    message = str(info.value)
    assert "missing (1): layer2_0_bn1/moving_variance" in message
    assert "unexpected (1): layer9.0.conv1.weight" in message
    assert "fc.weight is (1000, 512), the model expects (10, 512)" in message
    assert "fc.bias is (1000,), the model expects (10,)" in message
    after = model.named_weights()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # strict: all or nothing


def test_bad_sources_raise(tmp_path):
    model = zoo.resnet18(input_shape=(3, 32, 32), num_classes=10)
    with pytest.raises(FileNotFoundError):
        load_torch_state_dict(model, tmp_path / "absent.pth")
    (tmp_path / "weights.txt").write_text("nope")
    with pytest.raises(ValueError, match=".pt, .pth"):
        load_torch_state_dict(model, tmp_path / "weights.txt")
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole_module.pth")  # a pickled module, not a state_dict
    with pytest.raises(ValueError, match="weights_only=True refused it"):
        load_torch_state_dict(model, tmp_path / "whole_module.pth")
    with pytest.raises(TypeError, match="dict of arrays"):
        load_torch_state_dict(model, [1, 2, 3])


def test_loads_into_a_frozen_base_nested_in_a_transfer_model():
    from cudacnn import transfer

    torch.manual_seed(0)
    net = ref.randomize_batchnorm(ref.resnet18().eval())
    base = zoo.resnet18(input_shape=(3, 32, 32), include_top=False, pooling="avg")
    model = transfer.add_head(base, num_classes=3)
    report = load_torch_state_dict(model, net.state_dict(), arch="resnet18", strict=False)
    assert report["unexpected"] == ["fc.weight", "fc.bias"]
    assert report["missing"] == [f"{model.layers[-1].name}/kernel", f"{model.layers[-1].name}/bias"]
    x = _input((3, 32, 32))
    features = torch.nn.Sequential(*list(net.children())[:-1])  # up to the global average pool
    _assert_logits_equal(base.predict(x), _torch_out(features, x).reshape(2, -1))


@pytest.mark.gpu
def test_state_dict_loads_onto_a_gpu_model(cp):
    torch.manual_seed(0)
    net = ref.randomize_batchnorm(ref.resnet18(num_classes=10).eval())
    model = zoo.resnet18(input_shape=(3, 32, 32), num_classes=10, classifier_activation=None).to("gpu")
    load_torch_state_dict(model, net.state_dict())
    assert all(isinstance(w, cp.ndarray) for w in model.named_weights().values())
    x = _input((3, 32, 32))
    logits = model.predict(x)
    logits = logits.get() if hasattr(logits, "get") else logits
    _assert_logits_equal(logits, _torch_out(net, x))


@pytest.mark.parametrize("arch,builder", [("resnet18", ref.resnet18), ("resnet50", ref.resnet50)])
def test_our_weights_load_into_torch(rng, arch, builder):
    from cudacnn.interchange import torch_state_dict

    model = zoo.get(arch, input_shape=(3, 32, 32), num_classes=10, classifier_activation=None)
    for layer in model.leaf_layers():  # non-trivial batch-norm statistics
        if "moving_mean" in layer.state:
            c = layer.state["moving_mean"].shape[0]
            layer.state["moving_mean"] = (0.1 * rng.standard_normal(c)).astype(np.float32)
            layer.state["moving_variance"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    net = builder(num_classes=10).eval()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in torch_state_dict(model).items()})  # strict
    x = _input((3, 32, 32))
    _assert_logits_equal(model.predict(x), _torch_out(net, x))


def test_headless_vgg16_exports_torchvision_feature_keys():
    from cudacnn.interchange import torch_state_dict

    conv_indices, index = [], 0
    for v in ref.VGG16_CFG:  # torchvision's features: conv, relu per number; one pool per "M"
        if v != "M":
            conv_indices.append(index)
        index += 1 if v == "M" else 2
    expected = {f"features.{i}.{p}" for i in conv_indices for p in ("weight", "bias")}
    state = torch_state_dict(zoo.vgg16(input_shape=(3, 32, 32), include_top=False))
    assert set(state) == expected
    assert state["features.28.weight"].shape == (512, 512, 3, 3)


def _small_net():
    from cudacnn.layers import BatchNormalization, Conv2D, Dense, Flatten, Input
    from cudacnn.models import Sequential

    return Sequential([Input((1, 8, 8)), Conv2D(2, 3, name="conv"), BatchNormalization(name="bn"),
                       Flatten(name="fl"), Dense(3, name="fc")], name="net")


def test_a_bad_tensor_late_in_the_dict_changes_no_weight():
    from cudacnn.interchange import torch_state_dict

    model = _small_net()
    state = {k: np.ones_like(v) for k, v in torch_state_dict(model).items()}
    state["fc.bias"] = np.array(["x", "y", "z"])  # the right shape, but no numbers
    before = {k: v.copy() for k, v in model.named_weights().items()}
    for strict in (True, False):
        with pytest.raises(ValueError, match="real numbers.*fc.bias"):
            load_torch_state_dict(model, state, strict=strict)
    assert all(np.array_equal(before[k], v) for k, v in model.named_weights().items())
    state["fc.bias"] = np.ones(3, np.complex64)  # would silently lose its imaginary part
    with pytest.raises(ValueError, match="fc.bias"):
        load_torch_state_dict(model, state)


def test_half_and_bfloat16_checkpoints_load_as_float32(tmp_path):
    from cudacnn.interchange import torch_state_dict

    state = torch_state_dict(_small_net())
    for dtype in (torch.bfloat16, torch.float16):
        path = tmp_path / f"{dtype}.pt".replace("torch.", "")
        torch.save({k: torch.from_numpy(v).to(dtype) if v.dtype == np.float32 else torch.from_numpy(v)
                    for k, v in state.items()}, path)
        model = _small_net()
        assert load_torch_state_dict(model, path)["loaded"] == 8
        expected = torch.from_numpy(state["fc.weight"]).to(dtype).float().numpy()
        np.testing.assert_array_equal(model.get_layer("fc").params["kernel"], expected)


def test_bad_arguments_are_type_errors():
    from cudacnn.interchange import torch_state_dict

    state = torch_state_dict(_small_net())
    with pytest.raises(TypeError, match="cudacnn model"):
        load_torch_state_dict(None, state)
    with pytest.raises(TypeError, match="cudacnn model"):
        torch_state_dict(None)
    with pytest.raises(TypeError, match="strict"):
        load_torch_state_dict(_small_net(), state, strict="no")
    with pytest.raises(TypeError, match="arch"):
        load_torch_state_dict(_small_net(), state, arch=5)


def test_zoo_weights_argument_loads_a_state_dict_file(tmp_path):
    """Keras' VGG16(weights=..., include_top=False): a torchvision file instead of 'imagenet'."""
    torch.manual_seed(0)
    net = ref.vgg16().eval()
    torch.save(net.state_dict(), tmp_path / "vgg16.pth")
    base = zoo.vgg16(input_shape=(3, 32, 32), include_top=False, weights=str(tmp_path / "vgg16.pth"))
    x = _input((3, 32, 32))
    _assert_logits_equal(base.predict(x), _torch_out(net.features, x))
    same = zoo.get("vgg16", input_shape=(3, 32, 32), include_top=False, weights=tmp_path / "vgg16.pth")
    np.testing.assert_array_equal(same.predict(x), base.predict(x))
    with pytest.raises(ValueError, match=r"resnet18: cudacnn ships and downloads no pretrained weights.*"
                                         r"weights='resnet18.pth'"):
        zoo.resnet18(weights="imagenet")
    # include_top given by position counts too; a file of another net is refused, even headless.
    positional = zoo.vgg16((3, 32, 32), 1000, False, weights=tmp_path / "vgg16.pth")
    np.testing.assert_array_equal(positional.predict(x), base.predict(x))
    torch.save(ref.resnet18(num_classes=10).state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match=r"vgg16: .*r18.pth does not fit this model: missing \['block1_conv1/kernel'"):
        zoo.vgg16(input_shape=(3, 32, 32), include_top=False, weights=tmp_path / "r18.pth")


@pytest.mark.parametrize("center,scale", [(True, False), (False, True), (False, False)])
def test_batch_norm_without_gamma_or_beta_round_trips_through_torch(center, scale):
    """torch keeps both affine weights or neither: the missing one goes out as ones or zeros,
    and comes back as nothing."""
    from cudacnn import layers as L
    from cudacnn.interchange import torch_state_dict
    from cudacnn.models import Sequential
    model = Sequential([L.Conv2D(3, 3, input_shape=(2, 6, 6), name="conv"),
                        L.BatchNormalization(center=center, scale=scale, name="bn")])
    model.get_layer("bn").state["moving_mean"][:] = [0.5, -1.0, 2.0]
    state = torch_state_dict(model, arch="plain")
    net = torch.nn.Sequential()
    net.add_module("conv", torch.nn.Conv2d(2, 3, 3))
    net.add_module("bn", torch.nn.BatchNorm2d(3, eps=1e-3, affine=center or scale))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    x = _input((2, 6, 6))
    _assert_logits_equal(model.predict(x), _torch_out(net.eval(), x))
    again = Sequential([L.Conv2D(3, 3, input_shape=(2, 6, 6), name="conv"),
                        L.BatchNormalization(center=center, scale=scale, name="bn")])
    report = load_torch_state_dict(again, net.state_dict(), arch="plain")
    assert report["unexpected"] == report["missing"] == []
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


def test_odd_state_dict_values_are_named_with_their_key_and_file(tmp_path):
    torch.manual_seed(0)
    net = ref.resnet18(num_classes=10)
    model = zoo.resnet18(input_shape=(3, 32, 32), num_classes=10)
    for what, value, message in [
            ("meta", torch.empty(10, device="meta"), r"'fc.bias' is a meta tensor"),
            ("ragged", [[1.0, 2.0], [3.0]], r"'fc.bias' is not an array"),
            ("huge", torch.full((10,), 1e300, dtype=torch.float64), r"'fc.bias' holds values beyond float32's range")]:
        state = {**net.state_dict(), "fc.bias": value}
        with pytest.raises(ValueError, match=message):
            load_torch_state_dict(model, state)
        torch.save(state, tmp_path / f"{what}.pt")
        with pytest.raises(ValueError, match=rf"{what}\.pt: state_dict entry " + message):
            load_torch_state_dict(model, tmp_path / f"{what}.pt")
    # A training checkpoint keeps the weights under "model" (or "state_dict", "model_state_dict").
    torch.save({"model": net.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pt")
    assert load_torch_state_dict(model, tmp_path / "checkpoint.pt")["loaded"] > 0
    del_key = {k: v for k, v in net.state_dict().items() if k != "fc.bias"}
    torch.save(del_key, tmp_path / "short.pt")
    with pytest.raises(ValueError, match=r"short.pt: state_dict does not match the resnet18 architecture"):
        load_torch_state_dict(model, tmp_path / "short.pt")
