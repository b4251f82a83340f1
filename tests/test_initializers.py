"""Weight initialisers: every Keras name, against Keras' formulas (keras/src/initializers).

Kernels use PyTorch layouts -- Dense (out, in), Conv2D (out, in, kh, kw) -- and the fans are
computed here from that layout, independently of ``initializers.compute_fans``:
    fan_in = in * kh * kw,  fan_out = out * kh * kw.
Keras' VarianceScaling draws with variance scale / n, n = fan_in, fan_out or their mean:
    uniform:          U(-limit, limit), limit = sqrt(3 * scale / n)
    truncated normal: N(0, s) cut at +-2 s, s = sqrt(scale / n) / 0.8796..., so that the
                      truncated distribution's std is sqrt(scale / n)
    glorot_*: scale 1, n = (fan_in + fan_out) / 2;  he_*: scale 2, n = fan_in;
    lecun_*: scale 1, n = fan_in.
random_normal is N(0, 0.05) (not truncated), random_uniform U(-0.05, 0.05).

The samples are large (>= 57,600 values), so a std is known to about 0.3% (one standard error);
STD_RTOL (2%) is ~7 standard errors, and test_tolerances_separate_keras_from_near_misses checks
that it is far tighter than the gap to the usual mistakes (fan_in for fan_avg, 3 for 6 in
he_uniform's limit, a missing truncation correction: 10% to 40% off).
"""
import math
import re

import numpy as np
import pytest

from cudacnn import initializers, layers, random as cc_random

CONV = (96, 40, 3, 5)  # (out, in, kh, kw): fan_in 600, fan_out 1440
DENSE = (300, 500)  # (out, in): fan_in 500, fan_out 300
SHAPES = [pytest.param(CONV, id="conv"), pytest.param(DENSE, id="dense")]

STD_RTOL = 0.02


def fans(shape):
    out, inp, *receptive = shape
    r = math.prod(receptive)
    return inp * r, out * r


def _std_of_unit_normal_cut_at_2():
    """The std of N(0, 1) truncated to [-2, 2]: 1 - 2 a phi(a) / (2 Phi(a) - 1) is its variance."""
    a = 2.0
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(a / math.sqrt(2))  # P(-a < Z < a)
    return math.sqrt(1 - 2 * a * phi / mass)


TRUNCATION = _std_of_unit_normal_cut_at_2()  # 0.8796...


def variance(name, shape):
    fan_in, fan_out = fans(shape)
    return {"glorot": 2.0 / (fan_in + fan_out), "he": 2.0 / fan_in, "lecun": 1.0 / fan_in}[name]


def uniform_limit(name, shape):
    return math.sqrt(3 * variance(name, shape))


def normal_std(name, shape):
    return math.sqrt(variance(name, shape))


def _draw(name, shape, seed=7):
    cc_random.set_seed(seed)
    w = initializers.initialize(name, shape)
    assert w.shape == shape and w.dtype == np.float32
    return w.astype(np.float64)


def _assert_centred(w, std):
    assert abs(w.mean()) < 5 * std / math.sqrt(w.size), w.mean()


def _assert_std(w, std):
    assert w.std() == pytest.approx(std, rel=STD_RTOL)


def _assert_uniform(w, limit):
    # float32 draws: the ends may be hit (rounding) but never passed
    assert w.min() >= -limit * (1 + 1e-6) and w.max() <= limit * (1 + 1e-6)
    gap = 20 * 2 * limit / w.size  # ~20 expected spacings: the ends are reached
    assert w.min() < -limit + gap and w.max() > limit - gap
    _assert_centred(w, limit / math.sqrt(3))
    _assert_std(w, limit / math.sqrt(3))


def _assert_truncated_normal(w, std):
    """std: the intended std after truncation; the cut is at 2 x the untruncated scale."""
    cut = 2 * std / TRUNCATION
    assert np.abs(w).max() <= cut * (1 + 1e-6)
    assert np.abs(w).max() > 0.99 * cut  # cut there, not at 2 std (the uncorrected scale's cut)
    _assert_centred(w, std)
    _assert_std(w, std)


def test_zeros_and_ones():
    for name, value in (("zeros", 0.0), ("ones", 1.0)):
        w = initializers.initialize(name, CONV)
        assert w.shape == CONV and w.dtype == np.float32
        np.testing.assert_array_equal(w, value)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("family", ["glorot", "he", "lecun"])
def test_variance_scaling_uniform(shape, family):
    _assert_uniform(_draw(f"{family}_uniform", shape), uniform_limit(family, shape))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("family", ["glorot", "he", "lecun"])
def test_variance_scaling_truncated_normal(shape, family):
    _assert_truncated_normal(_draw(f"{family}_normal", shape), normal_std(family, shape))


@pytest.mark.parametrize("shape", SHAPES)
def test_random_normal_is_an_untruncated_normal_of_std_0_05(shape):
    w = _draw("random_normal", shape)
    _assert_centred(w, 0.05)
    _assert_std(w, 0.05)
    assert np.abs(w).max() > 3.5 * 0.05  # ~0.05% of N(0, 1) lies beyond 3.5: dozens of values here


@pytest.mark.parametrize("shape", SHAPES)
def test_random_uniform_spans_plus_minus_0_05(shape):
    _assert_uniform(_draw("random_uniform", shape), 0.05)


@pytest.mark.parametrize("name,family", [("glorot_uniform", "glorot"), ("he_uniform", "he"),
                                         ("lecun_uniform", "lecun"), ("glorot_normal", "glorot"),
                                         ("he_normal", "he"), ("lecun_normal", "lecun"),
                                         ("random_normal", None), ("random_uniform", None)])
def test_whole_distribution_matches_scipy(name, family):
    """Kolmogorov-Smirnov against scipy's distribution: the shape, not only two moments."""
    stats = pytest.importorskip("scipy.stats")
    if name == "random_normal":
        dist = stats.norm(scale=0.05)
    elif name == "random_uniform":
        dist = stats.uniform(loc=-0.05, scale=0.1)
    elif name.endswith("_uniform"):
        limit = uniform_limit(family, CONV)
        dist = stats.uniform(loc=-limit, scale=2 * limit)
    else:
        dist = stats.truncnorm(-2, 2, scale=normal_std(family, CONV) / TRUNCATION)
    assert stats.kstest(_draw(name, CONV).ravel(), dist.cdf).pvalue > 1e-3


def test_tolerances_separate_keras_from_near_misses():
    """The checks above cannot pass a usual mistake: each lands well outside STD_RTOL or the bounds."""
    assert TRUNCATION == pytest.approx(0.87962566103423978, rel=1e-12)  # Keras' constant
    for shape in (CONV, DENSE):
        fan_in, _ = fans(shape)
        # glorot with fan_in alone (var 1/fan_in or 2/fan_in) instead of the average of the fans
        for wrong in (1.0 / fan_in, 2.0 / fan_in):
            assert abs(math.sqrt(wrong / variance("glorot", shape)) - 1) > 5 * STD_RTOL
        # he_uniform's limit from 3 (lecun's) instead of 6: its max falls 29% short of the limit
        assert math.sqrt(3.0 / fan_in) < 0.75 * uniform_limit("he", shape)
    # a truncated normal without the correction: std 12% low and the largest value at 2 std
    assert 1 - TRUNCATION > 5 * STD_RTOL and 2.0 < 0.99 * 2 / TRUNCATION


def test_layers_initialise_their_pytorch_layout_kernels_with_these_fans():
    """Conv2D's kernel (filters, in, kh, kw) and Dense's (units, in) reach the initialiser as is."""
    from cudacnn.layers import Conv2D, Dense

    cc_random.set_seed(3)
    conv = Conv2D(96, (3, 5), kernel_initializer="he_uniform")
    conv.ensure_built((40, 9, 9))
    assert conv.params["kernel"].shape == CONV
    _assert_uniform(conv.params["kernel"].astype(np.float64), uniform_limit("he", CONV))
    dense = Dense(300, kernel_initializer="GlorotNormal")
    dense.ensure_built((500,))
    assert dense.params["kernel"].shape == DENSE
    _assert_truncated_normal(dense.params["kernel"].astype(np.float64), normal_std("glorot", DENSE))
    np.testing.assert_array_equal(dense.params["bias"], 0.0)


@pytest.mark.parametrize("shape,expected", [((7,), (7, 7)), ((4, 6), (6, 4)), ((8, 3, 5), (15, 40)),
                                            (CONV, fans(CONV)), ((), (1, 1))])
def test_compute_fans_reads_the_pytorch_layout(shape, expected):
    """1-D: both fans are the length (Keras); Conv1D (out, in, k); Conv2D (out, in, kh, kw)."""
    assert initializers.compute_fans(shape) == expected


def test_a_seed_gives_the_same_weights():
    for name in ("glorot_uniform", "he_normal", "random_normal"):
        np.testing.assert_array_equal(_draw(name, (8, 4, 3, 3), seed=11), _draw(name, (8, 4, 3, 3), seed=11))
        assert not np.array_equal(_draw(name, (8, 4, 3, 3), seed=11), _draw(name, (8, 4, 3, 3), seed=12))



@pytest.mark.parametrize("make, argument, got, needed, input_shape", [
    (lambda **init: layers.Dense(3, **init), "kernel", (7,), (3, 4), (4,)),
    (lambda **init: layers.Dense(3, **init), "bias", (3, 1), (3,), (4,)),
    # transposed: the kernel would read as built for 3 input channels
    (lambda **init: layers.Conv2D(3, 3, **init), "kernel", (3, 3, 4, 3), (3, 4, 3, 3), (4, 8, 8)),
])
def test_a_callable_initializer_of_the_wrong_shape_is_refused_at_build(make, argument, got, needed, input_shape):
    def wrong(shape):
        return np.ones(got)

    layer = make(**{f"{argument}_initializer": wrong})
    with pytest.raises(ValueError, match=rf"layer '{layer.name}' weight '{argument}': initializer "
                                         rf"'.*wrong' returned shape {re.escape(str(got))}, but the weight "
                                         rf"needs shape {re.escape(str(needed))}"):
        layer.ensure_built(input_shape)


def test_a_callable_initializer_returning_a_scalar_is_refused():
    def half(shape):
        return 0.5

    with pytest.raises(ValueError, match=r"the weight: initializer '.*half' returned shape \(\), but the weight "
                                         r"needs shape \(3, 4\)"):
        initializers.initialize(half, (3, 4))
    assert initializers.initialize(lambda shape: np.full(shape, 0.5, np.float64), (3, 4)).dtype == np.float32
