"""The launchers reject bad sizes and null pointers with ValueError before any CUDA call.

Runs without a GPU: had a check been missing, the launch would have been
attempted and failed differently (cudacnn._C.CudaError, or worse on a
device). Every case below leaves at least one argument invalid, so nothing is
ever launched with the fake (non-null) pointers used here, even on a machine
with a GPU.
"""
import pytest

C = pytest.importorskip("cudacnn._C", reason="cudacnn._C was not built (no nvcc at install time)")

FAKE = 256  # a non-null "device pointer"; never dereferenced because every call below is invalid


def conv_shape(**changes):
    geometry = dict(N=2, C=4, H=9, W=8, K=6, R=3, S=3, P=9, Q=8, stride_h=1, stride_w=1, pad_top=1,
                    pad_bottom=1, pad_left=1, pad_right=1, dil_h=1, dil_w=1, groups=2)
    geometry.update(changes)
    return C.Conv2dShape(**geometry)


def pool_shape(**changes):
    geometry = dict(N=2, C=3, H=9, W=8, kernel_h=3, kernel_w=3, stride_h=2, stride_w=2, pad_top=1, pad_bottom=1,
                    pad_left=1, pad_right=1, P=5, Q=4)
    geometry.update(changes)
    return C.Pool2dShape(**geometry)


def test_the_reference_geometries_are_valid():
    conv_shape().validate()
    pool_shape().validate()


CASES = {
    # name: (call, fragment of the message)
    "conv_wrong_output_size": (lambda: C.conv2d_direct_forward(FAKE, FAKE, FAKE, 0, False, conv_shape(P=8), 0),
                               "does not match the geometry"),
    "conv_groups_do_not_divide": (lambda: C.conv2d_direct_forward(FAKE, FAKE, FAKE, 0, False,
                                                                  conv_shape(groups=3), 0), "groups=3"),
    "conv_zero_batch": (lambda: C.conv2d_direct_backward_data(FAKE, FAKE, FAKE, FAKE, 10**6, conv_shape(N=0), 0),
                        "positive"),
    "direct_data_small_workspace": (lambda: C.conv2d_direct_backward_data(FAKE, FAKE, FAKE, FAKE, 5, conv_shape(), 0),
                                    "workspace"),
    "conv_negative_pad": (lambda: C.conv2d_im2col_forward(FAKE, FAKE, FAKE, 0, False, FAKE, 10**6, 1,
                                                          conv_shape(pad_top=-1, P=8), 0), "padding"),
    "conv_zero_stride": (lambda: C.conv2d_direct_backward_weight(FAKE, FAKE, FAKE, FAKE, 10**6,
                                                                 conv_shape(stride_h=0), 0), "strides"),
    "conv_filter_too_big": (lambda: C.conv2d_direct_forward(FAKE, FAKE, FAKE, 0, False,
                                                            conv_shape(R=12, pad_top=0, pad_bottom=0, P=1), 0),
                            "larger than the padded input"),
    "conv_too_many_elements": (lambda: C.conv2d_direct_forward(FAKE, FAKE, FAKE, 0, False,
                                                               conv_shape(N=2**20, C=2**12, groups=1), 0),
                               "2^31-1"),
    "conv_null_output": (lambda: C.conv2d_direct_forward(0, FAKE, FAKE, 0, False, conv_shape(), 0), "y is a null"),
    "conv_null_input": (lambda: C.conv2d_im2col_backward_data(FAKE, 0, FAKE, FAKE, 10**6, 1, conv_shape(), 0),
                        "dy is a null"),
    "im2col_zero_chunk": (lambda: C.conv2d_im2col_forward(FAKE, FAKE, FAKE, 0, False, FAKE, 10**6, 0, conv_shape(), 0),
                          "chunk"),
    "im2col_chunk_above_batch": (lambda: C.conv2d_im2col_workspace(conv_shape(), 3, C.ConvPass.backward_data),
                                 "chunk"),
    "im2col_small_workspace": (lambda: C.conv2d_im2col_backward_weight(FAKE, FAKE, FAKE, FAKE, 10, 2,
                                                                       conv_shape(), 0), "workspace"),
    "im2col_null_workspace": (lambda: C.conv2d_im2col_backward_data(FAKE, FAKE, FAKE, 0, 10**6, 1, conv_shape(),
                                                                    0), "workspace is a null"),
    "direct_weight_small_workspace": (lambda: C.conv2d_direct_backward_weight(
        FAKE, FAKE, FAKE, FAKE, 0, conv_shape(N=64, H=64, W=64, P=64, Q=64, K=2, C=2, groups=1), 0), "workspace"),
    "winograd_stride2": (lambda: C.conv2d_winograd_forward(FAKE, FAKE, FAKE, 0, False, FAKE, 10**6, 1,
                                                            conv_shape(stride_h=2, stride_w=2, P=5, Q=4, groups=1),
                                                            0), "3x3 filters, stride 1"),
    "winograd_small_workspace": (lambda: C.conv2d_winograd_forward(FAKE, FAKE, FAKE, 0, False, FAKE, 10, 1,
                                                                   conv_shape(groups=1), 0), "workspace"),
    "winograd_data_gradient_pad3": (lambda: C.conv2d_winograd_backward_data(
        FAKE, FAKE, FAKE, FAKE, 10**6, 1, conv_shape(groups=1, pad_top=3, P=11), 0), "padding at most 2"),
    "sgemm_zero_m": (lambda: C.sgemm(FAKE, FAKE, FAKE, 0, 3, 3, False, False, 1.0, 0.0, 0), "M must be positive"),
    "sgemm_null_b": (lambda: C.sgemm(FAKE, FAKE, 0, 2, 3, 3, False, True, 1.0, 0.0, 0), "B is a null"),
    "linear_negative_batch": (lambda: C.linear_forward(FAKE, FAKE, FAKE, 0, False, 0, 0, -1, 3, 4, 0), "batch"),
    "linear_backward_null_dw": (lambda: C.linear_backward(FAKE, 0, FAKE, FAKE, FAKE, 0, 0, 2, 3, 4, 0),
                                "dw is a null"),
    # 57600 -> 32 at batch 64 (the CIFAR-10 lecture net's Dense) splits its reduction: it needs a workspace.
    "linear_split_k_small_workspace": (lambda: C.linear_forward(FAKE, FAKE, FAKE, 0, False, FAKE, 10, 64, 57600, 32, 0),
                                       "workspace"),
    "linear_split_k_null_workspace": (lambda: C.linear_backward(FAKE, FAKE, FAKE, FAKE, FAKE, 0, 10**7, 64, 57600,
                                                                32, 0), "workspace is a null"),
    "pool_wrong_output": (lambda: C.max_pool2d_forward(FAKE, FAKE, FAKE, pool_shape(P=4), 0),
                          "does not match the geometry"),
    "pool_pad_not_below_kernel": (lambda: C.avg_pool2d_forward(FAKE, FAKE, pool_shape(pad_top=3, P=6), True, 0),
                                  "smaller than the kernel"),
    "pool_null_indices": (lambda: C.max_pool2d_backward(FAKE, FAKE, 0, pool_shape(), 0), "indices is a null"),
    "global_pool_zero_plane": (lambda: C.global_avg_pool2d_forward(FAKE, FAKE, 2, 3, 0, 0), "H*W"),
    "bn_null_beta_in_training": (lambda: C.batch_norm_forward_train(FAKE, FAKE, FAKE, FAKE, FAKE, FAKE, FAKE, 0,
                                                                    FAKE, 10**6, 2, 4, 5, 0.1, 1e-5, 0, 0),
                                 "beta is a null"),
    "bn_small_workspace": (lambda: C.batch_norm_backward(FAKE, FAKE, FAKE, FAKE, FAKE, FAKE, FAKE, FAKE, FAKE, 1,
                                                         2, 4, 5, True, 0, 0), "workspace"),
    "bn_null_gamma": (lambda: C.batch_norm_normalize(FAKE, FAKE, FAKE, FAKE, 0, FAKE, 2, 4, 5, 0),
                      "gamma is a null"),
    "bn_null_mean_in_backward": (lambda: C.batch_norm_backward(FAKE, FAKE, FAKE, FAKE, FAKE, 0, FAKE, FAKE, FAKE,
                                                               10**6, 2, 4, 5, True, 0, 0), "mean is a null"),
    "bn_zero_channels": (lambda: C.batch_norm_workspace(2, 0, 5), "C must be positive"),
    "bn_more_items_than_a_grid": (lambda: C.batch_norm_workspace(1, 2**31 - 1, 1), "channels are more than one launch"),
    "xent_zero_classes": (lambda: C.softmax_xent_forward_index(FAKE, FAKE, FAKE, FAKE, FAKE, FAKE, 4, 0, 0), "K"),
    "xent_null_labels": (lambda: C.softmax_xent_backward_index(FAKE, FAKE, FAKE, FAKE, 0, 4, 3, 0), "labels is a null"),
    "softmax_zero_rows": (lambda: C.softmax_forward(FAKE, FAKE, 0, 3, 0), "rows"),
    "channel_sum_zero_channels": (lambda: C.channel_sum(FAKE, FAKE, 2, 0, 4, 0), "C must be positive"),
    "activation_unknown_kind": (lambda: C.activation_forward(FAKE, FAKE, 10, 99, 0.0, 0), "unknown activation"),
    "activation_empty": (lambda: C.activation_backward(FAKE, FAKE, FAKE, 0, 0, 0.0, 0), "element count"),
    "dropout_rate_one": (lambda: C.dropout_apply(FAKE, FAKE, 10, 1.0, 0, 0), "rate"),
    "dropout_null_output": (lambda: C.dropout_apply(0, FAKE, 10, 0.5, 0, 0), "y is a null"),
    "sgd_momentum_without_velocity": (lambda: C.sgd_update([FAKE], [FAKE], [0], [10], 0.1, 0.9, False, 0.0, 0),
                                      "velocity"),
    "rmsprop_null_state": (lambda: C.rmsprop_update([FAKE], [FAKE], [0], [10], 0.1, 0.9, 1e-7, 0.0, 0),
                           "mean_square"),
    "adam_step_zero": (lambda: C.adam_update([FAKE], [FAKE], [FAKE], [FAKE], [10], 0.1, 0.9, 0.999, 1e-7, 0.0, 0, 0),
                       "step"),
    "update_no_tensors": (lambda: C.sgd_update([], [], [], [], 0.1, 0.0, False, 0.0, 0), "no tensors"),
    "update_lists_differ": (lambda: C.rmsprop_update([FAKE, FAKE], [FAKE], [FAKE, FAKE], [10, 10], 0.1, 0.9, 1e-7,
                                                     0.0, 0), "differ in length"),
    # a null pointer or an empty tensor late in a list (beyond the first launch's 24) is still refused
    "update_null_grad_in_list": (lambda: C.sgd_update([FAKE] * 30, [FAKE] * 29 + [0], [0] * 30, [10] * 30, 0.1, 0.0,
                                                      False, 0.0, 0), "grad is a null"),
    "update_empty_tensor_in_list": (lambda: C.adam_update([FAKE] * 3, [FAKE] * 3, [FAKE] * 3, [FAKE] * 3, [4, 0, 4],
                                                          0.1, 0.9, 0.999, 1e-7, 0.0, 1, 0), "element count"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_launcher_rejects_before_launch(name):
    call, fragment = CASES[name]
    with pytest.raises(ValueError, match=fragment.replace("^", r"\^").replace("*", r"\*")):
        call()


def test_direct_kernel_declines_filters_too_large_for_shared_memory():
    # 91x91 filter: its input patch plus filter slice exceed the 48 KB shared-memory tile.
    huge = conv_shape(C=2, K=2, R=91, S=91, H=100, W=100, P=100, Q=100, pad_top=45, pad_bottom=45, pad_left=45,
                      pad_right=45, groups=1)
    assert C.conv2d_direct_supported(conv_shape()) is True
    assert C.conv2d_direct_supported(huge) is False
    with pytest.raises(ValueError, match="im2col"):
        C.conv2d_direct_forward(FAKE, FAKE, FAKE, 0, False, huge, 0)
