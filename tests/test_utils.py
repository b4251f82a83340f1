"""cudacnn.utils.to_categorical against Keras' documented behaviour."""
import numpy as np
import pytest

import cudacnn
from cudacnn.utils import to_categorical


def test_one_hot_rows_like_keras():
    out = to_categorical([0, 2, 1, 2])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(to_categorical(np.array([[1], [0]]), num_classes=4), [[0, 1, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(to_categorical(np.array([1.0, 3.0]), 4, dtype="int64"), [[0, 1, 0, 0], [0, 0, 0, 1]])
    assert cudacnn.utils.to_categorical is to_categorical


@pytest.mark.parametrize("labels,classes,message", [
    ([0, 5], 3, r"label 5 is outside \[0, 3\)"),
    ([0, -1], None, "labels >= 0"),
    ([0.5, 1.0], None, "integer class labels"),
    ([1], 0, "num_classes must be >= 1"),
    ([1], 3.7, "num_classes must be an int"),
    ([1], True, "num_classes must be an int"),
    (["a", "b"], None, "integer class labels, got dtype <U1"),
    ([1 + 2j], None, "integer class labels, got dtype complex"),
    ([1e20], None, "too large for a class index"),
    ([float("nan")], None, "non-integer values"),
])
def test_bad_labels_are_named(labels, classes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        to_categorical(labels, classes)


def test_trains_with_categorical_crossentropy():
    (x, y), _ = cudacnn.datasets.load_digits()
    x, y = x[:200], y[:200]
    cudacnn.set_seed(0)
    model = cudacnn.Sequential([cudacnn.layers.Flatten(input_shape=(1, 8, 8)),
                                cudacnn.layers.Dense(10, activation="softmax")])
    model.compile("adam", "categorical_crossentropy", ["accuracy"])
    history = model.fit(x, to_categorical(y, 10), epochs=3, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
