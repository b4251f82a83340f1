#!/usr/bin/env bash
# Run the GPU tests of our kernels on a CPU: build the kernels for emulation
# (csrc/emu/cuda_runtime.h), then pytest the cuda-backend tests with a NumPy-backed
# cupy. Checks the kernels' results (index arithmetic, tiling, reductions,
# barriers within a block: threads run in a shuffled, warp-major order, so a
# missing __syncthreads shows up as a wrong result), not speed or races between
# blocks. CUDAEMU_ORDER=forward|reverse picks a fixed order. About 2-3 minutes
# on 2 cores. Usage: csrc/emu/run_tests.sh [pytest args, default: tests/test_cuda_*.py]
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-.venv/bin/python}
"$py" csrc/emu/build.py
if [ $# -eq 0 ]; then set -- tests/test_cuda_*.py; fi
PYTHONPATH=csrc/emu${PYTHONPATH:+:$PYTHONPATH} exec "$py" -m pytest -q -p emu_plugin "$@"
