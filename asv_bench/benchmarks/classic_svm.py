"""The RBF kernel SVM on Fashion-MNIST (784 features, pixels in [0, 1], gamma="scale"),
nanoml beside scikit-learn's SVC, both allowed 1 and then 2 threads (numba's and BLAS's
for nanoml, BLAS's for scikit-learn, whose LIBSVM solver runs on one).

Runs only where the files are already on disk (Debian's ``dataset-fashion-mnist``, or
``nanoml run cnn --dataset fashion-mnist`` fetched them): a benchmark does not download.
The pixels go to both as nanoml's loader gives them, float32: nanoml's solver then
computes its kernel rows in single precision, scikit-learn's in double. The accuracies are
on the 10,000 test images; nanoml breaks voting ties by confidence (scikit-learn's
``break_ties=True``), so the two can differ by a few images.
"""


from .peers import _fashion_mnist, _numba_threads, _sklearn, _ThreadedPair


def _fashion(rows):
    """The first `rows` training images and the test set; NotImplementedError skips."""
    data = _fashion_mnist()
    return data.X_train[:rows], data.y_train[:rows], data


class SVMFashion(_ThreadedPair):
    params = [[5_000, 20_000], [1, 2]]
    param_names = ["rows", "threads"]
    timeout = 1800
    rounds = 1
    repeat = (1, 3, 60.0)  # the 20k fits once each
    number = 1
    warmup_time = 0

    def setup(self, rows, threads):
        from nanoml_classic.svm import SVC

        self.X, self.y, _ = _fashion(rows)
        self.ours = SVC()
        self.theirs = _sklearn("svm").SVC()
        self.ours.fit(self.X[:200], self.y[:200])  # compile (or load) the kernels untimed
        self.numba_threads = _numba_threads(threads)


class SVMFashionAccuracy:
    """Test accuracy on the 10,000 test images of the models SVMFashion times."""

    params = [[5_000, 20_000]]
    param_names = ["rows"]
    timeout = 1800

    def setup(self, rows):
        from nanoml_classic.svm import SVC

        self.X, self.y, self.data = _fashion(rows)
        self.ours = SVC()
        self.theirs = _sklearn("svm").SVC()

    def track_accuracy_nanoml(self, rows):
        return self.ours.fit(self.X, self.y).score(self.data.X_test, self.data.y_test)

    def track_accuracy_sklearn(self, rows):
        return self.theirs.fit(self.X, self.y).score(self.data.X_test, self.data.y_test)

    track_accuracy_nanoml.unit = track_accuracy_sklearn.unit = "test accuracy"
