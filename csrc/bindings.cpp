// PYBIND11_MODULE(_C): binds only. Every function takes raw device pointers
// (as integers), sizes and a cudaStream_t (as an integer); kernels never see
// Python types. Launchers live beside their kernels in csrc/<family>.cu and
// validate their arguments before any CUDA call: std::invalid_argument
// becomes ValueError, a CUDA failure becomes cudacnn._C.CudaError.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <cuda_runtime.h>

#include "common.cuh"
#include "launchers.h"

namespace py = pybind11;
using namespace cudacnn;

static int device_count() {
  int n = 0;
  // No driver or no device is not an error here: _C must import on a CPU-only machine.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

static void bind_conv(py::module_ &m) {
  py::class_<Conv2dShape>(m, "Conv2dShape", "Geometry of one conv2d call (NCHW, weight (K, C/groups, R, S)).")
      .def(py::init([](int N, int C, int H, int W, int K, int R, int S, int P, int Q, int stride_h, int stride_w,
                       int pad_top, int pad_bottom, int pad_left, int pad_right, int dil_h, int dil_w, int groups) {
             return Conv2dShape{N, C, H, W, K, R, S, P, Q, stride_h, stride_w, pad_top, pad_bottom, pad_left,
                                pad_right, dil_h, dil_w, groups};
           }),
           py::arg("N"), py::arg("C"), py::arg("H"), py::arg("W"), py::arg("K"), py::arg("R"), py::arg("S"),
           py::arg("P"), py::arg("Q"), py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"),
           py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("dil_h"), py::arg("dil_w"),
           py::arg("groups"))
      .def("validate", &Conv2dShape::validate, "Raise ValueError if the geometry is inconsistent.");
  m.def("conv2d_direct_supported", &conv2d_direct_supported, py::arg("shape"));
  m.def("conv2d_direct_forward", &conv2d_direct_forward, py::arg("y"), py::arg("x"), py::arg("w"), py::arg("bias"),
        py::arg("relu"), py::arg("shape"), py::arg("stream"));
  m.def("conv2d_direct_backward_data_workspace", &conv2d_direct_backward_data_workspace, py::arg("shape"));
  m.def("conv2d_direct_backward_data", &conv2d_direct_backward_data, py::arg("dx"), py::arg("dy"), py::arg("w"),
        py::arg("workspace"), py::arg("workspace_size"), py::arg("shape"), py::arg("stream"));
  m.def("conv2d_direct_backward_weight_workspace", &conv2d_direct_backward_weight_workspace, py::arg("shape"));
  m.def("conv2d_direct_backward_weight", &conv2d_direct_backward_weight, py::arg("dw"), py::arg("dy"), py::arg("x"),
        py::arg("workspace"), py::arg("workspace_size"), py::arg("shape"), py::arg("stream"));
  py::enum_<ConvPass>(m, "ConvPass")
      .value("forward", ConvPass::kForward)
      .value("backward_data", ConvPass::kBackwardData)
      .value("backward_weight", ConvPass::kBackwardWeight);
  m.def("conv2d_im2col_workspace", &conv2d_im2col_workspace, py::arg("shape"), py::arg("chunk"), py::arg("pass_"));
  m.def("conv2d_im2col_forward", &conv2d_im2col_forward, py::arg("y"), py::arg("x"), py::arg("w"), py::arg("bias"),
        py::arg("relu"), py::arg("workspace"), py::arg("workspace_size"), py::arg("chunk"), py::arg("shape"), py::arg("stream"));
  m.def("conv2d_im2col_backward_data", &conv2d_im2col_backward_data, py::arg("dx"), py::arg("dy"), py::arg("w"),
        py::arg("workspace"), py::arg("workspace_size"), py::arg("chunk"), py::arg("shape"), py::arg("stream"));
  m.def("conv2d_im2col_backward_weight", &conv2d_im2col_backward_weight, py::arg("dw"), py::arg("dy"), py::arg("x"),
        py::arg("workspace"), py::arg("workspace_size"), py::arg("chunk"), py::arg("shape"), py::arg("stream"));
  m.def("conv2d_winograd_supported", &conv2d_winograd_supported, py::arg("shape"), py::arg("pass_"));
  m.def("conv2d_winograd_workspace", &conv2d_winograd_workspace, py::arg("shape"), py::arg("chunk"),
        py::arg("pass_"));
  m.def("conv2d_winograd_forward", &conv2d_winograd_forward, py::arg("y"), py::arg("x"), py::arg("w"),
        py::arg("bias"), py::arg("relu"), py::arg("workspace"), py::arg("workspace_size"), py::arg("chunk"),
        py::arg("shape"), py::arg("stream"));
  m.def("conv2d_winograd_backward_data", &conv2d_winograd_backward_data, py::arg("dx"), py::arg("dy"), py::arg("w"),
        py::arg("workspace"), py::arg("workspace_size"), py::arg("chunk"), py::arg("shape"), py::arg("stream"));
}

static void bind_gemm(py::module_ &m) {
  m.def("sgemm", &sgemm, "C (M, N) = alpha * op(A) @ op(B) + beta * C, row-major", py::arg("c"), py::arg("a"),
        py::arg("b"), py::arg("M"), py::arg("N"), py::arg("K"), py::arg("trans_a"), py::arg("trans_b"),
        py::arg("alpha"), py::arg("beta"), py::arg("stream"));
  m.def("linear_workspace", &linear_workspace, py::arg("batch"), py::arg("in_features"), py::arg("out_features"));
  m.def("linear_forward", &linear_forward, py::arg("y"), py::arg("x"), py::arg("w"), py::arg("bias"),
        py::arg("relu"), py::arg("workspace"), py::arg("workspace_size"), py::arg("batch"), py::arg("in_features"),
        py::arg("out_features"), py::arg("stream"));
  m.def("linear_backward", &linear_backward, py::arg("dx"), py::arg("dw"), py::arg("dy"), py::arg("x"), py::arg("w"),
        py::arg("workspace"), py::arg("workspace_size"), py::arg("batch"), py::arg("in_features"),
        py::arg("out_features"), py::arg("stream"));
}

static void bind_elementwise(py::module_ &m) {
  py::enum_<Activation>(m, "Activation")
      .value("relu", kRelu)
      .value("leaky_relu", kLeakyRelu)
      .value("elu", kElu)
      .value("sigmoid", kSigmoid)
      .value("tanh", kTanh);
  m.def("channel_sum", &channel_sum, py::arg("out"), py::arg("x"), py::arg("N"), py::arg("C"), py::arg("HW"),
        py::arg("stream"));
  m.def("activation_forward", &activation_forward, py::arg("y"), py::arg("x"), py::arg("n"), py::arg("kind"),
        py::arg("param"), py::arg("stream"));
  m.def("activation_backward", &activation_backward, py::arg("dx"), py::arg("dy"), py::arg("x_or_y"), py::arg("n"),
        py::arg("kind"), py::arg("param"), py::arg("stream"));
  m.def("dropout_apply", &dropout_apply, py::arg("y"), py::arg("x"), py::arg("n"), py::arg("rate"), py::arg("seed"),
        py::arg("stream"));
  // Optimizer updates take lists (one entry per tensor) and launch once per 24 tensors.
  m.def("sgd_update", &sgd_update, py::arg("p"), py::arg("g"), py::arg("velocity"), py::arg("n"), py::arg("lr"),
        py::arg("momentum"), py::arg("nesterov"), py::arg("weight_decay"), py::arg("stream"));
  m.def("rmsprop_update", &rmsprop_update, py::arg("p"), py::arg("g"), py::arg("mean_square"), py::arg("n"),
        py::arg("lr"), py::arg("rho"), py::arg("eps"), py::arg("weight_decay"), py::arg("stream"));
  m.def("adam_update", &adam_update, py::arg("p"), py::arg("g"), py::arg("m"), py::arg("v"), py::arg("n"),
        py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"), py::arg("step"),
        py::arg("stream"));
}

static void bind_pool(py::module_ &m) {
  py::class_<Pool2dShape>(m, "Pool2dShape", "Geometry of one 2-D pooling call (NCHW).")
      .def(py::init([](int N, int C, int H, int W, int kernel_h, int kernel_w, int stride_h, int stride_w,
                       int pad_top, int pad_bottom, int pad_left, int pad_right, int P, int Q) {
             return Pool2dShape{N, C, H, W, kernel_h, kernel_w, stride_h, stride_w,
                                pad_top, pad_bottom, pad_left, pad_right, P, Q};
           }),
           py::arg("N"), py::arg("C"), py::arg("H"), py::arg("W"), py::arg("kernel_h"), py::arg("kernel_w"),
           py::arg("stride_h"), py::arg("stride_w"), py::arg("pad_top"), py::arg("pad_bottom"), py::arg("pad_left"),
           py::arg("pad_right"), py::arg("P"), py::arg("Q"))
      .def("validate", &Pool2dShape::validate, "Raise ValueError if the geometry is inconsistent.");
  m.def("max_pool2d_forward", &max_pool2d_forward, py::arg("y"), py::arg("indices"), py::arg("x"), py::arg("shape"),
        py::arg("stream"));
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("dx"), py::arg("dy"), py::arg("indices"),
        py::arg("shape"), py::arg("stream"));
  m.def("avg_pool2d_forward", &avg_pool2d_forward, py::arg("y"), py::arg("x"), py::arg("shape"),
        py::arg("count_include_pad"), py::arg("stream"));
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("dx"), py::arg("dy"), py::arg("shape"),
        py::arg("count_include_pad"), py::arg("stream"));
  m.def("global_avg_pool2d_forward", &global_avg_pool2d_forward, py::arg("y"), py::arg("x"), py::arg("N"),
        py::arg("C"), py::arg("HW"), py::arg("stream"));
  m.def("global_avg_pool2d_backward", &global_avg_pool2d_backward, py::arg("dx"), py::arg("dy"), py::arg("N"),
        py::arg("C"), py::arg("HW"), py::arg("stream"));
}

static void bind_norm_and_loss(py::module_ &m) {
  m.def("batch_norm_workspace", &batch_norm_workspace, py::arg("N"), py::arg("C"), py::arg("HW"));
  m.def("batch_norm_forward_train", &batch_norm_forward_train, py::arg("y"), py::arg("mean"), py::arg("inv_std"),
        py::arg("running_mean"), py::arg("running_var"), py::arg("x"), py::arg("gamma"), py::arg("beta"),
        py::arg("workspace"), py::arg("workspace_size"), py::arg("N"), py::arg("C"), py::arg("HW"),
        py::arg("momentum"), py::arg("eps"), py::arg("lag_bytes"), py::arg("stream"));
  m.def("batch_norm_normalize", &batch_norm_normalize, py::arg("y"), py::arg("x"), py::arg("mean"),
        py::arg("inv_std"), py::arg("gamma"), py::arg("beta"), py::arg("N"), py::arg("C"), py::arg("HW"),
        py::arg("stream"));
  m.def("batch_norm_backward", &batch_norm_backward, py::arg("dx"), py::arg("dgamma"), py::arg("dbeta"),
        py::arg("dy"), py::arg("x"), py::arg("mean"), py::arg("inv_std"), py::arg("gamma"), py::arg("workspace"),
        py::arg("workspace_size"), py::arg("N"), py::arg("C"), py::arg("HW"), py::arg("training"),
        py::arg("lag_bytes"), py::arg("stream"));
  m.def("softmax_xent_forward_index", &softmax_xent_forward_index, py::arg("loss"), py::arg("row_max"),
        py::arg("log_sum"), py::arg("row_loss"), py::arg("logits"), py::arg("labels"), py::arg("N"), py::arg("K"),
        py::arg("stream"));
  m.def("softmax_xent_forward_prob", &softmax_xent_forward_prob, py::arg("loss"), py::arg("row_max"),
        py::arg("log_sum"), py::arg("row_loss"), py::arg("logits"), py::arg("targets"), py::arg("N"), py::arg("K"),
        py::arg("stream"));
  m.def("softmax_xent_backward_index", &softmax_xent_backward_index, py::arg("dlogits"), py::arg("logits"),
        py::arg("row_max"), py::arg("log_sum"), py::arg("labels"), py::arg("N"), py::arg("K"), py::arg("stream"));
  m.def("softmax_xent_backward_prob", &softmax_xent_backward_prob, py::arg("dlogits"), py::arg("logits"),
        py::arg("row_max"), py::arg("log_sum"), py::arg("targets"), py::arg("N"), py::arg("K"), py::arg("stream"));
  m.def("softmax_forward", &softmax_forward, py::arg("y"), py::arg("x"), py::arg("rows"), py::arg("K"),
        py::arg("stream"));
  m.def("softmax_backward", &softmax_backward, py::arg("dx"), py::arg("dy"), py::arg("y"), py::arg("rows"),
        py::arg("K"), py::arg("stream"));
}

PYBIND11_MODULE(_C, m) {
  m.doc() = "cudacnn CUDA kernels (raw device pointers, sizes, stream)";
  py::register_exception<cudacnn::CudaError>(m, "CudaError", PyExc_RuntimeError);
  m.def("device_count", &device_count, "Number of CUDA devices visible (0 without GPU or driver)");
  m.attr("cuda_runtime_version") = CUDART_VERSION;
  bind_conv(m);
  bind_gemm(m);
  bind_elementwise(m);
  bind_pool(m);
  bind_norm_and_loss(m);
}
