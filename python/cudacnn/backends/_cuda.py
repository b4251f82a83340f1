"""The ``cuda`` backend: our kernels (``cudacnn._C``) on CuPy arrays.

Thin wrappers over the extension, one module per family: each makes its
inputs C-contiguous float32, allocates outputs and workspaces with CuPy
(``_cuda_common.empty``) and launches on CuPy's current stream. Anything the
kernels do not cover (another dtype, a tensor beyond 32-bit indexing, a
geometry no conv kernel fits) runs on the ``cupy`` backend instead, with a
debug line on the ``cudacnn.cuda`` logger.
"""
from . import BACKEND_FUNCTIONS
from ._cuda_conv import conv2d, conv2d_backward
from ._cuda_dense import linear, linear_backward
from ._cuda_elementwise import (adam_update, dropout, dropout_backward, elu, elu_backward, leaky_relu,
                                leaky_relu_backward, relu, relu_backward, rmsprop_update, sgd_update, sigmoid,
                                sigmoid_backward, tanh, tanh_backward)
from ._cuda_loss import softmax, softmax_backward, softmax_cross_entropy, softmax_cross_entropy_backward
from ._cuda_norm import batch_norm, batch_norm_backward
from ._cuda_pool import (avg_pool2d, avg_pool2d_backward, global_avg_pool2d, global_avg_pool2d_backward,
                         max_pool2d, max_pool2d_backward)

__all__ = list(BACKEND_FUNCTIONS)
