"""CPU kernels (``@numba.njit(cache=True)``), one module per family, gathered here.

The CUDA twins in `nanoml.kernels.cuda` have the same names and arguments.
"""

from nanoml.kernels.cpu.conv import (  # noqa: F401
    avg_pool2d_backward,
    avg_pool2d_forward,
    col2im,
    conv2d_backward_input_gemm,
    conv2d_backward_weight_direct,
    conv2d_backward_weight_gemm,
    conv2d_forward_direct,
    conv2d_forward_gemm,
    conv2d_max_pool_relu_backward_input,
    conv2d_max_pool_relu_backward_weight,
    conv2d_max_pool_relu_forward,
    im2col,
    max_pool2d_backward,
    max_pool2d_forward,
    pad2d,
)
from nanoml.kernels.cpu.elementwise import relu, relu_backward  # noqa: F401
from nanoml.kernels.cpu.losses import (  # noqa: F401
    distill_forward,
    softmax_xent_backward,
    softmax_xent_forward,
)
from nanoml.kernels.cpu.matmul import matmul, matmul_nt, matmul_tn  # noqa: F401
from nanoml.kernels.cpu.optim import adam_update, rmsprop_update, sgd_update  # noqa: F401
from nanoml.kernels.cpu.recurrent import (  # noqa: F401
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    rnn_backward,
    rnn_forward,
)
