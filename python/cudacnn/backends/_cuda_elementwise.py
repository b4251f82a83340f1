"""Activations and dropout (csrc/elementwise.cu) and optimizer steps (csrc/optimizers.cu) on our kernels."""
from __future__ import annotations

from . import _cuda_common as common


def _activation(name, x, param=0.0):
    reason = common.unsupported(x)
    if reason:
        backend = common.fallback(name, reason)
        return getattr(backend, name)(x) if name in ("relu", "sigmoid", "tanh") else getattr(backend, name)(x, param)
    C = common.ext()
    x = common.f32(x)
    y = common.empty(x.shape)
    C.activation_forward(common.ptr(y), common.ptr(x), x.size, getattr(C.Activation, name), float(param),
                         common.stream())
    return y


def _activation_backward(name, dy, xy, param=0.0):
    reason = common.unsupported(dy, xy)
    if reason:
        backend = common.fallback(name + "_backward", reason)
        fn = getattr(backend, name + "_backward")
        return fn(dy, xy) if name in ("relu", "sigmoid", "tanh") else fn(dy, xy, param)
    C = common.ext()
    dy, xy = common.f32(dy), common.f32(xy)
    dx = common.empty(dy.shape)
    C.activation_backward(common.ptr(dx), common.ptr(dy), common.ptr(xy), dy.size, getattr(C.Activation, name),
                          float(param), common.stream())
    return dx


def relu(x):
    return _activation("relu", x)


def relu_backward(dy, x):
    return _activation_backward("relu", dy, x)


def leaky_relu(x, negative_slope):
    return _activation("leaky_relu", x, negative_slope)


def leaky_relu_backward(dy, x, negative_slope):
    return _activation_backward("leaky_relu", dy, x, negative_slope)


def elu(x, alpha):
    return _activation("elu", x, alpha)


def elu_backward(dy, x, alpha):
    return _activation_backward("elu", dy, x, alpha)


def sigmoid(x):
    return _activation("sigmoid", x)


def sigmoid_backward(dy, y):
    return _activation_backward("sigmoid", dy, y)


def tanh(x):
    return _activation("tanh", x)


def tanh_backward(dy, y):
    return _activation_backward("tanh", dy, y)


def _dropout(name, a, rate, seed):
    reason = common.unsupported(a)
    if reason:
        return getattr(common.fallback(name, reason), name)(a, rate, seed)
    a = common.f32(a)
    out = common.empty(a.shape)
    common.ext().dropout_apply(common.ptr(out), common.ptr(a), a.size, float(rate), int(seed) & 0xFFFFFFFF,
                               common.stream())
    return out


def dropout(x, rate, seed):
    return _dropout("dropout", x, rate, seed)


def dropout_backward(dy, rate, seed):
    return _dropout("dropout_backward", dy, rate, seed)


def _in_place_reason(*tensor_lists):
    """Why the in-place update cannot run on our kernels (None when it can)."""
    arrays = [a for tensors in tensor_lists for a in tensors if a is not None]
    reason = common.unsupported(*arrays)
    if reason is None and not all(a.flags.c_contiguous for a in arrays):
        reason = "non-contiguous parameter or state (updated in place)"
    return reason


def _pointers(arrays):
    return [common.ptr(a) for a in arrays]


def sgd_update(ps, gs, velocities, lr, momentum, nesterov, weight_decay):
    used = velocities if momentum else [None] * len(ps)
    reason = _in_place_reason(ps, gs, used)
    if reason:
        return common.fallback("sgd_update", reason).sgd_update(ps, gs, velocities, lr, momentum, nesterov,
                                                                weight_decay)
    common.ext().sgd_update(_pointers(ps), _pointers(gs), _pointers(used), [p.size for p in ps], float(lr),
                            float(momentum), bool(nesterov), float(weight_decay), common.stream())


def rmsprop_update(ps, gs, mean_squares, lr, rho, eps, weight_decay):
    reason = _in_place_reason(ps, gs, mean_squares)
    if reason:
        return common.fallback("rmsprop_update", reason).rmsprop_update(ps, gs, mean_squares, lr, rho, eps,
                                                                        weight_decay)
    common.ext().rmsprop_update(_pointers(ps), _pointers(gs), _pointers(mean_squares), [p.size for p in ps],
                                float(lr), float(rho), float(eps), float(weight_decay), common.stream())


def adam_update(ps, gs, ms, vs, lr, beta1, beta2, eps, weight_decay, step):
    reason = _in_place_reason(ps, gs, ms, vs)
    if reason:
        return common.fallback("adam_update", reason).adam_update(ps, gs, ms, vs, lr, beta1, beta2, eps,
                                                                  weight_decay, step)
    common.ext().adam_update(_pointers(ps), _pointers(gs), _pointers(ms), _pointers(vs), [p.size for p in ps],
                             float(lr), float(beta1), float(beta2), float(eps), float(weight_decay), int(step),
                             common.stream())
