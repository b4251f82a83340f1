"""ImageDataGenerator: each transform against a hand-computed expectation, Keras's parameter
meaning (checked against Keras's own matrix recipe run through scipy.ndimage), normalisation,
subsets, the iterator protocol model.fit relies on, seeds, argument errors, and training."""
import re
import warnings

import numpy as np
import pytest

import cudacnn
from cudacnn import Sequential
from cudacnn import layers as L
from cudacnn.preprocessing import ImageDataGenerator


def dot(h=7, w=7, r=3, c=3):
    """One channel, zeros with a single bright pixel at (r, c)."""
    x = np.zeros((1, h, w), dtype=np.float32)
    x[0, r, c] = 1.0
    return x


def bright(x):
    return tuple(int(i) for i in np.argwhere(x[0] > 0.5)[0])


def ramp(h=9, w=9, along="cols"):
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    return (cols if along == "cols" else rows)[None]


# ----- geometry ---------------------------------------------------------------------------------
@pytest.mark.parametrize("params, where", [({"tx": 2}, (3, 1)), ({"tx": -2}, (3, 5)), ({"ty": 1}, (2, 3)),
                                           ({"tx": 1, "ty": -3}, (6, 2))])
def test_shift_moves_a_bright_pixel(params, where):
    # Keras: output(p) = input(p + t), so a positive tx moves the content left, ty up.
    gen = ImageDataGenerator(fill_mode="constant")
    assert bright(gen.apply_transform(dot(), params)) == where


def test_shift_ranges_follow_keras_int_float_and_list_rules():
    img = np.zeros((1, 10, 20))
    gen = ImageDataGenerator(width_shift_range=2, height_shift_range=0.25)
    draws = [gen.get_random_transform(img.shape, seed=s) for s in range(300)]
    tx = np.array([d["tx"] for d in draws])
    ty = np.array([d["ty"] for d in draws])
    assert set(tx) == {-1.0, 0.0, 1.0}  # int 2: whole pixels in (-2, 2)
    assert np.all(np.abs(ty) <= 2.5) and np.abs(ty).max() > 2.0 and not np.all(ty == np.round(ty))
    gen = ImageDataGenerator(width_shift_range=3.0, height_shift_range=[0.1, 0.2])
    draws = [gen.get_random_transform(img.shape, seed=s) for s in range(300)]
    assert max(abs(d["tx"]) for d in draws) <= 3.0 and max(abs(d["tx"]) for d in draws) > 2.5  # pixels
    assert {round(d["ty"], 9) for d in draws} == {-2.0, -1.0, 1.0, 2.0}  # list of fractions * height


def test_shift_ranges_act_on_the_named_axis_in_flow():
    x = np.stack([dot(9, 9, 4, 4)] * 40)
    batch = next(ImageDataGenerator(width_shift_range=3, fill_mode="constant").flow(x, seed=0))
    positions = {bright(img) for img in batch}
    assert {r for r, _ in positions} == {4} and len({c for _, c in positions}) > 2
    batch = next(ImageDataGenerator(height_shift_range=3, fill_mode="constant").flow(x, seed=0))
    positions = {bright(img) for img in batch}
    assert {c for _, c in positions} == {4} and len({r for r, _ in positions}) > 2


def test_rotation_is_counter_clockwise_about_the_centre():
    x = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5)
    gen = ImageDataGenerator()
    np.testing.assert_allclose(gen.apply_transform(x, {"theta": 90}), np.rot90(x, 1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(gen.apply_transform(x, {"theta": -90}), np.rot90(x, -1, axes=(1, 2)), atol=1e-5)
    y = np.arange(5 * 8, dtype=np.float32).reshape(1, 5, 8)  # not square: 180 degrees flips both axes
    np.testing.assert_allclose(gen.apply_transform(y, {"theta": 180}), y[:, ::-1, ::-1], atol=1e-5)
    # the pixel right of the centre goes to the top (counter-clockwise)
    assert bright(gen.apply_transform(dot(7, 7, 3, 5), {"theta": 90})) == (1, 3)


def test_rotation_range_draws_within_range_and_random_transform_uses_it():
    gen = ImageDataGenerator(rotation_range=30)
    thetas = [gen.get_random_transform((1, 8, 8), seed=s)["theta"] for s in range(200)]
    assert -30 <= min(thetas) < -20 and 20 < max(thetas) <= 30
    x = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    params = gen.get_random_transform(x.shape, seed=5)
    np.testing.assert_array_equal(gen.random_transform(x, seed=5), gen.apply_transform(x, params))


@pytest.mark.parametrize("zoom", [2.0, 0.5, 1.3])
def test_zoom_scales_about_the_centre(zoom):
    # zx > 1 zooms out: output column c samples input column 4 + zx * (c - 4); a ramp stays exact.
    gen = ImageDataGenerator(fill_mode="constant", cval=-1)
    out = gen.apply_transform(ramp(), {"zx": zoom})[0]
    source = 4 + zoom * (np.arange(9) - 4)
    expected = np.where((source >= 0) & (source <= 8), source, -1.0)
    np.testing.assert_allclose(out, np.broadcast_to(expected, (9, 9)), atol=1e-5)
    out = gen.apply_transform(ramp(along="rows"), {"zy": zoom})[0]
    np.testing.assert_allclose(out, np.broadcast_to(expected[:, None], (9, 9)), atol=1e-5)


def test_zoom_range_draws_each_axis_separately():
    gen = ImageDataGenerator(zoom_range=0.2)
    draws = [gen.get_random_transform((1, 8, 8), seed=s) for s in range(100)]
    zx, zy = np.array([d["zx"] for d in draws]), np.array([d["zy"] for d in draws])
    assert np.all((zx >= 0.8) & (zx <= 1.2) & (zy >= 0.8) & (zy <= 1.2)) and not np.allclose(zx, zy)
    assert ImageDataGenerator(zoom_range=(0.5, 0.7)).get_random_transform((1, 8, 8), seed=0)["zx"] <= 0.7


def test_shear_slants_columns_by_sin_and_squeezes_rows_by_cos():
    gen = ImageDataGenerator(fill_mode="nearest")
    s = np.deg2rad(10)
    rows = np.arange(9)[:, None]
    out = gen.apply_transform(ramp(along="cols"), {"shear": 10})[0]
    expected = np.arange(9)[None, :] - np.sin(s) * (rows - 4)
    np.testing.assert_allclose(out[:, 1:-1], expected[:, 1:-1], atol=1e-5)  # interior: a ramp is exact
    out = gen.apply_transform(ramp(along="rows"), {"shear": 10})[0]
    np.testing.assert_allclose(out, np.broadcast_to(4 + np.cos(s) * (rows - 4), (9, 9)), atol=1e-5)


@pytest.mark.parametrize("mode, cval, expected", [
    ("nearest", 0, [1, 1, 1, 2, 3]),   # aaaa|abcd|dddd
    ("constant", 9, [9, 9, 1, 2, 3]),  # kkkk|abcd|kkkk
    ("reflect", 0, [2, 1, 1, 2, 3]),   # dcba|abcd|dcba
    ("wrap", 0, [4, 5, 1, 2, 3]),      # abcd|abcd|abcd
])
def test_fill_modes_match_the_keras_documentation(mode, cval, expected):
    row = np.array([[[1, 2, 3, 4, 5]]], dtype=np.float32)
    out = ImageDataGenerator(fill_mode=mode, cval=cval).apply_transform(row, {"tx": -2})
    np.testing.assert_allclose(out[0, 0], expected, atol=1e-6)


@pytest.mark.parametrize("fill_mode, scipy_mode", [("constant", "constant"), ("nearest", "nearest"),
                                                   ("reflect", "reflect"), ("wrap", "grid-wrap")])
def test_combined_transform_matches_keras_recipe_through_scipy(fill_mode, scipy_mode):
    """Keras 2.9+ apply_affine_transform: R @ T @ S @ Z about the centre, x/y swapped into
    (row, col), resampled by scipy.ndimage at order 1 (square images, where Keras's centre is exact)."""
    ndimage = pytest.importorskip("scipy.ndimage")
    gen = ImageDataGenerator(rotation_range=40, width_shift_range=0.2, height_shift_range=0.2, shear_range=20,
                             zoom_range=0.3, horizontal_flip=True, vertical_flip=True, fill_mode=fill_mode,
                             cval=0.3, dtype="float64")
    x = np.random.default_rng(0).random((2, 9, 9))
    for seed in range(12):
        p = gen.get_random_transform(x.shape, seed=seed)
        th, sh = np.deg2rad(p["theta"]), np.deg2rad(p["shear"])
        m = (np.array([[np.cos(th), -np.sin(th), 0], [np.sin(th), np.cos(th), 0], [0, 0, 1]])
             @ np.array([[1, 0, p["tx"]], [0, 1, p["ty"]], [0, 0, 1]])
             @ np.array([[1, -np.sin(sh), 0], [0, np.cos(sh), 0], [0, 0, 1]]) @ np.diag([p["zx"], p["zy"], 1]))
        centre = np.array([[1, 0, 4], [0, 1, 4], [0, 0, 1]])
        m = (centre @ m @ np.linalg.inv(centre))[[1, 0, 2]][:, [1, 0, 2]]
        ref = np.stack([ndimage.affine_transform(ch, m[:2, :2], m[:2, 2], order=1, mode=scipy_mode, cval=0.3)
                        for ch in x])
        ref = ref[:, :, ::-1] if p["flip_horizontal"] else ref
        ref = ref[:, ::-1, :] if p["flip_vertical"] else ref
        np.testing.assert_allclose(gen.apply_transform(x, p), ref, atol=1e-9)


def test_flips():
    x = np.random.default_rng(1).random((2, 4, 5)).astype(np.float32)
    gen = ImageDataGenerator(horizontal_flip=True, vertical_flip=True)
    np.testing.assert_array_equal(gen.apply_transform(x, {"flip_horizontal": True}), x[:, :, ::-1])
    np.testing.assert_array_equal(gen.apply_transform(x, {"flip_vertical": True}), x[:, ::-1, :])
    np.testing.assert_array_equal(gen.apply_transform(x, {}), x)
    batch = np.stack([x] * 64)
    out = next(ImageDataGenerator(horizontal_flip=True).flow(batch, shuffle=False, seed=2))
    flipped = np.array([np.array_equal(o, x[:, :, ::-1]) for o in out])
    kept = np.array([np.array_equal(o, x) for o in out])
    assert np.all(flipped ^ kept) and 10 < flipped.sum() < 54


def test_channels_last_takes_and_yields_that_layout():
    x = np.random.default_rng(2).random((3, 2, 6, 6)).astype(np.float32)
    params = {"theta": 25, "tx": 1.5, "zy": 1.2, "flip_vertical": True}
    first = ImageDataGenerator(fill_mode="reflect")
    last = ImageDataGenerator(fill_mode="reflect", data_format="channels_last")
    np.testing.assert_allclose(last.apply_transform(x[0].transpose(1, 2, 0), params),
                               first.apply_transform(x[0], params).transpose(1, 2, 0), atol=1e-6)
    batch = next(ImageDataGenerator(data_format="channels_last", rescale=2.0).flow(x.transpose(0, 2, 3, 1)))
    assert batch.shape == (3, 6, 6, 2)
    last = ImageDataGenerator(featurewise_center=True, data_format="channels_last")
    last.fit(x.transpose(0, 2, 3, 1))
    assert last.mean.shape == (1, 1, 2)


# ----- normalisation ----------------------------------------------------------------------------
def test_rescale_and_preprocessing_function_order():
    x = np.full((2, 1, 3, 3), 4.0, dtype=np.float32)
    out = next(ImageDataGenerator(rescale=1 / 255).flow(x, shuffle=False))
    np.testing.assert_allclose(out, x / 255, rtol=1e-6)
    calls = []
    gen = ImageDataGenerator(rescale=0.5, preprocessing_function=lambda img: calls.append(img.shape) or img + 1)
    np.testing.assert_allclose(gen.standardize(x), (x + 1) * 0.5)  # the function runs before rescale
    assert calls == [(1, 3, 3), (1, 3, 3)]  # once per image
    np.testing.assert_array_equal(x, 4.0)  # the input is not changed


def test_rescale_on_data_already_in_0_1_warns():
    # cudacnn's data sets are float32 in [0, 1]; the lectures' rescale=1./255 (for Keras's uint8
    # 0..255) would then train on values <= 0.004, silently.
    x = np.random.default_rng(0).random((6, 1, 4, 4)).astype(np.float32)
    x[0, 0, 0, 0] = 1.0
    with pytest.warns(UserWarning, match=r"looks already scaled \(values in \[0\.0\d*, 1\]\) and "
                                         r"rescale=0\.00392157 .*0\.00392.*drop rescale"):
        ImageDataGenerator(rescale=1. / 255).flow(x, np.arange(6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageDataGenerator(rescale=1. / 255).flow(x * 255, np.arange(6))  # 0..255 floats
        ImageDataGenerator(rescale=1. / 255).flow((x * 255).astype(np.uint8))  # 0..255 bytes
        ImageDataGenerator().flow(x)  # no rescale
        ImageDataGenerator(rescale=2.0).flow(x)  # scaling up is no double rescale


def test_samplewise_statistics():
    x = np.random.default_rng(3).normal(5, 3, (4, 2, 5, 5)).astype(np.float32)
    out = ImageDataGenerator(samplewise_center=True, samplewise_std_normalization=True).standardize(x)
    np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2, 3)), 1, atol=1e-4)


def test_featurewise_statistics_from_fit():
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.normal(10, 2, (50, 1, 4, 4)), rng.normal(-3, 5, (50, 1, 4, 4))], axis=1)
    gen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True, rescale=0.5)
    gen.fit(x)
    np.testing.assert_allclose(gen.mean.ravel(), (0.5 * x).mean(axis=(0, 2, 3)), rtol=1e-5)  # rescaled first
    np.testing.assert_allclose(gen.std.ravel(), (0.5 * x).std(axis=(0, 2, 3)), rtol=1e-4)
    assert gen.mean.shape == (2, 1, 1)
    out = gen.standardize(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(0, 2, 3)), 1, atol=1e-4)


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("fitted, given", [(3, 1), (1, 3)])
def test_featurewise_statistics_refuse_images_of_another_channel_count(data_format, fitted, given):
    """Fit on 3 channels, flow 1: a broadcasting error mid-flow; fit on 1, flow 3: that one mean for all."""
    def images(channels):
        shape = (8, channels, 5, 5) if data_format == "channels_first" else (8, 5, 5, channels)
        return np.random.default_rng(channels).random(shape, dtype=np.float32)

    for kwargs in ({"featurewise_center": True}, {"featurewise_std_normalization": True}):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # std normalisation turns centring on, with a warning
            gen = ImageDataGenerator(data_format=data_format, **kwargs)
        gen.fit(images(fitted))
        x = images(given)
        message = rf"has {given} channel\(s\) \(shape {re.escape(str(x.shape))}\).*fit on {fitted} channel\(s\)"
        with pytest.raises(ValueError, match="flow: x " + message):
            gen.flow(x, np.zeros(8))
        with pytest.raises(ValueError, match="standardize: x " + message):
            gen.standardize(x)
        with pytest.raises(ValueError, match=rf"standardize: x has {given} channel"):
            gen.standardize(x[0])  # one image
        assert gen.random_transform(x[0]).shape == x[0].shape  # no statistics involved
        assert gen.standardize(images(fitted)).shape == images(fitted).shape


def test_featurewise_warnings():
    with pytest.warns(UserWarning, match="featurewise_center"):
        gen = ImageDataGenerator(featurewise_std_normalization=True)
    assert gen.featurewise_center  # Keras: std normalisation turns centring on
    x = np.ones((2, 1, 3, 3), dtype=np.float32)
    with pytest.warns(UserWarning, match="fit"):
        np.testing.assert_array_equal(gen.standardize(x), x)


# ----- subsets, iteration, seeds ----------------------------------------------------------------
def numbered(n):
    """Images whose pixels all equal their index, and the index as the label."""
    return np.arange(n, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2), np.float32), np.arange(n)


def test_validation_split_subsets_are_disjoint_and_cover_the_data():
    x, y = numbered(10)
    gen = ImageDataGenerator(validation_split=0.3)
    val = gen.flow(x, y, batch_size=100, shuffle=False, subset="validation", ignore_class_split=True)
    train = gen.flow(x, y, batch_size=100, shuffle=False, subset="training", ignore_class_split=True)
    (xv, yv), (xt, yt) = val[0], train[0]
    np.testing.assert_array_equal(yv, [0, 1, 2])  # Keras: validation is the first int(n * split)
    np.testing.assert_array_equal(yt, np.arange(3, 10))
    np.testing.assert_array_equal(xv[:, 0, 0, 0], yv)
    np.testing.assert_array_equal(xt[:, 0, 0, 0], yt)
    with pytest.raises(ValueError, match="different classes"):
        gen.flow(x, y % 2 + (np.arange(10) >= 3), subset="training")
    with pytest.raises(ValueError, match="validation_split"):
        ImageDataGenerator().flow(x, y, subset="validation")
    with pytest.raises(ValueError, match="subset"):
        gen.flow(x, y, subset="test")


def test_len_getitem_and_endless_iteration_reshuffled_each_pass():
    x, y = numbered(10)
    it = ImageDataGenerator().flow(x, y, batch_size=4, seed=0)
    assert len(it) == 3
    assert [len(it[i][1]) for i in range(3)] == [4, 4, 2]
    assert sorted(np.concatenate([it[i][1] for i in range(3)])) == list(range(10))
    with pytest.raises(IndexError):
        it[3]
    it = ImageDataGenerator().flow(*numbered(20), batch_size=8, seed=1)
    passes = []
    for _ in range(3):
        batches = [next(it) for _ in range(len(it))]
        assert [len(b[1]) for b in batches] == [8, 8, 4]
        labels = np.concatenate([b[1] for b in batches])
        assert sorted(labels) == list(range(20))
        for xb, yb in batches:  # images travel with their labels
            np.testing.assert_array_equal(xb[:, 0, 0, 0], yb)
        passes.append(labels)
    assert not np.array_equal(passes[0], passes[1]) and not np.array_equal(passes[1], passes[2])
    assert iter(it) is it and it.total_batches_seen == 9
    ordered = ImageDataGenerator().flow(*numbered(5), batch_size=2, shuffle=False)
    np.testing.assert_array_equal(np.concatenate([next(ordered)[1] for _ in range(7)]),
                                  [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1])  # batches 2, 2, 1, 2, 2, 1, 2
    only_x = next(ImageDataGenerator().flow(x, batch_size=4))
    assert isinstance(only_x, np.ndarray) and only_x.shape == (4, 1, 2, 2)


def test_seeds_make_runs_repeatable():
    x = np.random.default_rng(5).random((12, 1, 6, 6)).astype(np.float32)
    gen = ImageDataGenerator(rotation_range=30, width_shift_range=0.2, zoom_range=0.2, horizontal_flip=True)
    a = [next(it) for it in [gen.flow(x, batch_size=5, seed=7)] for _ in range(4)]
    b = [next(it) for it in [gen.flow(x, batch_size=5, seed=7)] for _ in range(4)]
    c = next(gen.flow(x, batch_size=5, seed=8))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], c)
    cudacnn.set_seed(3)
    first = next(gen.flow(x, batch_size=5))
    cudacnn.set_seed(3)
    np.testing.assert_array_equal(next(gen.flow(x, batch_size=5)), first)
    np.testing.assert_array_equal(gen.random_transform(x[0], seed=1), gen.random_transform(x[0], seed=1))


# ----- bad arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"rotation_range": -10}, "rotation_range.*-10"),
    ({"shear_range": float("nan")}, "shear_range"),
    ({"width_shift_range": -0.1}, "width_shift_range.*-0.1"),
    ({"height_shift_range": "big"}, "height_shift_range.*big"),
    ({"height_shift_range": []}, "height_shift_range"),
    ({"zoom_range": (1.2, 0.8)}, r"zoom_range.*\(1.2, 0.8\)"),
    ({"zoom_range": (0.0, 1.0)}, "zoom_range"),
    ({"zoom_range": 1.5}, "zoom_range.*1.5"),
    ({"zoom_range": (0.5, 1.0, 2.0)}, "zoom_range"),
    ({"fill_mode": "mirror"}, "fill_mode.*mirror"),
    ({"cval": "black"}, "cval"),
    ({"rescale": "1/255"}, "rescale"),
    ({"preprocessing_function": 3}, "preprocessing_function"),
    ({"data_format": "NHWC"}, "data_format.*NHWC"),
    ({"validation_split": 1.0}, "validation_split.*1.0"),
    ({"validation_split": -0.2}, "validation_split"),
    ({"dtype": "int32"}, "dtype.*int32"),
])
def test_bad_constructor_arguments_raise_value_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ImageDataGenerator(**kwargs)


def test_bad_flow_and_fit_arguments_raise_value_errors():
    gen = ImageDataGenerator()
    x = np.zeros((6, 1, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="same length.*6 images and 5 targets"):
        gen.flow(x, np.zeros(5))
    with pytest.raises(ValueError, match=r"4-D.*\(6, 4, 4\)"):
        gen.flow(x[:, 0], np.zeros(6))
    with pytest.raises(ValueError, match="batch_size.*0"):
        gen.flow(x, batch_size=0)
    with pytest.raises(ValueError, match="4-D"):
        gen.fit(x[0])
    with pytest.raises(ValueError, match="rounds"):
        gen.fit(x, rounds=0)
    with pytest.warns(UserWarning, match="channels"):  # channels-last data given to a channels-first generator
        gen.flow(np.zeros((2, 8, 8, 1)))


# ----- training ---------------------------------------------------------------------------------
def test_model_fit_on_flow_trains_for_the_epochs_asked():
    cudacnn.set_seed(0)
    (x, y), (xv, yv) = cudacnn.datasets.load_digits()
    x, y, xv, yv = x[:480], y[:480], xv[:120], yv[:120]
    datagen = ImageDataGenerator(rotation_range=10, width_shift_range=0.1, height_shift_range=0.1,
                                 zoom_range=0.1)
    model = Sequential([L.Conv2D(8, 3, padding="same", activation="relu", input_shape=(1, 8, 8)),
                        L.Flatten(), L.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flow = datagen.flow(x, y, batch_size=16)
        history = model.fit(flow, steps_per_epoch=len(x) // 16, epochs=2, validation_data=(xv, yv),
                            verbose=0)
    assert not [w for w in caught if "preprocessing" in w.filename]  # no layout or fit warnings
    losses = history.history["loss"]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert len(history.history["val_loss"]) == 2 and history.history["val_accuracy"][-1] > 0.5
    assert flow.total_batches_seen == 2 * (len(x) // 16)
    # a generator of validation batches and len() as steps_per_epoch work too
    split = ImageDataGenerator(validation_split=0.25, width_shift_range=1)
    history = model.fit(split.flow(x, y, batch_size=32, subset="training"), epochs=2, verbose=0,
                        validation_data=split.flow(x, y, batch_size=32, subset="validation"))
    assert len(history.history["val_loss"]) == 2


def test_a_flow_is_read_as_a_sequence_from_its_first_batch():
    """predict/evaluate/fit index a flow from batch 0, as Keras reads a Sequence, however far
    next() has already taken it."""
    x = np.random.default_rng(0).random((10, 1, 4, 4)).astype(np.float32)
    y = np.arange(10) % 3
    model = Sequential([L.Flatten(input_shape=(1, 4, 4)), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    it = ImageDataGenerator().flow(x, batch_size=4, shuffle=False)
    next(it)
    np.testing.assert_array_equal(model.predict(it), model.predict(x))
    labelled = ImageDataGenerator().flow(x, y, batch_size=4, shuffle=False)
    next(labelled)
    assert model.evaluate(labelled, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)


@pytest.mark.parametrize("make,message", [
    (lambda x, y: ImageDataGenerator().flow(x, y, seed=-1), "seed must be None or an int >= 0, got -1"),
    (lambda x, y: ImageDataGenerator().flow(x, y, seed=1.5), "seed must be None or an int"),
    (lambda x, y: ImageDataGenerator(validation_split=0.01).flow(x, y, subset="validation"),
     "leaves an empty validation subset"),
])
def test_flow_names_a_bad_seed_or_an_empty_subset(make, message):
    x, y = np.zeros((20, 1, 4, 4), np.float32), np.arange(20) % 2
    with pytest.raises(ValueError, match=message):
        make(x, y)


@pytest.mark.parametrize("key", ["rotation", "brightness", "channel_shift_intensity"])
def test_apply_transform_refuses_parameters_it_would_ignore(key):
    gen = ImageDataGenerator()
    with pytest.raises(ValueError, match=rf"unknown transform parameter\(s\) \['{key}'\]; the supported ones"):
        gen.apply_transform(np.zeros((1, 4, 4), np.float32), {key: 2.0})
