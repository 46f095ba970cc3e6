"""The common layer chains as one op each: what `nanoml.nn.Sequential` runs when it meets
Conv2d -> ReLU [-> MaxPool2d], Conv2d -> MaxPool2d [-> ReLU] or Linear -> ReLU.

Values and gradients are those of the unfused chain. What fusing saves:

- the ReLU works in place on the output of the op before it, and its backward is a mask
  applied before that op's backward: no second output array, no extra graph node;
- after a convolution, max pooling and ReLU commute (both are monotone), so the ReLU runs
  on the pooled output, a quarter of the convolution's, in both directions;
- a stride-1, unpadded convolution with few input channels and small kernels followed by
  non-overlapping pooling runs as `conv2d_max_pool_relu`, whose kernels never store the
  convolution at all.
"""

from nanoml.autograd import apply
from nanoml.ops.conv import as_pair, conv2d_parts, direct_route, max_pool2d_parts
from nanoml.ops.conv_pool import conv2d_max_pool_relu
from nanoml.ops.linalg import linear_parts


def _relu_in_place(xp, out, backward):
    """ReLU `out` in place; the closure masks the gradient, then runs `backward`.

    ``out > 0`` after the ReLU exactly where its input was above 0, so the mask is ReLU's
    own gradient (0 at 0 and at NaN).
    """
    xp.relu(out, out=out)
    return lambda g: backward(xp.relu_backward(out, g))


def linear_relu(x, weight, bias=None):
    """``relu(linear(x, weight, bias))``."""
    out, backward, xp = linear_parts(x, weight, bias)
    return apply(out, (x, weight, bias), _relu_in_place(xp, out, backward))


def conv2d_relu(x, weight, bias=None, stride=1, padding=0):
    """``relu(conv2d(x, weight, bias, stride, padding))``."""
    out, backward, xp = conv2d_parts(x, weight, bias, stride, padding)
    return apply(out, (x, weight, bias), _relu_in_place(xp, out, backward))


def conv2d_max_pool(x, weight, bias=None, stride=1, padding=0, pool=2, pool_stride=None,
                    relu=False):
    """``max_pool2d(conv2d(x, weight, bias, stride, padding), pool, pool_stride)``, with a
    ReLU on the result when `relu` (the same as a ReLU between the two)."""
    pool = as_pair(pool, "max_pool2d kernel_size", 1)
    pool_stride = pool if pool_stride is None else as_pair(pool_stride, "max_pool2d stride", 1)
    if (relu and pool_stride == pool and as_pair(padding, "conv2d padding", 0) == (0, 0)
            and direct_route(weight.shape, as_pair(stride, "conv2d stride", 1))):
        return conv2d_max_pool_relu(x, weight, bias, pool)
    conv, conv_backward, xp = conv2d_parts(x, weight, bias, stride, padding)
    # The convolution's output is freed on return: its backward and the pooling's need
    # only its shape.
    pooled, pool_backward = max_pool2d_parts(xp, conv, pool, pool_stride)

    def backward(g):
        return conv_backward(pool_backward(g))

    if relu:
        backward = _relu_in_place(xp, pooled, backward)
    return apply(pooled, (x, weight, bias), backward)
