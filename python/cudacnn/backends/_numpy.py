"""The ``numpy`` backend: the readable, xp-generic reference implementation.

Every function takes its array module from its arguments
(``cudacnn.backend.get_array_module``), so the ``cupy`` backend runs this same
code on GPU arrays. Arguments arrive validated and normalised by
``cudacnn.ops`` (see ``cudacnn.backends`` for the contract). The code lives in
small modules by family; this one re-exports them.
"""
from . import BACKEND_FUNCTIONS
from ._numpy_activation import (elu, elu_backward, leaky_relu, leaky_relu_backward, relu,
                                relu_backward, sigmoid, sigmoid_backward, softmax,
                                softmax_backward, tanh, tanh_backward)
from ._numpy_conv import conv2d, conv2d_backward
from ._numpy_dropout import dropout, dropout_backward
from ._numpy_linear import linear, linear_backward
from ._numpy_loss import softmax_cross_entropy, softmax_cross_entropy_backward
from ._numpy_norm import batch_norm, batch_norm_backward
from ._numpy_optim import adam_update, rmsprop_update, sgd_update
from ._numpy_pool import (avg_pool2d, avg_pool2d_backward, global_avg_pool2d,
                          global_avg_pool2d_backward, max_pool2d, max_pool2d_backward)

__all__ = list(BACKEND_FUNCTIONS)
