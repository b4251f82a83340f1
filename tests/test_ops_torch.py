"""Semantics cross-check against PyTorch (CPU, float64), the framework whose conventions
the contract adopts: conv weight layout, pooling indices, batch-norm running statistics,
cross-entropy with index and probability labels."""
import numpy as np
import pytest

from cudacnn import ops

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 0, 1, 1), (2, 1, 1, 2),
                                                            ((2, 1), (0, 2), (1, 2), 4)])
def test_conv2d_and_backward_match_torch(rng, stride, padding, dilation, groups):
    x, w, b = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((8, 4 // groups, 3, 2)), rng.standard_normal(8)
    xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
    yt = F.conv2d(xt, wt, bt, stride, padding, dilation, groups)
    y = ops.conv2d(x, w, b, stride, padding, dilation, groups)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    yt.backward(_t(dy))
    for ours, theirs in zip(ops.conv2d_backward(dy, x, w, stride, padding, dilation, groups),
                            (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_max_pool2d_values_indices_and_backward_match_torch(rng):
    x = rng.standard_normal((2, 3, 9, 7))
    xt = _t(x, True)
    yt, it = F.max_pool2d(xt, 3, 2, 1, return_indices=True)
    y, indices = ops.max_pool2d(x, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(indices, it.numpy())
    dy = rng.standard_normal(y.shape)
    yt.backward(_t(dy))
    np.testing.assert_allclose(ops.max_pool2d_backward(dy, x, 3, 2, 1, indices=indices),
                               xt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_matches_torch(rng, count_include_pad):
    x = rng.standard_normal((2, 3, 7, 6))
    xt = _t(x, True)
    yt = F.avg_pool2d(xt, (3, 2), (2, 1), (1, 1), count_include_pad=count_include_pad)
    y = ops.avg_pool2d(x, (3, 2), (2, 1), (1, 1), count_include_pad)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    yt.backward(_t(dy))
    np.testing.assert_allclose(ops.avg_pool2d_backward(dy, x, (3, 2), (2, 1), (1, 1), count_include_pad),
                               xt.grad.numpy(), rtol=1e-12)


def test_batch_norm_training_matches_torch(rng):
    x, gamma, beta = rng.standard_normal((4, 3, 5, 2)) * 3 + 1, rng.standard_normal(3), rng.standard_normal(3)
    mean, var = np.zeros(3), np.ones(3)
    mean_t, var_t = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    xt, gt, bt = _t(x, True), _t(gamma, True), _t(beta, True)
    yt = F.batch_norm(xt, mean_t, var_t, gt, bt, training=True, momentum=0.2, eps=1e-4)
    y, cache = ops.batch_norm(x, gamma, beta, mean, var, True, momentum=0.2, eps=1e-4)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mean, mean_t.numpy(), rtol=1e-12)
    np.testing.assert_allclose(var, var_t.numpy(), rtol=1e-12)
    dy = rng.standard_normal(y.shape)
    yt.backward(_t(dy))
    for ours, theirs in zip(ops.batch_norm_backward(dy, cache), (xt.grad, gt.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("soft", [False, True], ids=["indices", "probabilities"])
def test_softmax_cross_entropy_matches_torch(rng, soft):
    logits = rng.standard_normal((6, 4)) * 4
    labels = rng.dirichlet(np.ones(4), 6) if soft else rng.integers(0, 4, 6)
    lt = _t(logits, True)
    loss_t = F.cross_entropy(lt, torch.tensor(labels))
    loss_t.backward()
    loss, cache = ops.softmax_cross_entropy(logits, labels)
    np.testing.assert_allclose(loss, loss_t.item(), rtol=1e-12)
    np.testing.assert_allclose(ops.softmax_cross_entropy_backward(cache), lt.grad.numpy(), rtol=1e-10)
