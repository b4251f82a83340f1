"""The `cudacnn` command, run as a user would: in a subprocess."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import cudacnn
from cudacnn import cli


def run_cli(*args, cwd, timeout=300, env=None):
    return subprocess.run([sys.executable, "-m", "cudacnn", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_info_reports_every_backend(tmp_path):
    result = run_cli("info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("numpy", "cupy", "cuda"):
        assert name in result.stdout
    assert "numpy  available" in result.stdout


def test_help_lists_the_commands(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "train" in result.stdout and "info" in result.stdout and "bench" in result.stdout


def test_train_one_epoch_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "--epochs", "1", "--backend", "numpy", "--quiet", "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test accuracy:" in result.stdout and "images/s" in result.stdout
    model_path = out / "model.cudacnn"
    assert f"saved model to {model_path}" in result.stdout
    summary = json.loads((out / "run.json").read_text())
    assert summary["dataset"] == "digits" and summary["model"] == "digits_cnn" and summary["epochs"] == 1
    # The saved model is the trained one: it scores the reported accuracy again.
    model = cudacnn.load_model(model_path)
    (_, _), (x_test, y_test) = cudacnn.datasets.load_digits()
    accuracy = float(np.mean(model.predict(x_test).argmax(axis=1) == y_test))
    assert accuracy == pytest.approx(summary["test_accuracy"], abs=1e-9)
    assert summary["test_accuracy"] > 0.3  # one epoch already learns something (chance is 0.1)


def test_train_default_out_dir_and_idx_dataset(tmp_path):
    from test_datasets import write_mnist_dir

    write_mnist_dir(tmp_path / "data", gz=True, n_train=40, n_test=10, size=28)
    result = run_cli("train", "--dataset", "mnist", "--data", str(tmp_path / "data"), "--model", "mnist_conv",
                     "--epochs", "1", "--batch-size", "20", "--optimizer", "sgd", "--lr", "0.01",
                     "--lr-schedule", "constant", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cudacnn_runs" / "mnist-mnist_conv" / "model.cudacnn").is_file()
    summary = json.loads((tmp_path / "cudacnn_runs" / "mnist-mnist_conv" / "run.json").read_text())
    assert summary["optimizer"]["name"] == "SGD" and summary["optimizer"]["learning_rate"] == 0.01


def test_train_with_augmentation(tmp_path):
    result = run_cli("train", "--epochs", "1", "--augment", "--backend", "numpy", "--quiet",
                     "--out", str(tmp_path / "aug"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    model = cudacnn.load_model(tmp_path / "aug" / "model.cudacnn")
    assert [type(layer).__name__ for layer in model.layers][:2] == ["RandomTranslation", "RandomRotation"]


@pytest.mark.parametrize("args, message", [
    (["--dataset", "fashion-mnist", "--data", "/nonexistent/fmnist"], "/nonexistent/fmnist"),
    (["--dataset", "cifar10", "--data", "/nonexistent/cifar"], "/nonexistent/cifar"),
    (["--model", "no_such_net"], "unknown model 'no_such_net'"),
    (["--data", "/tmp"], "embedded"),
])
def test_user_mistakes_are_clear_errors_without_traceback(tmp_path, args, message):
    result = run_cli("train", "--epochs", "1", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_corrupt_data_file_is_a_clear_error(tmp_path):
    from test_datasets import write_mnist_dir

    _, paths = write_mnist_dir(tmp_path, gz=True)
    broken = paths["train-images-idx3-ubyte"]
    broken.write_bytes(broken.read_bytes()[:30])
    result = run_cli("train", "--dataset", "mnist", "--data", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert str(broken) in result.stderr and "Traceback" not in result.stderr


def test_bad_option_values_are_rejected(tmp_path):
    for args in (["--epochs", "0"], ["--lr", "-1"], ["--dataset", "imagenet"], ["--backend", "tpu"]):
        result = run_cli("train", *args, cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr, args


def test_unavailable_backend_is_a_clear_error(tmp_path):
    if cudacnn.backend.availability()["cupy"] is None:
        pytest.skip("a GPU is available here")
    result = run_cli("train", "--backend", "cupy", cwd=tmp_path)
    assert result.returncode == 2
    assert "not available" in result.stderr and "Traceback" not in result.stderr


def test_bench_is_forwarded(monkeypatch):
    import cudacnn.bench

    received = []
    monkeypatch.setattr(cudacnn.bench, "main", lambda argv: received.append(argv) or 7)
    assert cli.main(["bench", "--quick", "--help"]) == 7
    assert received == [["--quick", "--help"]]


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["auto", "cupy", "cuda"])
def test_train_on_the_gpu(tmp_path, cp, backend):
    if backend == "cuda" and cudacnn.backend.availability()["cuda"] is not None:
        pytest.skip(f"cuda backend unavailable: {cudacnn.backend.availability()['cuda']}")
    result = run_cli("train", "--backend", backend, "--quiet", "--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "run.json").read_text())
    assert summary["backend"] == (backend if backend != "auto" else summary["backend"])
    assert summary["backend"] in ("cupy", "cuda")
    print(f"cudacnn train --backend {backend}: {summary['backend']}, accuracy {summary['test_accuracy']:.4f}, "
          f"{summary['images_per_second']:.0f} images/s")
    assert summary["test_accuracy"] >= 0.95


@pytest.mark.slow
def test_default_train_reaches_97_percent_within_a_minute_on_cpu(tmp_path):
    start = time.perf_counter()
    result = run_cli("train", "--backend", "numpy", "--quiet", cwd=tmp_path, timeout=120)
    wall = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "cudacnn_runs" / "digits-digits_cnn" / "run.json").read_text())
    print(f"default cudacnn train: test accuracy {summary['test_accuracy']:.4f}, "
          f"training {summary['train_seconds']:.1f} s, whole command {wall:.1f} s")
    assert summary["test_accuracy"] >= 0.97
    assert wall < 60
