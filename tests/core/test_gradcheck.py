"""gradcheck itself: it passes correct gradients and names the first wrong one."""

import numpy as np
import pytest

from nanoml.tensor import apply, tensor
from nanoml.testing import gradcheck


def square_with_backward(wrong_at=None):
    def op(x):
        def backward(g):
            grad = 2 * x.data * g
            if wrong_at is not None:
                grad[wrong_at] += 0.1
            return (grad,)

        return apply(x.data**2, (x,), backward)

    return op


def test_passes_a_correct_backward():
    assert gradcheck(square_with_backward(), [tensor(np.arange(6.0).reshape(2, 3))])


def test_reports_input_index_and_both_values():
    x = tensor(np.arange(6.0).reshape(2, 3))
    with pytest.raises(AssertionError, match=r"inputs\[1\] .* index \(1, 2\): analytic .* numeric"):
        gradcheck(lambda a, b: a + square_with_backward((1, 2))(b), [x, x])


def test_a_missing_gradient_fails_and_constants_are_skipped():
    x = tensor([1.0, 2.0])
    detached = lambda a: apply(a.data * 3, (a,), lambda g: (None,))  # noqa: E731
    with pytest.raises(AssertionError, match="analytic 0"):
        gradcheck(detached, [x])
    assert gradcheck(lambda a, k: a * k, [x, np.array([5.0, 6.0])])


def test_checks_every_output_of_a_tuple_result():
    x = tensor([1.0, 2.0])
    with pytest.raises(AssertionError):
        gradcheck(lambda a: (a * 2, (square_with_backward(0)(a),)), [x])
