"""Knowledge distillation: the loss against NumPy, its gradients, Platt scaling, the
distillation run with four kinds of teacher (a forest, an SVM, a CNN and, from the CLI, a
logistic regression), and bad input as one CLI line."""

import json
import os

import numpy as np
import pytest
import scipy.optimize
from click.testing import CliRunner
from nanoml_classic.logistic import LinearSVM, LogisticRegression
from nanoml_classic.svm import SVC, platt_fit
from nanoml_deep.mlp import MLP

import nanoml
from nanoml import losses
from nanoml.cli import cli
from nanoml.data import load_dataset
from nanoml.distillation import distilling, shifted
from nanoml.errors import DeviceError, InputError, ParameterError
from nanoml.kernels import cpu
from nanoml.tensor import tensor
from nanoml.testing import gradcheck

SMALL_MLP = {"hidden_sizes": (32,), "epochs": 3, "dropout": 0.0}


def log_softmax(a):
    a = a - a.max(axis=1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=1, keepdims=True))


def reference_loss(z, t, labels, T, alpha):
    """The distillation loss written out in NumPy (float64)."""
    hard = -log_softmax(z)[np.arange(len(labels)), labels]
    log_q_t, log_q_s = log_softmax(t / T), log_softmax(z / T)
    q_t = np.exp(log_q_t)
    kl = np.sum(np.where(q_t > 0, q_t * (np.where(q_t > 0, log_q_t, 0) - log_q_s), 0), axis=1)
    return np.mean(alpha * hard + (1 - alpha) * T * T * kl)


def batch(n=9, c=5, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    z, t = scale * rng.standard_normal((2, n, c))
    t[0, 1] = -np.inf  # a classical teacher's zero probability
    return z, t, rng.integers(0, c, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.1), (20.0, 0.0), (2.0, 1.0)])
def test_loss_equals_the_numpy_reference(dtype, T, alpha):
    z, t, labels = batch()
    loss = losses.distillation(tensor(z.astype(dtype), dtype=dtype), labels, t, T, alpha)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss.item(), reference_loss(z, t, labels, T, alpha), rtol=rtol)


def test_loss_and_gradient_equal_pytorch():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    z, t, labels = batch(n=16, c=10)
    t[0, 1] = 0.0  # PyTorch's log-target KL would give NaN for a -inf
    theirs = torch.tensor(z, requires_grad=True)
    soft = functional.kl_div(functional.log_softmax(theirs / 4, dim=1),
                             functional.log_softmax(torch.tensor(t) / 4, dim=1),
                             reduction="batchmean", log_target=True)
    loss = 0.1 * functional.cross_entropy(theirs, torch.from_numpy(labels)) + 0.9 * 16 * soft
    loss.backward()
    ours = tensor(z, dtype=np.float64, requires_grad=True)
    value = losses.distillation(ours, labels, t, 4.0, 0.1)
    value.backward()
    np.testing.assert_allclose(value.item(), loss.item(), rtol=1e-12)
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("T", [1.0, 4.0, 20.0])
def test_gradient_matches_finite_differences(T):
    z, t, labels = batch(scale=1.0)
    gradcheck(lambda a: losses.distillation(a, labels, t, T, 0.3), [tensor(z, dtype=np.float64)])
    gradcheck(lambda a: losses.distillation(a * 2.0, labels, t, T, 0.0) * 3.0,
              [tensor(z, dtype=np.float64)])


def test_soft_gradient_has_the_same_size_at_every_temperature():
    # The T² factor: without it the gradient would shrink as 1/T (by 4x and 20x here).
    z, t, labels = batch(n=64, c=10, scale=0.5)
    t[0, 1] = 0.0
    sizes = []
    for T in (1.0, 4.0, 20.0):
        logits = tensor(z, dtype=np.float64, requires_grad=True)
        losses.distillation(logits, labels, t, T, alpha=0.0).backward()
        sizes.append(np.linalg.norm(logits.grad))
    assert max(sizes) / min(sizes) < 1.25, sizes


def test_bad_loss_input_names_the_problem():
    z, t, labels = batch()
    logits = tensor(z)
    with pytest.raises(ParameterError, match="temperature") as info:
        losses.distillation(logits, labels, t, 0.0)
    assert info.value.argument == "temperature"
    with pytest.raises(ParameterError, match="alpha"):
        losses.distillation(logits, labels, t, 4.0, 1.5)
    with pytest.raises(InputError, match="shape"):
        losses.distillation(logits, labels, t[:, :3])
    with pytest.raises(InputError, match="NaN"):
        losses.distillation(logits, labels, np.where(t > 1, np.nan, t))


def test_cuda_twin_matches_the_cpu_kernel():
    from nanoml.device import require_cuda

    try:
        require_cuda()
    except DeviceError as error:
        pytest.skip(f"{error}; set NUMBA_ENABLE_CUDASIM=1 to simulate one")
    from numba import cuda

    from nanoml.kernels import cuda as gpu

    z, t, labels = batch(n=37)
    grad, out = np.empty_like(z), np.empty(37)
    cpu.distill_forward(z, t, labels, 4.0, 0.1, grad, out)
    d_grad, d_out = cuda.device_array_like(grad), cuda.device_array_like(out)
    gpu.distill_forward(cuda.to_device(z), cuda.to_device(t), cuda.to_device(labels), 4.0, 0.1,
                        d_grad, d_out)
    np.testing.assert_allclose(d_out.copy_to_host(), out, rtol=1e-12)
    np.testing.assert_allclose(d_grad.copy_to_host(), grad, rtol=1e-12, atol=1e-15)


def test_at_alpha_one_the_distilled_student_is_the_student_from_labels():
    # The loss is then the cross-entropy: the extra per-row targets reach batch_loss and
    # change nothing else in the training loop.
    data = load_dataset("digits")
    X, y = data.X_train[:300], data.y_train[:300]
    teacher = np.random.default_rng(0).standard_normal((300, 10)).astype(np.float32)
    plain = MLP(**SMALL_MLP).fit(X, y)
    distilled = distilling(MLP, teacher, 4.0, 1.0)(**SMALL_MLP).fit(X, y)
    for a, b in zip(plain.module_.parameters(), distilled.module_.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-6)
    soft = distilling(MLP, teacher, 4.0, 0.1)(**SMALL_MLP).fit(X, y)
    first = [next(m.module_.parameters()).data for m in (soft, plain)]
    assert not np.allclose(*first)


def test_platt_fit_is_the_maximum_likelihood_sigmoid():
    rng = np.random.default_rng(0)
    f = rng.standard_normal(200) * 2
    positive = rng.random(200) < 1 / (1 + np.exp(-1.5 * f + 0.3))
    n_pos = positive.sum()
    t = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (200 - n_pos + 2))

    def nll(ab):
        z = ab[0] * f + ab[1]
        return np.sum(t * np.logaddexp(0, z) + (1 - t) * np.logaddexp(0, -z))

    direct = scipy.optimize.minimize(nll, [0.0, 0.0], method="BFGS", options={"gtol": 1e-9}).x
    np.testing.assert_allclose(platt_fit(f, positive), direct, rtol=1e-4, atol=1e-5)


def moved(image, dy, dx):
    """`image` (channels, height, width) moved down dy and right dx pixels, 0 where it left."""
    out = np.zeros_like(image)
    height, width = image.shape[1:]
    for i in range(height):
        for j in range(width):
            if 0 <= i - dy < height and 0 <= j - dx < width:
                out[:, i, j] = image[:, i - dy, j - dx]
    return out


def test_shifted_copies_are_the_images_moved_by_at_most_shift_pixels():
    shape = (2, 5, 6)
    X = np.random.default_rng(0).random((60, 60)).astype(np.float32) + 1  # no pixel is 0
    out = shifted(X, shape, 2, np.random.default_rng(1))
    seen = set()
    for row, image in zip(out, X.reshape(-1, *shape), strict=True):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(row.reshape(shape), moved(image, dy, dx))]
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) > 15  # the moves are drawn, not one for all


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_svm_probabilities_are_close_to_libsvm():
    svm = pytest.importorskip("sklearn.svm")
    data = load_dataset("digits")
    X, y, X_test = data.X_train / 16, data.y_train, data.X_test / 16
    ours = SVC().fit(X, y).predict_proba(X_test)
    # LIBSVM fits its sigmoids on 5-fold cross-validated decision values, ours on the
    # training rows': close, not equal.
    theirs = svm.SVC(probability=True, random_state=0).fit(X, y).predict_proba(X_test)
    np.testing.assert_allclose(ours.sum(axis=1), 1.0)
    assert np.abs(ours - theirs).mean() < 0.02
    assert np.mean(ours.argmax(axis=1) == theirs.argmax(axis=1)) > 0.97


@pytest.mark.parametrize("name", ["breast-cancer", "iris"])
def test_linear_svm_probabilities_follow_its_scores(name, tmp_path):
    data = load_dataset(name)
    mean, std = data.X_train.mean(axis=0), data.X_train.std(axis=0)
    X, X_test = (data.X_train - mean) / std, (data.X_test - mean) / std
    model = LinearSVM().fit(X, data.y_train)
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.mean(model.classes_[proba.argmax(axis=1)] == model.predict(X_test)) > 0.95
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(nanoml.load_model(tmp_path / "m.npz").predict_proba(X_test),
                                  proba)


def test_a_forest_teaches_an_mlp_and_the_run_folder_has_everything(tmp_path):
    out = tmp_path / "run"
    result = nanoml.distill("random-forest", "mlp", "digits", params=SMALL_MLP,
                            teacher_params={"n_estimators": 10}, transfer=1, shift=1,
                            out=str(out))
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("teacher", "distilled", "from_labels"):
        assert set(metrics[key]) >= {"accuracy", "parameters", "file_bytes", "rows_per_second"}
    assert metrics["distilled"]["parameters"] == metrics["from_labels"]["parameters"] == \
        64 * 32 + 32 + 32 * 10 + 10
    assert len(metrics["distilled"]["test_accuracy_by_epoch"]) == 3
    assert metrics["distilled"]["accuracy"] > 0.7
    outputs = np.load(out / "teacher_outputs.npy")
    assert outputs.shape == (2 * 1347, 10)  # training rows and their jittered copies
    assert json.loads((out / "config.json").read_text())["shift"] == 1
    assert nanoml.load_model(out / "student.npz").name == "mlp"
    assert sorted(os.listdir(out)) == sorted(result.files)


@pytest.mark.parametrize("teacher, teacher_params", [("svm", {}), ("cnn", {"epochs": 4})])
def test_other_teachers_teach_an_mlp(teacher, teacher_params, tmp_path):
    result = nanoml.distill(teacher, "mlp", "digits", params=SMALL_MLP,
                            teacher_params=teacher_params, out=str(tmp_path))
    assert result.metrics["teacher"]["accuracy"] > 0.85
    assert result.metrics["distilled"]["accuracy"] > 0.6  # three short epochs; chance: 0.1


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def iris_teacher(tmp_path_factory):
    data = load_dataset("iris")
    path = tmp_path_factory.mktemp("teacher") / "iris.npz"
    LogisticRegression().fit(data.X_train, data.y_train).save(path)
    return str(path)


@pytest.mark.parametrize("args, words", [
    (["--teacher", "random-forest", "--student", "random-forest"], "--student must be a deep"),
    (["--teacher", "linear-regression", "--student", "mlp"], "--teacher must be a classifier"),
    (["--teacher", "IRIS", "--student", "mlp", "--dataset", "digits"],
     "--teacher 'logistic-regression' predicts the labels [0, 1, 2] but the dataset has"),
    (["--teacher", "no/such/model.npz", "--student", "mlp"],
     "--teacher 'no/such/model.npz' is neither a model file nor a learner's name"),
    (["--teacher", "random-forest", "--student", "mlp", "--temperature", "0"],
     "--temperature must be in (0, inf]"),
    (["--teacher", "random-forest", "--student", "mlp", "--temperature", "-2"],
     "--temperature must be in (0, inf]"),
    (["--teacher", "random-forest", "--student", "mlp", "--dataset", "breast-cancer",
      "--transfer", "1", "--shift", "1"], "--shift moves images"),
    (["--teacher", "random-forest", "--student", "mlp", "--shift", "1"],
     "--shift moves the transfer set's copies: give transfer > 0 too"),
])
def test_bad_input_is_one_line_and_exit_2(args, words, iris_teacher, tmp_path):
    out = tmp_path / "run"
    args = [iris_teacher if a == "IRIS" else a for a in args]
    result = invoke("distill", *args, "--out", str(out))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.output
    assert not out.exists()


def test_a_logistic_regression_teaches_an_mlp_from_the_cli(tmp_path):
    result = invoke("distill", "--teacher", "logistic-regression", "--student", "mlp",
                    "--set", "hidden_sizes=32", "--set", "dropout=0", "--epochs", "3",
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    # The table's rows, wherever a warning (on stderr, mixed in here) puts them.
    rows = [line.split() for line in result.output.splitlines()
            if line.split()[:1] in (["teacher"], ["distilled"], ["from"])]
    assert [row[0] for row in rows] == ["teacher", "distilled", "from"]
    assert float(rows[0][1]) > 0.9 and float(rows[1][1]) > 0.6
    assert (tmp_path / "accuracy.png").stat().st_size > 0
