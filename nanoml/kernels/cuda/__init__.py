"""CUDA kernels (``@numba.cuda.jit``), one module per family, gathered here.

Each CPU kernel of `nanoml.kernels.cpu` has a twin here with the same name and arguments: a
host-side function that picks the launch grid and starts the raw ``*_kernel`` beside it, so
``cuda.adam_update(...)`` is called exactly like ``cpu.adam_update(...)``. Arrays are numba
device arrays (or host arrays, which numba copies over and back at every launch). Launches
are asynchronous on the default stream: results are ready once the host reads them back
or calls ``numba.cuda.synchronize()``.

Beyond the twins, the primitives a device-resident core needs: broadcasting elementwise
arithmetic and activations, reductions along the last axis and softmax, a tiled GEMM, and
the strided copies, sums over axes and row gathers behind `nanoml.backend.cuda`.
"""

from nanoml.kernels.cuda.arrays import (  # noqa: F401
    fill,
    strided_add,
    strided_copy,
    sum_to,
    take_rows,
)
from nanoml.kernels.cuda.conv import (  # noqa: F401
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
from nanoml.kernels.cuda.elementwise import (  # noqa: F401
    absolute,
    add,
    binary_cross_entropy,
    binary_cross_entropy_backward,
    copy,
    div,
    equal,
    exp,
    leaky_relu,
    leaky_relu_slope,
    log,
    maximum,
    minimum,
    mul,
    relu,
    relu_backward,
    sigmoid,
    sigmoid_backward,
    sign,
    sqrt,
    sub,
    tanh,
    tanh_backward,
)
from nanoml.kernels.cuda.losses import (  # noqa: F401
    distill_forward,
    softmax_xent_backward,
    softmax_xent_forward,
)
from nanoml.kernels.cuda.matmul import matmul, matmul_nt, matmul_tn  # noqa: F401
from nanoml.kernels.cuda.optim import adam_update, rmsprop_update, sgd_update  # noqa: F401
from nanoml.kernels.cuda.recurrent import (  # noqa: F401
    gru_backward,
    gru_forward,
    lstm_backward,
    lstm_forward,
    rnn_backward,
    rnn_forward,
)
from nanoml.kernels.cuda.reduce import col_sum, row_max, row_sum, softmax  # noqa: F401
