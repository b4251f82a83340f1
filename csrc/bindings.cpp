// PYBIND11_MODULE(_C): binds only. Every function takes raw device pointers
// (as integers), sizes and a cudaStream_t (as an integer); kernels never see
// Python types. Launchers live beside their kernels in csrc/<family>.cu.
#include <pybind11/pybind11.h>
#include <cuda_runtime.h>
#include "common.cuh"

namespace py = pybind11;

static int device_count() {
  int n = 0;
  // No driver or no device is not an error here: _C must import on a CPU-only machine.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "cudacnn CUDA kernels (raw device pointers, sizes, stream)";
  py::register_exception<cudacnn::CudaError>(m, "CudaError", PyExc_RuntimeError);
  m.def("device_count", &device_count, "Number of CUDA devices visible (0 without GPU or driver)");
  m.attr("cuda_runtime_version") = CUDART_VERSION;
}
