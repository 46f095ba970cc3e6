"""The MLP: the Learner contract, learning digits, labels of any type, PyTorch agreement."""

import numpy as np
import pytest
from nanoml_deep.mlp import MLP

from nanoml.testing import check_learner


def test_contract():
    check_learner(MLP, params={"hidden_sizes": (8,), "epochs": 2})


def test_learns_digits(digits):
    model = MLP(epochs=5).fit(digits.X_train, digits.y_train)
    assert model.score(digits.X_test, digits.y_test) > 0.93
    proba = model.predict_proba(digits.X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(model.classes_[proba.argmax(axis=1)],
                                  model.predict(digits.X_test))


def test_string_labels_come_back(digits):
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    model = MLP(epochs=5).fit(digits.X_train, list(names[digits.y_train]))
    predicted = model.predict(digits.X_test)
    assert predicted.dtype.kind == "U"
    assert np.mean(predicted == names[digits.y_test]) > 0.9


def test_forward_and_gradients_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5))
    y = rng.integers(0, 3, 40)
    model = MLP(hidden_sizes=(7, 6), dropout=0.0, epochs=1).fit(X, y)
    weights = model.module_.state_dict()
    layers = [torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 6), torch.nn.ReLU(),
              torch.nn.Linear(6, 3)]
    reference = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for name, param in reference.named_parameters():
            index, kind = name.split(".")
            param.copy_(torch.from_numpy(weights[f"{int(index)}.{kind}"]))
    x = model._network_input(X.astype(np.float32))
    from nanoml.losses import cross_entropy
    from nanoml.tensor import Tensor

    model.module_.zero_grad()  # training left the last batch's gradients
    ours = cross_entropy(model.module_(Tensor(x)), y)
    ours.backward()
    theirs = torch.nn.functional.cross_entropy(reference(torch.from_numpy(x)), torch.from_numpy(y))
    theirs.backward()
    assert float(ours.data) == pytest.approx(theirs.item(), rel=1e-5)
    grads = dict(model.module_.named_parameters())
    for name, param in reference.named_parameters():
        index, kind = name.split(".")
        np.testing.assert_allclose(grads[f"{int(index)}.{kind}"].grad, param.grad.numpy(),
                                   rtol=1e-4, atol=1e-6)
