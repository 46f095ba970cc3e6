"""The peers nanoml is measured against, imported so that a missing one skips the benchmark.

Names start with an underscore so that asv does not collect them again in every module
that imports them.
"""

import importlib


def _torch():
    """PyTorch on 2 threads, like nanoml on this machine; NotImplementedError skips."""
    try:
        import torch
    except ImportError:
        raise NotImplementedError("torch is not installed") from None
    torch.set_num_threads(2)
    return torch


def _torch_train(torch, model, X, y, batch_size, epochs=1, seed=0):
    """Shuffled passes of Adam (lr 1e-3) on cross-entropy, as the nanoml learners train."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    shuffle = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(X.shape[0], generator=shuffle)
        for start in range(0, X.shape[0], batch_size):
            batch = order[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(model(X[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def _sklearn(module):
    """A scikit-learn module, e.g. _sklearn("linear_model"); NotImplementedError skips."""
    try:
        return importlib.import_module(f"sklearn.{module}")
    except ImportError:
        raise NotImplementedError("scikit-learn is not installed") from None


def _fashion_mnist():
    """nanoml's Fashion-MNIST (784 pixels in [0, 1], float32) where the files are already on
    disk (Debian's ``dataset-fashion-mnist``, or nanoml's cache); a benchmark never
    downloads, so NotImplementedError skips it otherwise."""
    from nanoml.data import load_dataset
    from nanoml.data.mnist import local_files

    if local_files("fashion-mnist") is None:
        raise NotImplementedError("Fashion-MNIST is not on disk")
    return load_dataset("fashion-mnist")


def _numba_threads(threads):
    """Give numba `threads` threads; returns the count to restore. NotImplementedError skips
    where numba has fewer."""
    import numba

    if threads > numba.config.NUMBA_NUM_THREADS:
        raise NotImplementedError(f"numba has fewer than {threads} threads here")
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    return before


class _ThreadedPair:
    """Both libraries held to `threads`, the last parameter: BLAS's and OpenMP's by
    threadpoolctl while timing, numba's from setup (which sets ``self.numba_threads =
    _numba_threads(threads)``) to teardown. Each timing runs `_work(model)` once: a fit
    on (self.X, self.y) unless a subclass says otherwise."""

    def teardown(self, *params):
        import numba

        numba.set_num_threads(self.numba_threads)

    def _work(self, model):
        model.fit(self.X, self.y)

    def time_nanoml(self, *params):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(params[-1]):
            self._work(self.ours)

    def time_sklearn(self, *params):
        from threadpoolctl import threadpool_limits

        with threadpool_limits(params[-1]):
            self._work(self.theirs)


class _FitPair:
    """setup builds seeded data, `self.ours` and `self.theirs`; the timings fit each once."""

    param_names = ["rows"]

    def time_nanoml(self, rows):
        self.ours.fit(self.X, self.y)

    def time_sklearn(self, rows):
        self.theirs.fit(self.X, self.y)

    def _warm(self):
        self.ours.fit(self.X[:200], self.y[:200])  # compile (or load) the kernels untimed
