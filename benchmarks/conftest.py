"""pytest-benchmark suites: every case on every engine (our numpy/cupy/cuda backends, PyTorch CPU/CUDA).

Cases, engines and timing helpers come from the package (cudacnn.benchcases,
cudacnn.benchmodels, cudacnn.benchrun), shared with `cudacnn bench` and
benchmarks/gpu_kernels.py. An engine that cannot run here is skipped with the reason.

Options: --bench-batch N (default 64), --bench-conv-layers lecture,vgg16,resnet18,
--bench-scale cpu|gpu (sizes of the memory-bound ops), --bench-models seed|all|name,...
"""
import numpy as np
import pytest

from cudacnn.benchrun import ENGINES, Engine, engine_unavailable_reason


def pytest_addoption(parser):
    group = parser.getgroup("cudacnn benchmarks")
    group.addoption("--bench-batch", type=int, default=64, help="batch size of every case")
    group.addoption("--bench-conv-layers", default="lecture", help="conv layer sets: lecture,vgg16,resnet18")
    group.addoption("--bench-scale", default="cpu", choices=("cpu", "gpu"), help="memory-bound op sizes")
    group.addoption("--bench-models", default="seed", help="zoo models: seed, all, or names")
    group.addoption("--bench-engines", default="all", help=f"engines to run: all or some of {','.join(ENGINES)}")


def pytest_generate_tests(metafunc):
    if "engine_name" in metafunc.fixturenames:
        spec = metafunc.config.getoption("--bench-engines")
        names = ENGINES if spec == "all" else [n.strip() for n in spec.split(",")]
        metafunc.parametrize("engine_name", names)


@pytest.fixture
def engine(engine_name):
    reason = engine_unavailable_reason(engine_name)
    if reason is not None:
        pytest.skip(f"{engine_name} skipped: {reason}")
    return Engine(engine_name)


def run_benchmark(benchmark, case, engine):
    """Time ``case`` on ``engine`` with pytest-benchmark, device work synchronised inside the timed call."""
    from cudacnn.bench import reference_key, runs_on

    if not runs_on(case, engine):
        pytest.skip("PyTorch picks its own conv algorithm: it is measured once per layer, on the 'auto' case")
    host = case.inputs(np.random.default_rng(0))
    benchmark.group = reference_key(case)
    benchmark.extra_info.update(engine=engine.label, device=engine.device, metric=case.metric, work=case.work())
    with engine.active():
        inputs = engine.put(host)
        fn = case.torch(inputs) if engine.is_torch else case.ours(inputs)
        fn()  # warm-up: module load, kernel compilation and cuDNN autotuning stay out of the numbers
        engine.sync()

        def timed():
            out = fn()
            engine.sync()
            return out

        benchmark(timed)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable (the suite run as plain tests)
        benchmark.extra_info["rate"] = case.rate(stats.stats.median)
