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
    if backend == "auto":  # CUDACNN_BACKEND forces one; else our kernels when built, else CuPy
        expected = os.environ.get("CUDACNN_BACKEND") or (
            "cuda" if cudacnn.backend.availability()["cuda"] is None else "cupy")
    else:
        expected = backend
    assert summary["backend"] == expected
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


# ----- bad input is a usage error (exit 2, no traceback) before any long work starts --------------
def run_main(argv, capsys):
    """cli.main in-process: (exit code, stdout, stderr); argparse errors arrive as SystemExit."""
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("option, value", [
    ("--lr", "inf"), ("--lr", "1e400"), ("--lr", "nan"), ("--lr", "0"), ("--epochs", "1.5"),
    ("--batch-size", "0"), ("--seed", "-1"), ("--threads", "0"), ("--threads", "9" * 30),
])
def test_numeric_options_are_checked_at_parse_time(tmp_path, capsys, option, value):
    code, out, err = run_main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path), option, value], capsys)
    assert code == 2, (out, err)
    assert f"argument {option}" in err and repr(value) in err and "Traceback" not in err
    assert not (tmp_path / "model.cudacnn").exists()


@pytest.mark.parametrize("out", ["afile", "afile/sub"])
def test_unusable_out_is_reported_before_training(tmp_path, capsys, out):
    (tmp_path / "afile").write_text("not a directory")
    code, stdout, err = run_main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / out)], capsys)
    assert code == 2
    assert "--out" in err and "afile" in err and "not a directory" in err
    assert "digits_cnn on digits" not in stdout  # training never started


@pytest.mark.parametrize("part, sizes", [("training", dict(n_train=0)), ("test", dict(n_test=0))])
def test_data_set_without_images_is_a_clear_error(tmp_path, capsys, part, sizes):
    from test_datasets import write_mnist_dir

    write_mnist_dir(tmp_path / "data", False, **sizes)
    code, _, err = run_main(["train", "--dataset", "mnist", "--data", str(tmp_path / "data"), "--epochs", "1",
                             "--quiet", "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    assert f"{part} set in {tmp_path / 'data'} holds no images" in err


QUICK_BENCH = ["--quick", "--budget", "0", "--backends", "numpy", "--ops", "none", "--models", "digits_cnn",
               "--modes", "infer"]


@pytest.mark.parametrize("args, message", [
    (["--ops", "foo"], "--ops: unknown 'foo'; choose from all, none, conv2d"),
    (["--modes", "fly"], "--modes: unknown 'fly'; choose from train, infer"),
    (["--conv-layers", "nope"], "--conv-layers: unknown 'nope'; choose from lecture, vgg16, resnet18"),
    (["--ops", "conv2d", "--algos", "fft"], "--algos: unknown 'fft'; choose from direct, im2col, winograd, auto"),
    (["--directions", "up"], "--directions: unknown 'up'"),
    (["--algos", ","], "--algos: no names given"),
    (["--backends", "tpu"], "--backends: unknown 'tpu'"),
    (["--models", "lenet7"], "unknown models ['lenet7']"),
    (["--models", "none"], "nothing to run"),
    (["--budget", "nan"], "argument --budget"),
    (["--threads", "0"], "argument --threads"),
    (["--batch-size", "-3"], "argument --batch-size"),
])
def test_bench_usage_errors_come_before_any_case_runs(tmp_path, capsys, args, message):
    code, out, err = run_main(["bench", *QUICK_BENCH, "--out", str(tmp_path), *args], capsys)
    assert code == 2, (out, err)
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "bench.json").exists()


def test_bench_out_that_is_a_file_is_rejected_first(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, out, err = run_main(["bench", *QUICK_BENCH, "--out", str(tmp_path / "afile")], capsys)
    assert code == 2
    assert "--out" in err and "not a directory" in err
    assert "digits_cnn_infer" not in out  # nothing was timed


def test_bench_with_no_runnable_engine_writes_nothing(tmp_path, capsys):
    if cudacnn.backend.availability()["cupy"] is None:
        pytest.skip("a GPU is available here")
    code, _, err = run_main(["bench", *QUICK_BENCH, "--backends", "cupy", "--out", str(tmp_path)], capsys)
    assert code == 2 and "none of the engines" in err
    assert not (tmp_path / "bench.json").exists()


def test_data_set_with_a_single_class_is_a_clear_error(tmp_path, capsys):
    zeros = np.zeros
    np.savez(tmp_path / "one.npz", x_train=zeros((8, 28, 28), np.uint8), y_train=zeros(8, np.int64),
             x_test=zeros((4, 28, 28), np.uint8), y_test=zeros(4, np.int64))
    code, out, err = run_main(["train", "--dataset", "mnist", "--data", str(tmp_path / "one.npz"), "--epochs", "1",
                               "--quiet", "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "single class" in err
    assert not (tmp_path / "run").exists()


def _tiny_train_args(tmp_path, out, *extra):
    from test_datasets import write_mnist_dir

    if not (tmp_path / "data").exists():
        write_mnist_dir(tmp_path / "data", gz=False, n_train=40, n_test=10, size=28)
    return ["train", "--dataset", "mnist", "--data", str(tmp_path / "data"), "--model", "mnist_conv",
            "--epochs", "1", "--batch-size", "20", "--backend", "numpy", "--quiet", "--out", str(out), *extra]


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "interrupt"])
def test_a_failed_save_keeps_the_earlier_run_whole(tmp_path, monkeypatch, capsys, failure):
    out = tmp_path / "run"
    assert cli.main(_tiny_train_args(tmp_path, out)) == 0
    before = {name: (out / name).read_bytes() for name in ("model.cudacnn", "run.json")}

    def failing_save(self, path, **kwargs):
        raise failure
    monkeypatch.setattr(cudacnn.models.Model, "save", failing_save)
    code = cli.main(_tiny_train_args(tmp_path, out, "--seed", "3"))
    err = capsys.readouterr().err
    if isinstance(failure, OSError):
        assert code == 2 and f"cannot save the run in {out}: [Errno 28] No space left on device" in err
    else:
        assert code == 130 and "interrupted before the run was saved" in err
    assert {name: (out / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in out.iterdir()) == ["model.cudacnn", "run.json"]  # no temporary files


def test_a_failed_save_leaves_no_new_directory(tmp_path, monkeypatch, capsys):
    def failing_save(self, path, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cudacnn.models.Model, "save", failing_save)
    out = tmp_path / "new" / "run"
    assert cli.main(_tiny_train_args(tmp_path, out)) == 2
    assert "cannot save the run" in capsys.readouterr().err
    assert not out.exists()


def test_an_empty_out_is_refused(tmp_path, capsys):
    assert cli.main(_tiny_train_args(tmp_path, "")) == 2
    assert "--out: an empty path" in capsys.readouterr().err


def test_a_diverged_run_writes_standard_json(tmp_path):
    out = tmp_path / "run"
    assert cli.main(_tiny_train_args(tmp_path, out, "--optimizer", "sgd", "--lr", "1e30")) == 0

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")
    summary = json.loads((out / "run.json").read_text(), parse_constant=refuse)
    assert summary["test_loss"] is None


def test_an_out_path_the_file_system_cannot_take_is_a_usage_error(tmp_path, capsys):
    too_long = str(tmp_path / ("d" * 300))
    for command in (["bench", *QUICK_BENCH], ["train", "--epochs", "1", "--quiet"]):
        code, _, err = run_main([*command, "--out", too_long], capsys)
        assert code == 2 and "--out: cannot use" in err and "File name too long" in err and "Traceback" not in err


def test_a_repeated_bench_name_runs_once():
    from cudacnn import bench
    args = bench.parse_args([*QUICK_BENCH, "--ops", "max_pool2d,max_pool2d", "--directions", "fwd,fwd,bwd"])
    assert bench._split(args.ops) == ["max_pool2d"] and bench._split(args.directions) == ["fwd", "bwd"]
    assert bench.choose_engines("torch,torch-cpu,numpy")[0].count("torch-cpu") == 1
