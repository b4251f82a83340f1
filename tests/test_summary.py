"""model.summary() and parameter counts against the Keras tables in the lecture seeds
(002_d0fd004a731d3fd6.txt), translated to channels first (32x32x3 -> (3, 32, 32))."""
import numpy as np
import pytest

from cudacnn import Model, Sequential
from cudacnn.layers import (Activation, BatchNormalization, Conv2D, Dense, Flatten,
                            GlobalAveragePooling2D, Input, MaxPooling2D)

CIFAR = (3, 32, 32)


def conv_flatten_dense():
    return Sequential([Conv2D(64, kernel_size=3, activation="relu", input_shape=CIFAR), Flatten(),
                       Dense(32, activation="relu"), Dense(10, activation="softmax")])


def conv_pool_dense():
    return Sequential([Conv2D(64, kernel_size=3, activation="relu", input_shape=CIFAR),
                       MaxPooling2D(pool_size=(2, 2)), Flatten(),
                       Dense(32, activation="relu"), Dense(10, activation="softmax")])


def deeper_same_padding():
    return Sequential([Conv2D(64, kernel_size=3, activation="relu", input_shape=CIFAR, padding="same"),
                       MaxPooling2D(pool_size=(2, 2)),
                       Conv2D(64, kernel_size=3, activation="relu", padding="same"),
                       MaxPooling2D(pool_size=(2, 2)), Flatten(),
                       Dense(128, activation="relu"), Dense(10, activation="softmax")])


def all_convolutional():
    """The AllConvolutional net of the same lecture (table with conv2d_19 .. conv2d_27)."""
    return Sequential([
        Conv2D(96, 3, padding="same", activation="relu", input_shape=CIFAR),
        Conv2D(96, 3, padding="same", activation="relu"),
        Conv2D(96, 3, strides=2, padding="same", activation="relu"),
        Conv2D(192, 3, padding="same", activation="relu"),
        Conv2D(192, 3, padding="same", activation="relu"),
        Conv2D(192, 3, strides=2, padding="same", activation="relu"),
        Conv2D(192, 3, padding="same", activation="relu"),
        Conv2D(192, 1, activation="relu"),
        Conv2D(10, 1),
        GlobalAveragePooling2D(), Activation("softmax")])


@pytest.mark.parametrize("build, total, per_layer, shapes", [
    (conv_flatten_dense, 1_845_354, [1792, 0, 1_843_232, 330],
     [(None, 64, 30, 30), (None, 57600), (None, 32), (None, 10)]),
    (conv_pool_dense, 462_954, [1792, 0, 0, 460_832, 330],
     [(None, 64, 30, 30), (None, 64, 15, 15), (None, 14400), (None, 32), (None, 10)]),
    (deeper_same_padding, 564_426, [1792, 0, 36928, 0, 0, 524_416, 1290],
     [(None, 64, 32, 32), (None, 64, 16, 16), (None, 64, 16, 16), (None, 64, 8, 8), (None, 4096),
      (None, 128), (None, 10)]),
    (all_convolutional, 1_369_738, [2688, 83040, 83040, 166080, 331968, 331968, 331968, 37056, 1930, 0, 0],
     [(None, 96, 32, 32), (None, 96, 32, 32), (None, 96, 16, 16), (None, 192, 16, 16),
      (None, 192, 16, 16), (None, 192, 8, 8), (None, 192, 8, 8), (None, 192, 8, 8), (None, 10, 8, 8),
      (None, 10), (None, 10)]),
])
def test_lecture_tables(build, total, per_layer, shapes, capsys):
    model = build()
    assert model.count_params() == total == sum(per_layer)
    assert [layer.count_params() for layer in model.layers] == per_layer
    assert [layer.output_shape for layer in model.layers] == shapes
    model.summary()
    text = capsys.readouterr().out
    assert f"Total params: {total:,}" in text
    assert f"Trainable params: {total:,}" in text
    assert "Non-trainable params: 0" in text
    rows = [line.split("   ") for line in text.splitlines()]  # columns are 3+ spaces apart
    rows = [[cell.strip() for cell in row if cell.strip()] for row in rows]
    for layer, shape, count in zip(model.layers, shapes, per_layer):
        # one row per layer: its name and type, its shape as Keras prints it, its parameter count
        assert [f"{layer.name} ({type(layer).__name__})", str(shape), f"{count:,}"] in rows, text


def test_batchnorm_and_frozen_layers_count_as_non_trainable(capsys):
    model = Sequential([Conv2D(8, 3, input_shape=(1, 8, 8)), BatchNormalization(), Flatten(), Dense(4)])
    # conv 8*9+8=80, BN 4*8=32 (16 moving statistics), dense 8*36*4+4=1156
    assert model.count_params() == 80 + 32 + 1156
    model.summary()
    text = capsys.readouterr().out
    assert "Trainable params: 1,252" in text and "Non-trainable params: 16" in text
    model.layers[0].trainable = False
    model.summary()
    text = capsys.readouterr().out
    assert "Trainable params: 1,172" in text and "Non-trainable params: 96" in text


def test_functional_summary_has_connected_to_column():
    inputs = Input((3, 8, 8))
    a = Conv2D(4, 3, padding="same", name="left")(inputs)
    b = Conv2D(4, 1, name="right")(inputs)
    from cudacnn.layers import Add
    out = Dense(2)(Flatten()(Add(name="join")([a, b])))
    model = Model(inputs, out)
    lines = []
    model.summary(print_fn=lines.append)  # line by line, as Keras
    text = "\n".join(lines)
    assert "Connected to" in text
    assert "left[0][0], right[0][0]" in text
    assert "[(None, 3, 8, 8)]" in text
    assert f"Total params: {model.count_params():,}" in text
    assert model.count_params() == (4 * 27 + 4) + (4 * 3 + 4) + (4 * 64 * 2 + 2)


def test_unbuilt_sequential_reports_clearly():
    model = Sequential([Dense(3)])
    with pytest.raises(ValueError, match="no input shape"):
        model.summary()
    model.build((5,))
    assert model.count_params() == 18
    model.predict(np.zeros((2, 5), np.float32))


def test_a_functional_chain_prints_like_keras_vgg16():
    """A graph that is a plain chain (Keras' VGG-16) has no "Connected to" column, and its input
    row shows a bare shape, as in the lecture's table."""
    from cudacnn.layers import Conv2D, Flatten, Input, MaxPooling2D
    inputs = Input((3, 8, 8), name="input_1")
    x = MaxPooling2D(name="block1_pool")(Conv2D(4, 3, padding="same", name="block1_conv1")(inputs))
    model = Model(inputs, Dense(2, name="predictions")(Flatten(name="flatten")(x)))
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Connected to" not in text and "[0][0]" not in text
    rows = [line.split() for line in text.splitlines()]
    assert ["input_1", "(InputLayer)", "(None,", "3,", "8,", "8)", "0"] in rows
    assert ["block1_conv1", "(Conv2D)", "(None,", "4,", "8,", "8)", "112"] in rows


def test_summary_lines_fit_a_given_line_length_and_nested_functional_models_say_so():
    from cudacnn.layers import Input
    inputs = Input((3,))
    inner = Model(inputs, Dense(4, name="a_rather_long_dense_layer_name")(inputs), name="inner")
    model = Sequential([inner, Dense(2)])
    lines = []
    model.summary(line_length=40, print_fn=lines.append)
    assert len(lines) > 8 and max(len(line) for line in lines) <= 40
    assert any("~" in line for line in lines)  # the cut cells say so
    assert any(line.split()[:1] == ["inner"] for line in lines)
    wide = []
    model.summary(print_fn=wide.append)
    assert any("inner (Functional)" in line for line in wide)
    with pytest.raises(ValueError, match="has an input but no layers yet"):
        Sequential([Input((3,))]).summary()
