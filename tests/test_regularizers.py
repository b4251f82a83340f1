"""kernel_regularizer / bias_regularizer: the penalty joins the loss, its gradient the step."""
import numpy as np
import pytest

import cudacnn
from cudacnn import layers as L, optimizers, regularizers


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 5, 5)).astype(np.float32), rng.integers(0, 3, n)


def net(**regs):
    cudacnn.set_seed(4)
    model = cudacnn.Sequential([L.Conv2D(3, 3, input_shape=(1, 5, 5), **regs.get("conv", {})), L.Flatten(),
                                L.Dense(3, activation="softmax", **regs.get("dense", {}))])
    model.compile(optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    return model


def test_l2_and_l1_penalties_add_to_the_loss_and_the_gradient():
    x, y = data()
    plain = net()
    reg = net(conv={"kernel_regularizer": regularizers.L2(0.05)},
              dense={"kernel_regularizer": "l1", "bias_regularizer": regularizers.L1L2(0.02, 0.03)})
    before = reg.get_weights()  # conv kernel, conv bias, dense kernel, dense bias
    bias = np.random.default_rng(1).standard_normal(3).astype(np.float32)
    for model in (plain, reg):  # a non-zero bias, so its L1 and L2 terms count
        model.layers[2].params["bias"] = bias.copy()
    before[3] = bias
    penalty = (0.05 * np.sum(before[0].astype(np.float64) ** 2) + 0.01 * np.abs(before[2]).sum()
               + 0.02 * np.abs(bias).sum() + 0.03 * np.sum(bias.astype(np.float64) ** 2))
    assert reg.evaluate(x, y, verbose=0) == pytest.approx(plain.evaluate(x, y, verbose=0) + penalty, rel=1e-5)
    loss_plain = plain.train_on_batch(x, y)
    loss_reg = reg.train_on_batch(x, y)
    assert loss_reg == pytest.approx(loss_plain + penalty, rel=1e-5)  # penalty of the weights before the step
    # SGD: w_reg = w_plain - lr * d(penalty)/dw, the data gradients being the same
    extra = [0.05 * 2 * before[0], np.zeros_like(before[1]), 0.01 * np.sign(before[2]),
             0.02 * np.sign(bias) + 0.03 * 2 * bias]
    for w_plain, w_reg, d in zip(plain.get_weights(), reg.get_weights(), extra):
        np.testing.assert_allclose(w_reg, w_plain - 0.1 * d, rtol=1e-5, atol=1e-6)


def test_frozen_layers_are_not_penalised():
    x, y = data()
    plain, reg = net(), net(dense={"kernel_regularizer": regularizers.L2(1.0)})
    for model in (plain, reg):
        model.layers[2].trainable = False
    assert reg.evaluate(x, y, verbose=0) == pytest.approx(plain.evaluate(x, y, verbose=0), rel=1e-6)


def test_regularizers_survive_save_and_load(tmp_path):
    model = net(conv={"kernel_regularizer": regularizers.l2(0.002)}, dense={"bias_regularizer": "l1_l2"})
    model.save(tmp_path / "m.cudacnn")
    loaded = cudacnn.load_model(tmp_path / "m.cudacnn")
    conv, dense = loaded.layers[0], loaded.layers[2]
    assert repr(conv.regularizers["kernel"]) == "L2(l1=0.0, l2=0.002)"
    assert repr(dense.regularizers["bias"]) == "L1L2(l1=0.01, l2=0.01)"
    assert "kernel" not in dense.regularizers


@pytest.mark.parametrize("make,message", [
    (lambda: L.Dense(3, kernel_regularizer="l3"), "unknown regularizer 'l3'"),
    (lambda: regularizers.L2(-0.1), r"l2 must be in \[0.0, inf\)"),
    (lambda: regularizers.L1(float("nan")), "l1 must be a finite real number"),
    (lambda: regularizers.L2(True), "l2 must be a finite real number"),
])
def test_bad_regularizers_are_named(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_only_regularizers_that_load_back_can_be_saved(tmp_path):
    class Custom(regularizers.L2):
        pass

    assert repr(regularizers.L2(np.float32(0.5))) == "L2(l1=0.0, l2=0.5)"
    plain = net(dense={"kernel_regularizer": regularizers.Regularizer(l1=0.1)})
    plain.save(tmp_path / "plain.cudacnn")  # saved as the L1L2 it equals
    loaded = cudacnn.load_model(tmp_path / "plain.cudacnn")
    assert repr(loaded.layers[2].regularizers["kernel"]) == "L1L2(l1=0.1, l2=0.0)"
    with pytest.raises(TypeError, match="only L1, L2 and L1L2 regularizers can be saved"):
        net(dense={"kernel_regularizer": Custom(0.1)}).save(tmp_path / "custom.cudacnn")
    assert not (tmp_path / "custom.cudacnn").exists()


@pytest.mark.gpu
def test_penalty_on_the_gpu_matches_the_cpu(cp):
    x, y = data()
    cpu = net(conv={"kernel_regularizer": "l2"})
    gpu = net(conv={"kernel_regularizer": "l2"}).to("gpu")
    assert gpu.train_on_batch(cp.asarray(x), cp.asarray(y)) == pytest.approx(
        cpu.train_on_batch(x, y), rel=1e-4)
    for on_gpu, on_cpu in zip(gpu.layers, cpu.layers):
        for name, w in on_cpu.params.items():
            np.testing.assert_allclose(cp.asnumpy(on_gpu.params[name]), w, rtol=1e-4, atol=1e-5)
