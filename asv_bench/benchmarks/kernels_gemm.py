"""The GEMM under every dense, convolution and recurrent kernel, one thread, nanoml vs torch.

Shapes: an 8-row tile's product held in L1 (the micro-kernel alone), an LSTM step's
recurrent product (8 x 256 by 256 x 1024, the weight in L2) and its backward (8 x 1024 by
1024 x 256), and a square 512 product. torch runs MKL's sgemm; `track_gflops` gives the
rate of nanoml's product, to compare with the core's peak.
"""

import time

import numpy as np

from .peers import _torch

SHAPES = {"tile-8x256x32": (8, 256, 32), "lstm-step-8x256x1024": (8, 256, 1024),
          "lstm-back-8x1024x256": (8, 1024, 256), "square-512": (512, 512, 512)}
REPEATS = 50  # products per timed call: a single tile product is about a microsecond


class GemmOneThread:
    params = [list(SHAPES)]
    param_names = ["shape"]

    def setup(self, shape):
        import numba

        from nanoml.kernels.cpu.gemm import matmul

        torch = _torch()
        torch.set_num_threads(1)
        self._threads = numba.get_num_threads()
        numba.set_num_threads(1)
        M, K, N = SHAPES[shape]
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((M, K)).astype(np.float32)
        self.b = rng.standard_normal((K, N)).astype(np.float32)
        self.c = np.empty((M, N), np.float32)
        self.ta, self.tb = torch.from_numpy(self.a), torch.from_numpy(self.b)
        self.tc = torch.empty(M, N)
        self.torch = torch

        @numba.njit
        def repeated(a, b, c, n):
            for _ in range(n):
                matmul(a, b, c)

        self.repeated = repeated
        self.time_nanoml(shape)  # compile untimed

    def teardown(self, shape):
        import numba

        numba.set_num_threads(self._threads)

    def time_nanoml(self, shape):
        self.repeated(self.a, self.b, self.c, REPEATS)

    def time_torch(self, shape):
        for _ in range(REPEATS):
            self.torch.mm(self.ta, self.tb, out=self.tc)

    def track_gflops(self, shape):
        M, K, N = SHAPES[shape]
        best = min(_seconds(lambda: self.time_nanoml(shape)) for _ in range(7))
        return 2 * M * K * N * REPEATS / best / 1e9

    track_gflops.unit = "GFLOP/s"


def _seconds(call):
    started = time.perf_counter()
    call()
    return time.perf_counter() - started
