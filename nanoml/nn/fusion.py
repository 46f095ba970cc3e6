"""How `Sequential` runs its layers: the common chains as one fused op each.

A plain Conv2d followed by ReLU and/or MaxPool2d (in either order), or a plain Linear
followed by ReLU, runs as one op of `nanoml.ops.fused`, with the layers' own parameters:
names, `state_dict` keys and values stay those of the separate layers. A layer is plain when
it is exactly that class and its `forward` is not replaced on the instance; anything else
(a subclass, a patched layer, another activation) runs as written.
"""

from nanoml.nn.activation import ReLU
from nanoml.nn.conv import Conv2d, MaxPool2d
from nanoml.nn.linear import Linear
from nanoml.ops.fused import conv2d_max_pool, conv2d_relu, linear_relu


def _plain(module, cls):
    return type(module) is cls and "forward" not in module.__dict__


def _conv_step(conv, relu=False, pool=None):
    if pool is None:
        return lambda x: conv2d_relu(x, conv.weight, conv.bias, conv.stride, conv.padding)
    return lambda x: conv2d_max_pool(x, conv.weight, conv.bias, conv.stride, conv.padding,
                                     pool.kernel_size, pool.stride, relu)


def _chain(modules, i):
    """(callable, number of layers it covers) for the chain starting at `modules[i]`."""
    first = modules[i]
    after = modules[i + 1:i + 3]
    relu_next = len(after) > 0 and _plain(after[0], ReLU)
    if _plain(first, Linear) and relu_next:
        return (lambda x: linear_relu(x, first.weight, first.bias)), 2
    if _plain(first, Conv2d) and after:
        pool_next = _plain(after[0], MaxPool2d)
        if (relu_next or pool_next) and len(after) == 2:
            second = after[1]
            if relu_next and _plain(second, MaxPool2d):
                return _conv_step(first, True, second), 3
            if pool_next and _plain(second, ReLU):
                return _conv_step(first, True, after[0]), 3
        if relu_next:
            return _conv_step(first, True), 2
        if pool_next:
            return _conv_step(first, False, after[0]), 2
    return first, 1


def fused_steps(modules):
    """The callables that compute `modules` one after another, fusable chains as one."""
    steps = []
    i = 0
    while i < len(modules):
        step, covered = _chain(modules, i)
        steps.append(step)
        i += covered
    return steps
