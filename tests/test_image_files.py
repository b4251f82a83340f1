"""ImageDataGenerator.flow_from_directory and load_img / img_to_array / array_to_img, as Keras 2's,
channels-first: tiny PNG/JPEG trees under tmp_path whose solid colours say each image's class
(the bright channel) and which image it is (the brightness), so labels and order can be checked."""
import os
import sys
import warnings

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

import cudacnn  # noqa: E402
from cudacnn import Sequential  # noqa: E402
from cudacnn import layers as L  # noqa: E402
from cudacnn.preprocessing import (DirectoryIterator, ImageDataGenerator, array_to_img,  # noqa: E402
                                   img_to_array, load_img)

W, H = 8, 6  # the files' size (PIL sizes are (width, height))


def colour(cls, k):
    c = [0, 0, 0]
    c[cls] = 60 + 30 * k
    return tuple(c)


def make_tree(root, counts, ext="png"):
    """counts: {class name: number of images}; class i's image k is solid colour(i, k)."""
    for i, (name, n) in enumerate(counts.items()):
        os.makedirs(root / name, exist_ok=True)
        for k in range(n):
            Image.new("RGB", (W, H), colour(i, k)).save(root / name / f"img{k}.{ext}")
    return root


def identify(x):
    """(class, k) of each rgb image of a batch (N, 3, H, W) of 0..255 values."""
    px = x[:, :, 0, 0]
    cls = px.argmax(axis=1)
    return [(int(c), int(round((p[c] - 60) / 30))) for c, p in zip(cls, px)]


@pytest.fixture
def three(tmp_path):
    return make_tree(tmp_path / "train", {"dogs": 4, "cats": 3, "birds": 5})


@pytest.fixture
def two(tmp_path):
    return make_tree(tmp_path / "pets", {"cats": 3, "dogs": 3})


def flow(directory, gen=None, **kw):
    kw.setdefault("target_size", (H, W))
    return (gen or ImageDataGenerator()).flow_from_directory(str(directory), **kw)


# ----- the scan ---------------------------------------------------------------------------------
def test_classes_are_the_sorted_subfolders_and_files_are_listed_per_class(three, capsys):
    (three / "cats" / "notes.txt").write_text("not an image")
    (three / "cats" / "more").mkdir()
    Image.new("RGB", (W, H), colour(1, 3)).save(three / "cats" / "more" / "extra.PNG")  # nested, upper case
    Image.new("RGB", (W, H), colour(0, 4)).save(three / "birds" / "img4.gif")  # not a Keras format: skipped
    os.remove(three / "birds" / "img4.png")
    it = flow(three, shuffle=False)
    assert capsys.readouterr().out == "Found 12 images belonging to 3 classes.\n"
    assert it.class_indices == {"birds": 0, "cats": 1, "dogs": 2}
    assert it.num_classes == 3 and it.samples == it.n == 12 and len(it) == 1
    assert it.filenames == [os.path.join("birds", f"img{k}.png") for k in range(4)] + [
        os.path.join("cats", f"img{k}.png") for k in range(3)] + [os.path.join("cats", "more", "extra.PNG")] + [
        os.path.join("dogs", f"img{k}.png") for k in range(4)]
    np.testing.assert_array_equal(it.classes, [0] * 4 + [1] * 4 + [2] * 4)
    assert it.labels is it.classes
    assert it.filepaths[0] == os.path.join(str(three), "birds", "img0.png")
    x, y = it[0]
    made = {"dogs": 0, "cats": 1, "birds": 2}  # make_tree's colour channel of each folder
    assert [c for c, _ in identify(x)] == [made[name.split(os.sep)[0]] for name in it.filenames]
    np.testing.assert_array_equal(y, np.eye(3)[it.classes])


def test_given_classes_keep_their_order_and_leave_the_others_out(three):
    it = flow(three, classes=["dogs", "cats"], class_mode="sparse", shuffle=False)
    assert it.class_indices == {"dogs": 0, "cats": 1} and it.samples == 7
    x, y = it[0]
    assert [c for c, _ in identify(x)] == [0] * 4 + [1] * 3  # dogs' colour first
    np.testing.assert_array_equal(y, [0] * 4 + [1] * 3)


def test_follow_links(tmp_path, two):
    outside = make_tree(tmp_path / "elsewhere", {"x": 2})
    os.symlink(outside / "x", two / "cats" / "linked")
    assert flow(two, follow_links=False).samples == 6
    it = flow(two, follow_links=True)
    assert it.samples == 8 and os.path.join("cats", "linked", "img0.png") in it.filenames


# ----- labels per class_mode --------------------------------------------------------------------
def test_categorical_labels_are_one_hot_float32_matching_the_colour(three):
    it = flow(three, batch_size=5, seed=3)
    for i in range(len(it)):
        x, y = it[i]
        assert y.dtype == np.float32 and y.shape == (len(x), 3)
        np.testing.assert_array_equal(y.sum(axis=1), 1)
        names = {v: k for k, v in it.class_indices.items()}
        made = {"dogs": 0, "cats": 1, "birds": 2}
        assert [c for c, _ in identify(x)] == [made[names[j]] for j in y.argmax(axis=1)]


def test_binary_sparse_input_and_none(two):
    x, y = flow(two, class_mode="binary", seed=1)[0]
    assert y.dtype == np.float32 and set(y.tolist()) == {0.0, 1.0}
    np.testing.assert_array_equal(y, [c for c, _ in identify(x)])  # cats (red) 0, dogs (green) 1
    x, y = flow(two, class_mode="sparse", seed=1)[0]
    assert np.issubdtype(y.dtype, np.integer) and y.tolist() == [c for c, _ in identify(x)]
    x, y = flow(two, class_mode="input", seed=1)[0]
    np.testing.assert_array_equal(x, y)
    assert x is not y
    x = flow(two, class_mode=None, shuffle=False)[0]
    assert isinstance(x, np.ndarray) and x.shape == (6, 3, H, W)


# ----- shapes, colour modes, resizing -------------------------------------------------------------
@pytest.mark.parametrize("color_mode, channels", [("rgb", 3), ("grayscale", 1), ("rgba", 4)])
def test_batches_are_channels_first_in_the_colour_mode(two, color_mode, channels):
    it = flow(two, color_mode=color_mode, shuffle=False)
    x, _ = it[0]
    assert it.image_shape == (channels, H, W) and x.shape == (6, channels, H, W) and x.dtype == np.float32
    if color_mode == "grayscale":  # Pillow's L = (299 R + 587 G + 114 B) / 1000
        np.testing.assert_allclose(x[0], round(60 * 0.299), atol=1)
    if color_mode == "rgba":
        np.testing.assert_array_equal(x[:, 3], 255)


def test_resizing_to_target_size_height_width(two):
    it = flow(two, target_size=(5, 11), shuffle=False)
    x, _ = it[0]
    assert it.image_shape == (3, 5, 11) and x.shape == (6, 3, 5, 11)
    assert identify(x) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    np.testing.assert_array_equal(x, x[:, :, :1, :1] * np.ones((1, 1, 5, 11)))  # still solid


def test_jpeg_files_read(tmp_path):
    it = flow(make_tree(tmp_path / "j", {"a": 2, "b": 2}, ext="jpg"), shuffle=False)
    assert identify(it[0][0]) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_channels_last_generator_yields_channels_last(two):
    it = flow(two, ImageDataGenerator(data_format="channels_last"), shuffle=False)
    assert it.image_shape == (H, W, 3) and it[0][0].shape == (6, H, W, 3)


# ----- batches, shuffling, subsets ---------------------------------------------------------------
def test_batch_count_and_last_partial_batch(three):
    it = flow(three, batch_size=5, shuffle=False)
    assert len(it) == 3
    assert [it[i][0].shape[0] for i in range(3)] == [5, 5, 2]
    with pytest.raises(IndexError, match="out of range for 3 batches"):
        it[3]
    seen = [next(it)[0].shape[0] for _ in range(4)]  # an endless iterator that wraps around
    assert seen == [5, 5, 2, 5]


def order(it):
    return [pair for i in range(len(it)) for pair in identify(it[i][0])]


def test_shuffle_repeats_with_a_seed_and_reshuffles_every_epoch(three):
    a, b, c = flow(three, batch_size=4, seed=7), flow(three, batch_size=4, seed=7), flow(three, batch_size=4, seed=8)
    first = order(a)
    assert first == order(b) and first != order(c)
    assert sorted(first) == sorted(order(flow(three, shuffle=False)))  # every image once
    a.on_epoch_end()
    b.on_epoch_end()
    second = order(a)
    assert second != first and second == order(b) and sorted(second) == sorted(first)
    assert order(flow(three, shuffle=False, batch_size=4)) == order(flow(three, shuffle=False, batch_size=5))


def test_next_and_reset(three):
    it = flow(three, batch_size=5, seed=2)
    next(it)
    next(it)
    assert it.batch_index == 2
    it.reset()
    assert it.batch_index == 0
    next(it)
    assert it.batch_index == 1 and it.total_batches_seen == 3


def test_subsets_split_each_class_as_keras_2(three):
    # Keras 2: "validation" = the first int(split * n) sorted files of each class, "training" the rest
    gen = ImageDataGenerator(validation_split=0.5)
    val = flow(three, gen, subset="validation", shuffle=False)
    train = flow(three, gen, subset="training", shuffle=False)
    assert val.samples == 2 + 1 + 2 and train.samples == 3 + 2 + 2  # birds 5, cats 3, dogs 4
    assert val.filenames == [os.path.join(c, f"img{k}.png") for c, ks in
                             (("birds", [0, 1]), ("cats", [0]), ("dogs", [0, 1])) for k in ks]
    assert sorted(val.filenames + train.filenames) == sorted(flow(three).filenames)
    np.testing.assert_array_equal(train.classes, [0, 0, 0, 1, 1, 2, 2])


def test_an_empty_subset_fails_and_a_class_empty_in_it_warns(two, three):
    with pytest.raises(ValueError, match="no images found for subset='validation'"):
        flow(two, ImageDataGenerator(validation_split=0.2), subset="validation")  # int(0.2 * 3) == 0
    with pytest.warns(UserWarning, match=r"\['cats'\] hold no images in the validation subset"):
        assert flow(three, ImageDataGenerator(validation_split=0.25), subset="validation").samples == 2
    os.makedirs(two / ".ipynb_checkpoints")
    with pytest.warns(UserWarning, match=r"\['.ipynb_checkpoints'\] hold no images; they still count"):
        assert flow(two).num_classes == 3


# ----- augmentation and normalisation, as flow() --------------------------------------------------
def test_rescale_and_standardize_apply(two):
    x, _ = flow(two, ImageDataGenerator(rescale=1 / 255), shuffle=False)[0]
    np.testing.assert_allclose(x[:, 0, 0, 0], [60 / 255, 90 / 255, 120 / 255, 0, 0, 0], rtol=1e-6)
    x, _ = flow(two, ImageDataGenerator(samplewise_center=True), shuffle=False)[0]
    np.testing.assert_allclose(x.mean(axis=(1, 2, 3)), 0, atol=1e-4)
    gen = ImageDataGenerator(preprocessing_function=lambda img: img + 1000, rescale=0.5)
    x, _ = flow(two, gen, shuffle=False)[0]
    np.testing.assert_allclose(x[:3, 0, 0, 0], [530, 545, 560])  # the function, then the rescale
    gen = ImageDataGenerator(featurewise_center=True)
    gen.fit(np.full((2, 3, 4, 4), 10.0))
    np.testing.assert_allclose(flow(two, gen, shuffle=False)[0][0][0, :, 0, 0], [50, -10, -10])
    with pytest.raises(ValueError, match="fit on 3 channel"):
        flow(two, gen, color_mode="grayscale")


def test_random_transform_applies_with_a_seed(tmp_path):
    root = tmp_path / "half"
    os.makedirs(root / "a")
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :W // 2] = 200  # left half bright
    for k in range(16):
        Image.fromarray(img).save(root / "a" / f"{k:02d}.png")
    gen = ImageDataGenerator(horizontal_flip=True)
    x, _ = flow(root, gen, batch_size=16, seed=4)[0]
    left = x[:, 0, :, 0] > 100
    flipped = ~left.all(axis=1)
    assert 0 < flipped.sum() < 16  # some flipped, some not
    np.testing.assert_array_equal(x[flipped][..., ::-1], x[~flipped][:1].repeat(flipped.sum(), 0))
    again, _ = flow(root, gen, batch_size=16, seed=4)[0]
    np.testing.assert_array_equal(x, again)
    plain, _ = flow(root, batch_size=16, seed=4)[0]
    assert (plain[:, 0, :, 0] > 100).all()  # no augmentation asked: none done


# ----- training -----------------------------------------------------------------------------------
def small_model(outputs, activation):
    model = Sequential([L.Conv2D(4, 3, padding="same", activation="relu", input_shape=(3, H, W)),
                        L.Flatten(), L.Dense(outputs, activation=activation)])
    return model


def test_fit_fit_generator_evaluate_and_predict_on_a_directory(three):
    cudacnn.set_seed(0)
    gen = ImageDataGenerator(rescale=1 / 255)
    it = flow(three, gen, batch_size=5, seed=0)
    model = small_model(3, "softmax")
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no rescale warning for files
        history = model.fit(it, epochs=1, verbose=0)
    assert len(history.history["loss"]) == 1 and it.total_batches_seen == 3
    history = model.fit_generator(it, steps_per_epoch=len(it), epochs=40, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(it, verbose=0)
    assert accuracy == 1.0
    ordered = flow(three, gen, batch_size=5, shuffle=False)
    probabilities = model.predict(ordered)
    assert probabilities.shape == (12, 3)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), ordered.classes)


def test_binary_and_sparse_training(two):
    cudacnn.set_seed(1)
    gen = ImageDataGenerator(rescale=1 / 255)
    model = small_model(1, "sigmoid")
    model.compile("adam", "binary_crossentropy", ["accuracy"])
    model.fit(flow(two, gen, class_mode="binary", batch_size=4), epochs=2, verbose=0)
    assert model.predict(flow(two, gen, class_mode=None, shuffle=False)).shape == (6, 1)
    model = small_model(2, "softmax")
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(flow(two, gen, class_mode="sparse", batch_size=4), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


# ----- errors -------------------------------------------------------------------------------------
def test_missing_directory_or_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        flow(tmp_path / "nope")
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        flow(tmp_path / "f.png")


def test_no_class_folders(tmp_path):
    with pytest.raises(ValueError, match="no class subfolders in .*one subfolder per class"):
        flow(tmp_path)
    Image.new("RGB", (W, H)).save(tmp_path / "loose.jpg")
    with pytest.raises(ValueError, match="1 image file.* lie directly in it"):
        flow(tmp_path)


def test_no_images_found_names_the_extensions(tmp_path):
    os.makedirs(tmp_path / "a")
    (tmp_path / "a" / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match=r"no images found in the class folders \['a'\].*\.png, \.jpg, "
                                         r"\.jpeg, \.bmp, \.ppm, \.tif, \.tiff"):
        flow(tmp_path)


@pytest.mark.parametrize("content", [b"this is not a png", "truncated"])
def test_a_corrupt_file_names_itself_when_read(two, content):
    if content == "truncated":  # the header is fine, the pixel data stops half way
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3)).astype(np.uint8)
        Image.fromarray(noise).save(two / "tmp.png")
        content = (two / "tmp.png").read_bytes()
        content = content[:len(content) // 2]
        os.remove(two / "tmp.png")
    (two / "dogs" / "zz_bad.png").write_bytes(content)
    it = flow(two, shuffle=False, batch_size=4)  # files are read lazily, batch by batch
    it[0]
    with pytest.raises(ValueError, match=r"cannot read image file .*zz_bad\.png"):
        it[1]


@pytest.mark.parametrize("kwargs, error, message", [
    ({"target_size": (150,)}, ValueError, r"target_size must be \(height, width\), two positive ints"),
    ({"target_size": (0, 5)}, ValueError, "target_size"),
    ({"target_size": (1.5, 2)}, ValueError, "target_size"),
    ({"target_size": "150"}, ValueError, "target_size"),
    ({"color_mode": "RGB"}, ValueError, r"color_mode must be one of \('grayscale', 'rgb', 'rgba'\), got 'RGB'"),
    ({"class_mode": "multi"}, ValueError, "class_mode must be one of .*got 'multi'"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive int, got 0"),
    ({"batch_size": 2.0}, ValueError, "batch_size must be a positive int"),
    ({"seed": -1}, ValueError, "seed must be None or an int >= 0"),
    ({"subset": "validation"}, ValueError, r"subset='validation' needs ImageDataGenerator\(validation_split"),
    ({"subset": "test"}, ValueError, "subset must be 'training', 'validation' or None, got 'test'"),
    ({"interpolation": "cubic"}, ValueError, "interpolation must be one of .*got 'cubic'"),
    ({"classes": ["cats", "lions"]}, ValueError, r"class folder\(s\) \['lions'\] not found"),
    ({"classes": "cats"}, ValueError, "classes must be None or a non-empty list"),
    ({"classes": ["cats", "cats"]}, ValueError, "duplicate"),
    ({"save_to_dir": "out"}, NotImplementedError, "save_to_dir=None"),
])
def test_bad_arguments(two, kwargs, error, message, capsys):
    with pytest.raises(error, match=message):
        flow(two, **kwargs)
    assert capsys.readouterr().out == ""  # refused before the scan


def test_binary_needs_two_classes(three):
    with pytest.raises(ValueError, match=r"class_mode='binary' needs exactly 2 classes, found 3 .*"
                                         r"\['birds', 'cats', 'dogs'\]"):
        flow(three, class_mode="binary")


def test_without_pillow_the_error_says_how_to_install(two, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match="pip install pillow"):
        flow(two)
    with pytest.raises(ImportError, match="pip install pillow"):
        load_img(two / "cats" / "img0.png")


# ----- load_img, img_to_array, array_to_img -------------------------------------------------------
def test_load_img_and_img_to_array(two):
    path = two / "cats" / "img1.png"
    img = load_img(path)
    assert img.mode == "RGB" and img.size == (W, H)
    x = img_to_array(img)
    assert x.shape == (3, H, W) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 0, 0], [90, 0, 0])
    assert img_to_array(img, data_format="channels_last").shape == (H, W, 3)
    assert img_to_array(load_img(path, color_mode="grayscale")).shape == (1, H, W)
    assert img_to_array(load_img(str(path), target_size=(3, 4)), dtype="float64").shape == (3, 3, 4)
    assert load_img(path, color_mode="rgba").mode == "RGBA"


def test_load_img_interpolation_and_keep_aspect_ratio(tmp_path):
    stripes = np.zeros((4, 12, 3), np.uint8)
    stripes[:, :4, 0] = stripes[:, 4:8, 1] = stripes[:, 8:, 2] = 255  # red | green | blue
    Image.fromarray(stripes).save(tmp_path / "s.png")
    near = img_to_array(load_img(tmp_path / "s.png", target_size=(4, 5)))
    assert set(np.unique(near)) <= {0.0, 255.0}
    smooth = img_to_array(load_img(tmp_path / "s.png", target_size=(4, 5), interpolation="bilinear"))
    assert ((smooth > 0) & (smooth < 255)).any()
    squashed = img_to_array(load_img(tmp_path / "s.png", target_size=(4, 4)))
    assert squashed[0].max() == 255 and squashed[2].max() == 255
    cropped = img_to_array(load_img(tmp_path / "s.png", target_size=(4, 4), keep_aspect_ratio=True))
    np.testing.assert_array_equal(cropped[:, 0, 0], [0, 255, 0])  # the centre square: green only
    assert cropped[0].max() == 0 and cropped[2].max() == 0


def test_array_to_img_round_trip_and_layouts():
    x = np.random.default_rng(0).integers(0, 256, (3, 5, 7)).astype(np.float32)
    img = array_to_img(x, scale=False)
    assert img.mode == "RGB" and img.size == (7, 5)
    np.testing.assert_array_equal(img_to_array(img), x)
    assert array_to_img(x[:1], scale=False).mode == "L"
    assert array_to_img(np.concatenate([x, x[:1]]), scale=False).mode == "RGBA"
    scaled = img_to_array(array_to_img(x / 255))  # scale stretches to 0..255
    assert scaled.min() == 0 and scaled.max() == 255
    np.testing.assert_array_equal(img_to_array(array_to_img(x.transpose(1, 2, 0), data_format="channels_last",
                                                            scale=False)), x)
    with pytest.raises(ValueError, match="channels-last\\? pass data_format='channels_last'"):
        array_to_img(np.zeros((5, 7, 3)))
    with pytest.raises(ValueError, match=r"takes one image \(C, H, W\), got shape \(2, 3, 5, 7\)"):
        array_to_img(np.zeros((2, 3, 5, 7)))


def test_directory_iterator_without_a_generator(two):
    it = DirectoryIterator(str(two), target_size=(H, W), class_mode="sparse", shuffle=False)
    assert it[0][0].shape == (6, 3, H, W)
