"""Model-level benchmarks: one training step and one inference pass of the zoo models (images/s).

The PyTorch rows run a mirror of our model (same layers, same initial weights,
same SGD-with-momentum step; see cudacnn.benchmodels).
"""
import pytest
from conftest import run_benchmark

from cudacnn import benchmodels


def _model_names(spec):
    if spec == "seed":
        return benchmodels.seed_model_names()
    if spec == "all":
        from cudacnn import zoo
        return list(zoo.names())
    return [name.strip() for name in spec.split(",") if name.strip()]


def pytest_generate_tests(metafunc):
    if "model_case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    cases = benchmodels.model_cases(_model_names(config.getoption("--bench-models")),
                                    config.getoption("--bench-batch"))
    metafunc.parametrize("model_case", cases or [pytest.param(None, marks=pytest.mark.skip("no zoo models"))],
                         ids=[c.name for c in cases] or ["none"])


def bench_model(benchmark, model_case, engine):
    try:
        run_benchmark(benchmark, model_case, engine)
    except benchmodels.MirrorUnsupported as exc:
        pytest.skip(f"no PyTorch mirror: {exc}")
