"""The benchmark harness itself, on the CPU: every case runs once and matches its reference.

Nothing here asserts on time. Op cases run on our NumPy backend and are
compared with PyTorch in float64; model cases are compared with their PyTorch
mirror (same weights, same batch, dropout off so the two sides see the same net).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cudacnn import bench, benchcases, benchmodels
from cudacnn.benchrun import Engine, measure

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
QUICK_OPS = benchcases.op_cases(conv_sets=("lecture",), batch=2)


def relative_errors(ours, reference):
    assert len(ours) == len(reference), (len(ours), len(reference))
    errors = []
    for a, b in zip(ours, reference):
        assert a.shape == b.shape, (a.shape, b.shape)
        assert np.all(np.isfinite(a))
        errors.append(float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)))
    return errors


def test_flop_counts_follow_the_shapes():
    # 3x3 conv, 2 images, 4 -> 8 channels, 5x5 output: 2*N*K*C*R*S*OH*OW.
    assert benchcases.conv2d_flops(2, 4, 8, 3, 3, 5, 5) == 2 * 2 * 8 * 4 * 9 * 25
    assert benchcases.conv2d_flops(2, 4, 8, 3, 3, 5, 5, groups=2) == 2 * 2 * 8 * 2 * 9 * 25
    assert benchcases.conv2d_flops(2, 4, 8, 3, 3, 5, 5, direction="bwd") == 2 * 2 * 2 * 8 * 4 * 9 * 25
    assert benchcases.linear_flops(3, 5, 7) == 2 * 3 * 5 * 7
    layer = benchcases.ConvLayer("t", c=3, h=32, k=64, padding=0)
    assert layer.out_hw == 30
    assert benchcases.Conv2dCase(layer, 4, "fwd").work() == 2 * 4 * 64 * 3 * 9 * 30 * 30


def test_byte_counts_read_inputs_once_and_write_outputs_once():
    pool = benchcases.MaxPoolCase("2x2", (2, 3, 8, 8), "fwd")
    assert pool.work() == 4 * (2 * 3 * 64 + 2 * 3 * 16)
    bn = benchcases.BatchNormCase("train", (2, 3, 4, 4), "bwd")
    assert bn.work() == 4 * 3 * 96  # dy and x read, dx written
    ce = benchcases.SoftmaxCECase("int", (4, 10), "fwd")
    assert ce.work() == 4 * 40 + 8 * 4
    assert pool.rate(1e-9) == pytest.approx(pool.work())  # bytes per ns == GB/s


@pytest.mark.parametrize("case", QUICK_OPS, ids=[c.name for c in QUICK_OPS])
def test_op_case_matches_torch_float64(case):
    inputs = case.inputs(np.random.default_rng(7))
    numpy_engine, torch_engine = Engine("numpy"), Engine("torch-cpu")
    with numpy_engine.active():
        ours = numpy_engine.to_host(case.ours(numpy_engine.put(inputs))())
    as64 = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in inputs.items()}
    reference = torch_engine.to_host(case.torch(torch_engine.put(as64))())
    assert max(relative_errors(ours, reference)) < 1e-5


SEED = benchmodels.seed_model_names()


@pytest.mark.parametrize("name", SEED)
def test_model_inference_matches_torch_mirror(name):
    case = benchmodels.ModelCase(name, "infer", 2)
    inputs = case.inputs(np.random.default_rng(3))
    ours = case.ours(inputs)()
    mirrored = case.torch({k: torch.from_numpy(v) for k, v in inputs.items()})().numpy()
    assert ours.shape == mirrored.shape == (2, 10)
    assert max(relative_errors([ours], [mirrored])) < 1e-5


@pytest.mark.parametrize("name", SEED)
def test_model_training_step_matches_torch_mirror(name):
    """Same loss, and the same weight update (new - old), after one SGD-with-momentum step."""
    case = benchmodels.ModelCase(name, "train", 2, dropout=False)
    inputs = case.inputs(np.random.default_rng(4))
    ours_step = case.ours(inputs)
    torch_step = case.torch({k: torch.from_numpy(v) for k, v in inputs.items()})
    before = case.models["ours"].get_weights()
    assert [w.shape for w in before] == [tuple(p.shape) for p in case.models["torch"].parameters()]
    ours_loss, torch_loss = ours_step(), float(torch_step())
    assert ours_loss == pytest.approx(torch_loss, rel=1e-5)
    ours_delta = [a - b for a, b in zip(case.models["ours"].get_weights(), before)]
    torch_delta = [p.detach().numpy() - b for p, b in zip(case.models["torch"].parameters(), before)]
    assert max(relative_errors(ours_delta, torch_delta)) < 1e-4


def test_measure_repeats_until_the_budget_and_syncs():
    calls = []
    timing = measure(Engine("numpy"), lambda: calls.append(1), warmup=2, min_repeats=3, max_repeats=5, budget_s=0)
    assert len(timing.times) == 3 and len(calls) == 5
    assert timing.median >= 0


@pytest.mark.slow
def test_cli_quick_run_writes_json_table_and_chart(tmp_path, capsys):
    out = tmp_path / "run"
    rc = bench.main(["--quick", "--backends", "numpy,torch-cpu", "--ops", "linear,max_pool2d",
                     "--models", "digits_cnn", "--budget", "0", "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    payload = json.loads((out / "bench.json").read_text())
    rows = payload["rows"]
    assert {r["engine"] for r in rows} == {"numpy", "torch-cpu"}
    assert all("median_s" in r and r["value"] > 0 for r in rows)
    numpy_rows = [r for r in rows if r["engine"] == "numpy"]
    assert all(r["x_numpy"] == pytest.approx(1.0) and r["x_torch"] > 0 for r in numpy_rows)
    assert {r["metric"] for r in rows} == {"GFLOP/s", "GB/s", "images/s"}
    assert payload["env"]["commit"] and payload["env"]["date"]
    assert (out / "bench.png").stat().st_size > 0
    assert "x numpy" in printed and "digits_cnn_train" in printed
    if bench.engine_unavailable_reason("cuda") is not None:
        assert "GPU part skipped" in printed


def test_cli_rejects_unknown_names(capsys):
    # Usage errors (exit 2) before any case runs, naming the option, the value and the choices.
    for argv, message in [
        (["--backends", "tpu"], "--backends: unknown 'tpu'"),
        (["--backends", "numpy", "--ops", "none", "--models", "lenet7"], "unknown models"),
        (["--backends", "numpy", "--ops", "none", "--models", "digits_cnn", "--modes", "eval"], "--modes: unknown 'eval'"),
        (["--ops", "conv3d", "--backends", "numpy", "--models", "none"], "--ops: unknown 'conv3d'"),
    ]:
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2, argv
        assert message in capsys.readouterr().err, argv


def test_batch_norm_lag_variants_are_gpu_size_cases_that_also_run_on_numpy():
    names = [c.name for c in benchcases.op_cases(("batch_norm",), directions=("fwd",), scale="gpu")]
    assert names == ["batch_norm_fwd train 64x128x112x112"] + [
        f"batch_norm_fwd[{lag}] train 64x128x112x112" for lag in benchcases.BN_LAGS]
    assert [c.name for c in benchcases.op_cases(("batch_norm",), directions=("fwd",))] == [
        "batch_norm_fwd train 64x64x32x32"]
    # The lag is our GPU kernels' knob: on NumPy arrays a variant is the plain op.
    case = benchcases.BatchNormCase("train", (2, 3, 4, 4), "bwd", "two-pass")
    plain = benchcases.BatchNormCase("train", (2, 3, 4, 4), "bwd")
    inputs = case.inputs(np.random.default_rng(3))
    for ours, theirs in zip(case.ours(dict(inputs))(), plain.ours(dict(inputs))()):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="batch norm variant must be one of"):
        benchcases.BatchNormCase("train", (2, 3, 4, 4), "fwd", "lag=L2/3")


def test_library_case_builders_reject_unknown_algos_and_directions():
    with pytest.raises(ValueError, match="unknown conv2d algorithms \\['fft'\\]"):
        benchcases.op_cases(("conv2d",), algos=("fft",))
    with pytest.raises(ValueError, match="unknown directions"):
        benchcases.op_cases(("linear",), directions=("up",))
    with pytest.raises(ValueError, match="unknown models"):
        bench.model_names("seed,lenet7")


def _benchmarks_module(name):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_gpu_script_checks_itself_on_the_cpu(tmp_path, capsys, monkeypatch):
    """benchmarks/gpu_kernels.py's own logic, run with numpy vs torch-cpu instead of cuda vs cuDNN."""
    monkeypatch.delenv("OUT", raising=False)
    gpu_kernels = _benchmarks_module("gpu_kernels")
    assert gpu_kernels.main(["--quick", "--cpu", "--ops", "linear,softmax_ce", "--out", str(tmp_path)]) == 0
    (written,) = tmp_path.glob("kernels-*.json")
    rows = json.loads(written.read_text())["rows"]
    ours = [r for r in rows if r["engine"] == "numpy"]
    assert len(ours) == 4 and all(r["rel_err"] < 1e-4 and r["x_cudnn"] > 0 for r in ours)
    assert "device-to-device copy" in capsys.readouterr().out


@pytest.mark.slow
def test_pytest_benchmark_suite_collects_and_runs_once():
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(BENCHMARKS),
                             "--benchmark-disable", "--bench-batch", "2", "--bench-engines", "numpy,torch-cpu",
                             "--bench-models", "digits_cnn", "-k", "linear_fwd or digits_cnn_infer"],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "4 passed" in result.stdout


def test_results_table_regenerates_from_json(tmp_path):
    make_table = _benchmarks_module("make_table")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{make_table.BEGIN}\nold\n{make_table.END}\noutro\n")
    results = tmp_path / "results"
    results.mkdir()
    bench.write_json_atomic(results / "bench.json", {
        "schema": bench.SCHEMA, "batch_size": 2, "quick": True,
        "env": {"date": "2026-01-01T00:00:00+00:00", "commit": "abc1234def", "cpu": "Test CPU", "cpu_count": 2,
                "gpu": None, "torch_num_threads": 2, "numpy": "2", "torch": "2"},
        "rows": [{"case": "linear_fwd x", "ref": "linear_fwd x", "engine": "numpy", "device": "cpu",
                  "metric": "GFLOP/s", "median_s": 0.002, "value": 5.0, "x_numpy": 1.0, "x_torch": 0.5},
                 {"case": "linear_fwd x", "ref": "linear_fwd x", "engine": "torch-cpu", "device": "cpu",
                  "metric": "GFLOP/s", "median_s": 0.001, "value": 10.0, "x_numpy": 2.0, "x_torch": None}]})
    make_table.update_readme(readme, results)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text
    assert "linear_fwd x" in text and "Test CPU" in text and "abc1234" in text
    assert make_table.update_readme(readme, results) is False  # already up to date


def test_functional_model_mirror_matches_with_add_concat_and_batchnorm():
    """The graph mirror (ResNet/Inception-style models): same outputs, same training-step loss."""
    from cudacnn import layers, models, optimizers, random

    random.set_seed(5)
    inp = layers.Input(shape=(3, 8, 8))
    stem = layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    branch = layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same")(stem))
    merged = layers.Concatenate()([layers.Add()([stem, branch]), stem])
    out = layers.Dense(3, activation="softmax")(layers.GlobalAveragePooling2D()(merged))
    model = models.Model(inp, out)
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="sparse_categorical_crossentropy")
    body, ends_in_softmax = benchmodels.torch_mirror(model)
    assert ends_in_softmax
    x = np.random.default_rng(0).random((5, 3, 8, 8), dtype=np.float32)
    y = np.array([0, 1, 2, 1, 0])
    body.eval()
    with torch.no_grad():
        mirrored = torch.softmax(body(torch.from_numpy(x)), 1).numpy()
    assert max(relative_errors([model.predict(x)], [mirrored])) < 1e-5
    body.train()
    loss = torch.nn.functional.cross_entropy(body(torch.from_numpy(x)), torch.from_numpy(y))
    assert model.train_on_batch(x, y) == pytest.approx(float(loss.detach()), rel=1e-5)


def test_mirror_of_default_leaky_relu_slopes_and_of_a_batch_norm_without_scale_or_center():
    """activation="leaky_relu" slopes by 0.2 here (torch's default is 0.01); a BatchNormalization
    built without gamma or beta acts as one with ones and zeros."""
    from cudacnn import layers, models, random

    random.set_seed(6)
    inp = layers.Input(shape=(2, 6, 6))
    x = layers.Conv2D(3, 3, activation="leaky_relu")(inp)
    x = layers.BatchNormalization(center=False)(layers.Activation("leaky_relu")(x))
    x = layers.BatchNormalization(scale=False)(x)
    model = models.Model(inp, layers.Dense(2)(layers.Flatten()(x)))
    body, _ = benchmodels.torch_mirror(model)
    body.eval()
    data = np.random.default_rng(1).standard_normal((3, 2, 6, 6)).astype(np.float32)
    with torch.no_grad():
        mirrored = body(torch.from_numpy(data)).numpy()
    assert max(relative_errors([model.predict(data)], [mirrored])) < 1e-5


def test_committed_results_table_is_up_to_date():
    assert _benchmarks_module("make_table").main(["--check"]) == 0


def test_fashion_workshop_script_trains_both_sides_on_a_small_batch():
    """benchmarks/fashion_workshop.py's training loops, on 200 random 28x28 images for one epoch."""
    fashion = _benchmarks_module("fashion_workshop")
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 200)
    results = fashion.run(x, y, x[:50], y[:50], epochs=1, batch_size=32)
    assert set(results["sides"]) == {"cudacnn-numpy", "torch-cpu"}
    for side in results["sides"].values():
        assert 0.0 <= side["test_accuracy"] <= 1.0 and side["images_per_s"] > 0
        assert len(side["val_accuracy"]) == len(side["loss"]) == 1
    assert results["train_images"] == 180  # the last 10% held out, as Keras' validation_split


def test_fashion_workshop_seed_sweep_records_each_run_and_the_spread():
    fashion = _benchmarks_module("fashion_workshop")
    assert fashion.parse_seeds("0-2,7") == [0, 1, 2, 7]
    rng = np.random.default_rng(1)
    x, y = rng.random((120, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 120)
    sweep = fashion.run_seeds(x, y, x[:40], y[:40], [0, 1], epochs=1, batch_size=32, sides=("cudacnn-numpy",))
    assert [r["seed"] for r in sweep["runs"]] == [0, 1] and set(sweep["spread"]) == {"cudacnn-numpy"}
    spread = sweep["spread"]["cudacnn-numpy"]
    accuracies = [r["sides"]["cudacnn-numpy"]["test_accuracy"] for r in sweep["runs"]]
    assert spread["test_accuracy"] == accuracies and spread["mean"] == pytest.approx(np.mean(accuracies))
    assert spread["min"] == min(accuracies) and spread["runs_at_or_above_0.90"] == sum(a >= 0.9 for a in accuracies)
    # Different seeds train from different initial weights: the losses differ.
    assert sweep["runs"][0]["sides"]["cudacnn-numpy"]["loss"] != sweep["runs"][1]["sides"]["cudacnn-numpy"]["loss"]


def test_fashion_workshop_learning_rate_reaches_both_sides():
    fashion = _benchmarks_module("fashion_workshop")
    rng = np.random.default_rng(2)
    x, y = rng.random((100, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 100)
    default, faster = (fashion.run(x, y, x[:20], y[:20], epochs=1, batch_size=30, lr=lr) for lr in (fashion.LR, 0.05))
    assert (default["learning_rate"], faster["learning_rate"]) == (fashion.LR, 0.05)
    for side in ("cudacnn-numpy", "torch-cpu"):  # same seed, same start: only the step size differs
        assert default["sides"][side]["loss"] != faster["sides"][side]["loss"]


def test_model_lists_expand_seed_and_all_inside_comma_lists():
    from cudacnn import benchmodels, zoo

    seed = benchmodels.seed_model_names()
    assert bench.model_names("seed") == seed
    assert bench.model_names("seed,resnet18") == seed + ["resnet18"] * ("resnet18" not in seed)
    assert bench.model_names("digits_cnn,all") == ["digits_cnn"] + [n for n in zoo.names() if n != "digits_cnn"]
    assert bench.model_names("none") == []
