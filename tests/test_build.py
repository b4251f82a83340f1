"""The extension compiled in CI imports and reports its device count.

With CUDACNN_REQUIRE_CUDA=1 (CI, where nvcc exists) ``cudacnn._C`` must be
there; otherwise the test is skipped when the extension was not built.
"""
import os

import pytest

# Every launcher the cuda backend calls: a missing one means a kernel family was dropped.
EXPECTED = [
    "conv2d_direct_forward", "conv2d_direct_backward_data", "conv2d_direct_backward_data_workspace",
    "conv2d_direct_backward_weight",
    "conv2d_direct_backward_weight_workspace", "conv2d_direct_supported",
    "conv2d_im2col_forward", "conv2d_im2col_backward_data", "conv2d_im2col_backward_weight",
    "conv2d_im2col_workspace", "conv2d_winograd_supported", "conv2d_winograd_workspace",
    "conv2d_winograd_forward", "conv2d_winograd_backward_data", "sgemm", "linear_workspace", "linear_forward",
    "linear_backward",
    "max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward",
    "global_avg_pool2d_forward", "global_avg_pool2d_backward",
    "batch_norm_workspace", "batch_norm_forward_train", "batch_norm_normalize", "batch_norm_backward",
    "softmax_xent_forward_index", "softmax_xent_forward_prob", "softmax_xent_backward_index",
    "softmax_xent_backward_prob", "softmax_forward", "softmax_backward",
    "channel_sum", "activation_forward", "activation_backward", "dropout_apply",
    "sgd_update", "rmsprop_update", "adam_update",
]


def _extension():
    if os.environ.get("CUDACNN_REQUIRE_CUDA") == "1":
        import cudacnn._C as C  # must import: CI built it

        return C
    return pytest.importorskip("cudacnn._C", reason="cudacnn._C was not built (no nvcc at install time); "
                                                    "set CUDACNN_REQUIRE_CUDA=1 to require it")


def test_extension_imports_and_reports_device_count():
    C = _extension()
    n = C.device_count()
    assert isinstance(n, int) and n >= 0


def test_every_kernel_family_is_bound():
    C = _extension()
    missing = [name for name in EXPECTED if not hasattr(C, name)]
    assert not missing, f"cudacnn._C lacks {missing}"
