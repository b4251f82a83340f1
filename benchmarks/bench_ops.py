"""Op-level benchmarks: conv2d (direct/im2col/auto), pooling, batch norm, softmax-CE, linear; fwd and bwd.

Rows report time (pytest-benchmark's columns) and, in extra_info, the metric
(GFLOP/s for conv2d and linear, counted from the shapes; GB/s for the
memory-bound ops, each input read once and each output written once) with its
rate at the median time. Rows of one case share a group, so ours and PyTorch
sit side by side.
"""
from conftest import run_benchmark

from cudacnn import benchcases


def pytest_generate_tests(metafunc):
    if "op_case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    cases = benchcases.op_cases(conv_sets=config.getoption("--bench-conv-layers").split(","),
                                batch=config.getoption("--bench-batch"),
                                scale=config.getoption("--bench-scale"))
    metafunc.parametrize("op_case", cases, ids=[c.name for c in cases])


def bench_op(benchmark, op_case, engine):
    run_benchmark(benchmark, op_case, engine)
