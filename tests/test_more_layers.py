"""GlobalMaxPooling2D, ZeroPadding2D and Reshape against PyTorch (forward and gradients)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import cudacnn  # noqa: E402
from cudacnn import layers as L  # noqa: E402


def run(layer, x, dy):
    y = layer(x, training=True)
    return y, layer.backward(dy)


def torch_run(fn, x, dy):
    t = torch.tensor(x, requires_grad=True)
    y = fn(t)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), t.grad.numpy()


def test_global_max_pooling_matches_torch(rng):
    x = rng.standard_normal((3, 5, 4, 7)).astype(np.float32)
    dy = rng.standard_normal((3, 5)).astype(np.float32)
    y, dx = run(L.GlobalMaxPooling2D(), x, dy)
    y_ref, dx_ref = torch_run(lambda t: torch.amax(t, dim=(2, 3)), x, dy)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)  # distinct values: one maximum per map


def test_global_max_pooling_sends_a_tie_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2), np.float32)
    _, dx = run(L.GlobalMaxPooling2D(), x, np.ones((1, 1), np.float32))
    np.testing.assert_array_equal(dx, [[[[1, 0], [0, 0]]]])


@pytest.mark.parametrize("padding,pads", [(1, (1, 1, 1, 1)), ((2, 0), (0, 0, 2, 2)), (((0, 1), (3, 2)), (3, 2, 0, 1))])
def test_zero_padding_matches_torch(rng, padding, pads):  # torch's F.pad: (left, right, top, bottom)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    layer = L.ZeroPadding2D(padding)
    shape = layer.compute_output_shape(x.shape[1:])
    dy = rng.standard_normal((2, *shape)).astype(np.float32)
    y, dx = run(layer, x, dy)
    y_ref, dx_ref = torch_run(lambda t: torch.nn.functional.pad(t, pads), x, dy)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(dx, dx_ref)


def test_reshape_infers_minus_one_and_round_trips(rng):
    x = rng.standard_normal((2, 3, 4, 2)).astype(np.float32)
    layer = L.Reshape((4, -1))
    y, dx = run(layer, x, np.arange(48, dtype=np.float32).reshape(2, 4, 6))
    np.testing.assert_array_equal(y, x.reshape(2, 4, 6))
    np.testing.assert_array_equal(dx, np.arange(48, dtype=np.float32).reshape(2, 3, 4, 2))
    model = cudacnn.Sequential([L.Conv2D(4, 3, padding="same", input_shape=(1, 6, 6)), L.Reshape((4, 36)),
                                L.Reshape((-1,)), L.Dense(2)])
    assert model.output_shape == (None, 2)


@pytest.mark.parametrize("make,message", [
    (lambda: L.ZeroPadding2D(-1), "ZeroPadding2D padding"),
    (lambda: L.ZeroPadding2D((1, 2, 3)), "ZeroPadding2D padding"),
    (lambda: L.Reshape((2, -1, -1)), "at most one -1"),
    (lambda: L.Reshape((0, 3)), "positive ints"),
    (lambda: cudacnn.Sequential([L.Reshape((5, 5), input_shape=(3, 4))]), r"cannot reshape per-sample \(3, 4\)"),
    (lambda: cudacnn.Sequential([L.GlobalMaxPooling2D(input_shape=(3, 4))]), r"expects per-sample inputs \(C, H, W\)"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_new_layers_save_and_load(tmp_path, rng):
    model = cudacnn.Sequential([L.ZeroPadding2D(((1, 0), (0, 2)), input_shape=(2, 5, 5)), L.Conv2D(3, 3),
                                L.GlobalMaxPooling2D(), L.Reshape((3, 1)), L.Flatten(), L.Dense(2)])
    model.save(tmp_path / "m.cudacnn")
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(cudacnn.load_model(tmp_path / "m.cudacnn").predict(x), model.predict(x))


@pytest.mark.gpu
def test_global_max_pooling_on_the_gpu_matches_the_cpu(cp, rng):
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    dy = rng.standard_normal((2, 3)).astype(np.float32)
    y, dx = run(L.GlobalMaxPooling2D(), x, dy)
    gy, gdx = run(L.GlobalMaxPooling2D(), cp.asarray(x), cp.asarray(dy))
    np.testing.assert_array_equal(cp.asnumpy(gy), y)
    np.testing.assert_array_equal(cp.asnumpy(gdx), dx)
