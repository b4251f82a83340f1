"""The CPU emulator of our kernels (csrc/emu) catches a missing __syncthreads.

The emulated GPU tests are only as good as the emulator's scheduling: these kernels
are right with their barriers and wrong without, and the default (shuffled) order
must tell the two apart. Compiled with g++ against csrc/emu/cuda_runtime.h.
"""
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

EMU = Path(__file__).resolve().parents[1] / "csrc" / "emu"

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is needed to build the emulator")

# Two blocks of 96 threads (three warps, a block of 2 in the last one: 96 = 3*32).
# `reverse`: each thread writes its value, then reads the mirror thread's (read after write).
# `rotate`: three rounds of write-then-read-the-neighbour in one buffer (write after read).
# `warp_sums`: per-warp shuffle sums into shared memory, read by every thread, twice.
KERNELS = r"""
#include <cstdio>
#include <cstdlib>
#include "cuda_runtime.h"

constexpr int kThreads = 96;

__device__ __forceinline__ void barrier(bool sync) { if (sync) __syncthreads(); }

__global__ void reverse(const float *in, float *out, bool sync) {
  extern __shared__ float buf[];
  const int t = threadIdx.x, base = blockIdx.x * kThreads;
  buf[t] = in[base + t];
  barrier(sync);
  out[base + t] = buf[kThreads - 1 - t];
}

__global__ void rotate(const float *in, float *out, bool sync) {
  extern __shared__ float buf[];
  const int t = threadIdx.x, base = blockIdx.x * kThreads;
  float v = in[base + t];
  for (int round = 0; round < 3; ++round) {
    buf[t] = v;
    barrier(true);
    v = buf[(t + 1) % kThreads];
    barrier(sync);  // every thread has read buf before the next round overwrites it
  }
  out[base + t] = v;
}

__global__ void warp_sums(const float *in, float *out, bool sync) {
  extern __shared__ float buf[];
  const int t = threadIdx.x, base = blockIdx.x * kThreads;
  float total = 0.0f;
  for (int call = 0; call < 2; ++call) {
    float v = in[base + t] * (call + 1);
    for (int lanes = 16; lanes > 0; lanes >>= 1) v += __shfl_xor_sync(0xffffffffu, v, lanes);
    barrier(sync);  // the previous call's readers are done with buf
    if (t % 32 == 0) buf[t / 32] = v;
    __syncthreads();
    total += buf[0] + buf[1] + buf[2];
  }
  out[base + t] = total;
}

int main(int argc, char **argv) {
  const bool sync = argc > 1 && argv[1][0] == '1';
  float in[2 * kThreads], expect[3][2 * kThreads], got[3][2 * kThreads];
  for (int i = 0; i < 2 * kThreads; ++i) in[i] = float(i % 7) + 0.25f * float(i / kThreads);
  for (int b = 0; b < 2; ++b) {
    float sum = 0.0f;
    for (int t = 0; t < kThreads; ++t) sum += in[b * kThreads + t];
    for (int t = 0; t < kThreads; ++t) {
      expect[0][b * kThreads + t] = in[b * kThreads + kThreads - 1 - t];
      expect[1][b * kThreads + t] = in[b * kThreads + (t + 3) % kThreads];
      expect[2][b * kThreads + t] = 3.0f * sum;
    }
  }
  reverse<<<2, kThreads, kThreads * sizeof(float)>>>(in, got[0], sync);
  rotate<<<2, kThreads, kThreads * sizeof(float)>>>(in, got[1], sync);
  warp_sums<<<2, kThreads, 3 * sizeof(float)>>>(in, got[2], sync);
  const char *names[3] = {"reverse", "rotate", "warp_sums"};
  for (int k = 0; k < 3; ++k) {
    bool ok = true;
    for (int i = 0; i < 2 * kThreads; ++i) ok &= got[k][i] == expect[k][i];
    std::printf("%s %s\n", names[k], ok ? "right" : "wrong");
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("emu_build", EMU / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    folder = tmp_path_factory.mktemp("emu")
    (folder / "kernels.cpp").write_text(build.to_cpp(KERNELS))
    exe = folder / "kernels"
    subprocess.run(["g++", "-std=c++20", "-O1", f"-I{EMU}", str(folder / "kernels.cpp"), "-o", str(exe)],
                   check=True)
    return exe


def outcomes(program, sync: bool, order: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CUDAEMU_ORDER"}
    if order:
        env["CUDAEMU_ORDER"] = order
    out = subprocess.run([str(program), "1" if sync else "0"], env=env, capture_output=True, text=True, check=True)
    return dict(line.split() for line in out.stdout.splitlines())


@pytest.mark.parametrize("order", [None, "shuffle", "forward", "reverse"])
def test_kernels_with_their_barriers_are_right_in_every_order(program, order):
    assert outcomes(program, sync=True, order=order) == {"reverse": "right", "rotate": "right", "warp_sums": "right"}


def test_the_default_order_catches_every_missing_barrier(program):
    assert outcomes(program, sync=False, order=None) == {"reverse": "wrong", "rotate": "wrong", "warp_sums": "wrong"}


def test_an_unknown_order_is_refused(program):
    env = {**os.environ, "CUDAEMU_ORDER": "sideways"}
    run = subprocess.run([str(program), "1"], env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "CUDAEMU_ORDER=sideways" in run.stderr
