"""Convolution and pooling kernels over NCHW arrays (weights OIHW), forward and backward.

Two convolution routes; the op picks one by shape (see `nanoml.ops.conv`):

* direct, for stride 1, few input channels and small kernels (a first 3x3 layer on grey or
  RGB images): no im2col copy. Each output plane is computed at the input's row pitch, so
  that every kernel tap is one long contiguous multiply-add over the whole plane (the
  columns past the output width are junk and dropped when the plane is stored); 3x3 kernels
  are unrolled so that all nine taps go in one pass. Padding is a zero-padded copy of the
  input made first (`pad2d`); the input gradient is the same kernel run on the padded
  output gradient with flipped, transposed weights.
* im2col + GEMM for everything else: `im2col` / `col2im`, and Linear's threaded `matmul`
  (`nanoml.kernels.cpu.matmul`, over `nanoml.kernels.cpu.gemm`'s register-tiled product).

Pooling has no padding. Its windows are unrolled at compile time for the common sizes
(2x2 stride 2, 3x3 stride 2, 3x3 stride 1): with the window a straight line of code LLVM
vectorises the loop over output columns, about 5x faster than the generic loops that serve
other sizes through the same code.

Shapes: input (N, C, H, W), weight (M, C, KH, KW), bias (M,), output (N, M, OH, OW).
All arrays are C-contiguous and of one float dtype (float32 or float64); max-pool indices are
int32 offsets into each (H, W) input plane. The caller allocates the outputs and the large
scratch; a kernel allocates its own small per-thread buffers.

Policy for every kernel: ``cache=True``; ``parallel=True`` with ``prange`` over batch, planes
or output channels (each iteration writes its own slice, so no races); ``fastmath`` at most
``{"contract", "reassoc"}``: fused multiply-add and, in the weight-gradient sums only,
reassociation so that dot products vectorise. Neither flag lets LLVM assume the absence of
NaN or inf, so those still propagate as in PyTorch.
"""

import numba
import numpy as np
from numba import prange

from nanoml.kernels.cpu import gemm
from nanoml.kernels.cpu.buffers import copy, zeros


@numba.njit(cache=True, parallel=True)
def pad2d(x, pad_h, pad_w, out):
    """``out[n, c, i, j] = x[n, c, i - pad_h, j - pad_w]`` where that exists, 0 elsewhere.

    `out` may be of any height and width, so a negative pad crops.
    """
    N, C, H, W = x.shape
    OH, OW = out.shape[2], out.shape[3]
    j0 = max(0, pad_w)
    j1 = min(OW, W + pad_w)
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        for i in range(OH):
            dst = out[n, c, i]
            ih = i - pad_h
            if ih < 0 or ih >= H or j1 <= j0:
                dst[:] = 0
                continue
            dst[:j0] = 0
            copy(dst[j0:j1], x[n, c, ih, j0 - pad_w : j1 - pad_w])
            dst[j1:] = 0


@numba.njit(cache=True, fastmath={"contract"})
def _add_taps(xf, a, wv, Wp, KH, KW):
    """``a[p] += sum(wv[kh, kw] * xf[p + kh * Wp + kw])`` for every p of `a`.

    The indices are unsigned so that LLVM knows they are not negative (no wrap-around
    select) and vectorises the loop over p. Called with literal KH and KW the taps unroll
    and each ``a[p]`` is loaded and stored once for all of them.
    """
    uWp = np.uint64(Wp)
    for p in range(a.shape[0]):
        s = a[p]
        up = np.uint64(p)
        for kh in range(KH):
            for kw in range(KW):
                s += wv[kh, kw] * xf[up + np.uint64(kh) * uWp + np.uint64(kw)]
        a[p] = s


@numba.njit(cache=True, fastmath={"contract"})
def _conv_plane(xn, w, b, o, a):
    """``a`` = output channel `o` of the stride-1 convolution of one sample `xn` (C, Hp, Wp),
    at the input's row pitch: ``a[oh * Wp + ow]`` (the first ``a.shape[0]`` positions)."""
    C, KH, KW = w.shape[1], w.shape[2], w.shape[3]
    Wp = xn.shape[2]
    a[:] = b[o]
    for c in range(C):
        xf = xn[c].ravel()
        wv = w[o, c]
        if KH == 3 and KW == 3:
            _add_taps(xf, a, wv, Wp, 3, 3)
        else:  # one vectorised pass per tap
            for kh in range(KH):
                for kw in range(KW):
                    tap = kh * Wp + kw
                    _add_taps(xf[tap:], a, wv[kh:, kw:], Wp, 1, 1)


@numba.njit(cache=True, parallel=True, fastmath={"contract"})
def conv2d_forward_direct(xp, w, b, out, acc):
    """Stride-1 convolution of an already padded input `xp`: ``out = conv(xp, w) + b``.

    `acc` is (N, (OH - 1) * Wp + OW) scratch: one output plane at the input's row pitch Wp.
    """
    N, Wp = xp.shape[0], xp.shape[3]
    M = w.shape[0]
    OH, OW = out.shape[2], out.shape[3]
    L = (OH - 1) * Wp + OW
    for n in prange(N):
        a = acc[n, :L]
        for o in range(M):
            _conv_plane(xp[n], w, b, o, a)
            for oh in range(OH):
                copy(out[n, o, oh], a[oh * Wp : oh * Wp + OW])


@numba.njit(cache=True, parallel=True, fastmath={"contract", "reassoc"})
def conv2d_backward_weight_direct(xp, grad_out, grad_w, grad_b, gfull):
    """Weight and bias gradients of `conv2d_forward_direct` (overwritten, not accumulated).

    `gfull` is (M, (OH - 1) * Wp + OW) scratch: one output-gradient plane at the input's
    row pitch with zeros in the junk columns, so each tap's gradient is one dot product.
    """
    N, C, Hp, Wp = xp.shape
    M, _, KH, KW = grad_w.shape
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    L = (OH - 1) * Wp + OW
    for o in prange(M):
        gf = gfull[o]
        gf[:] = 0
        zero = grad_w.dtype.type(0)
        grad_w[o] = zero
        bias_sum = zero
        for n in range(N):
            for oh in range(OH):
                copy(gf[oh * Wp : oh * Wp + OW], grad_out[n, o, oh])
            s = zero
            for p in range(L):
                s += gf[p]
            bias_sum += s
            for c in range(C):
                xf = xp[n, c].ravel()
                for kh in range(KH):
                    for kw in range(KW):
                        xs = xf[kh * Wp + kw : kh * Wp + kw + L]
                        s = zero
                        for p in range(L):
                            s += gf[p] * xs[p]
                        grad_w[o, c, kh, kw] += s
        grad_b[o] = bias_sum


@numba.njit(cache=True)
def _valid_columns(W, kw, stride_w, pad_w, OW):
    """Output columns [lo, hi) whose input column ``ow * stride_w + kw - pad_w`` is in the image."""
    lo = min(OW, max(0, (pad_w - kw + stride_w - 1) // stride_w))
    hi = max(lo, min(OW, (W - 1 + pad_w - kw) // stride_w + 1))
    return lo, hi


# im2col and col2im index with unsigned integers: then LLVM knows no index is negative (no
# wrap-around select) and vectorises their short row copies, 3-5x faster than views.


@numba.njit(cache=True)
def _unfold_plane(xf, c, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, OH, OW, cols, first):
    """The rows of input channel `c` (flat plane `xf`) in `cols`: row ``(c * KH + kh) * KW +
    kw``, columns first..first+OH*OW, holds tap (kh, kw) at every output position."""
    step = np.uint64(stride_w)
    for kh in range(KH):
        for kw in range(KW):
            row = cols[(c * KH + kh) * KW + kw]
            lo, hi = _valid_columns(W, kw, stride_w, pad_w, OW)
            for oh in range(OH):
                base = np.uint64(first + oh * OW)
                ih = oh * stride_h - pad_h + kh
                if ih < 0 or ih >= H:
                    for j in range(OW):
                        row[base + np.uint64(j)] = 0
                    continue
                for j in range(lo):
                    row[base + np.uint64(j)] = 0
                src = np.uint64(ih * W + lo * stride_w + kw - pad_w)
                dst = base + np.uint64(lo)
                for j in range(hi - lo):
                    row[dst + np.uint64(j)] = xf[src + np.uint64(j) * step]
                for j in range(hi, OW):
                    row[base + np.uint64(j)] = 0


@numba.njit(cache=True)
def _fold_plane(cols, first, c, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, OH, OW, gx):
    """The adjoint of `_unfold_plane`: `gx` (channel c's flat plane) = the sum of each
    column entry on its input pixel."""
    step = np.uint64(stride_w)
    gx[:] = 0
    for kh in range(KH):
        for kw in range(KW):
            row = cols[(c * KH + kh) * KW + kw]
            lo, hi = _valid_columns(W, kw, stride_w, pad_w, OW)
            for oh in range(OH):
                ih = oh * stride_h - pad_h + kh
                if ih < 0 or ih >= H:
                    continue
                src = np.uint64(first + oh * OW + lo)
                dst = np.uint64(ih * W + lo * stride_w + kw - pad_w)
                for j in range(hi - lo):
                    gx[dst + np.uint64(j) * step] += row[src + np.uint64(j)]


@numba.njit(cache=True, parallel=True)
def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, cols):
    """Unfold every input patch into a column: `cols` is (C*KH*KW, N*OH*OW).

    Row ``(c * KH + kh) * KW + kw`` holds that tap for every output position of every
    sample, so ``w.reshape(M, -1) @ cols`` is the whole batch's convolution in one GEMM
    (as (M, N, OH, OW)).
    """
    N, C, H, W = x.shape
    OH = (H + 2 * pad_h - KH) // stride_h + 1
    OW = (W + 2 * pad_w - KW) // stride_w + 1
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        _unfold_plane(x[n, c].ravel(), c, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w,
                      OH, OW, cols, n * OH * OW)


@numba.njit(cache=True, parallel=True)
def col2im(cols, KH, KW, stride_h, stride_w, pad_h, pad_w, grad_x):
    """The adjoint of `im2col`: sum each column entry back onto its input pixel."""
    N, C, H, W = grad_x.shape
    OH = (H + 2 * pad_h - KH) // stride_h + 1
    OW = (W + 2 * pad_w - KW) // stride_w + 1
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        _fold_plane(cols, n * OH * OW, c, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w,
                    OH, OW, grad_x[n, c].ravel())


# The im2col route one sample at a time. Unfolding the whole batch first (`im2col`, then one
# GEMM) streams a (C*KH*KW, N*OH*OW) matrix through memory three times (written, read by the
# GEMM, kept for the weight gradient), and the (M, N*OH*OW) product must then be reordered
# to NCHW. Here each thread unfolds one sample at a time into columns that stay in L2, and
# its GEMM writes the sample's (M, OH*OW) output planes in place: NCHW directly. The weight
# gradient unfolds each sample again (cheaper than keeping the batch's columns, and the
# memory is never held). Samples go in `_CHUNKS` chunks, each with its own scratch.
_CHUNKS = 16


@numba.njit(cache=True)
def _chunk(N, t):
    """Samples [lo, hi) of chunk t of N samples split into `_CHUNKS` near-equal chunks."""
    per = (N + _CHUNKS - 1) // _CHUNKS
    return min(N, t * per), min(N, t * per + per)


@numba.njit(cache=True)
def _unfold_sample(xn, KH, KW, stride_h, stride_w, pad_h, pad_w, OH, OW, cols):
    """`cols` (C*KH*KW, OH*OW) = the patches of one sample `xn` (C, H, W)."""
    C, H, W = xn.shape
    for c in range(C):
        _unfold_plane(xn[c].ravel(), c, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, OH,
                      OW, cols, 0)


@numba.njit(cache=True, parallel=True)
def conv2d_forward_gemm(x, w2, b, KH, KW, stride_h, stride_w, pad_h, pad_w, out):
    """``out = conv(x, w) + b`` with `w2` the weight as (M, C*KH*KW); any stride and zero
    padding. `out` is (N, M, OH, OW)."""
    N = x.shape[0]
    M, K = w2.shape
    OH, OW = out.shape[2], out.shape[3]
    P = OH * OW
    for t in prange(_CHUNKS):
        lo, hi = _chunk(N, t)
        cols = np.empty((K, P), x.dtype)
        for n in range(lo, hi):
            _unfold_sample(x[n], KH, KW, stride_h, stride_w, pad_h, pad_w, OH, OW, cols)
            planes = out[n].reshape(M, P)
            gemm.matmul(w2, cols, planes)
            for m in range(M):
                planes[m] += b[m]


@numba.njit(cache=True, parallel=True)
def conv2d_backward_input_gemm(grad_out, w2t, KH, KW, stride_h, stride_w, pad_h, pad_w,
                               grad_x):
    """Input gradient of `conv2d_forward_gemm` (overwritten); `w2t` is the weight as
    (C*KH*KW, M), C-contiguous."""
    N, C, H, W = grad_x.shape
    K, M = w2t.shape
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    P = OH * OW
    for t in prange(_CHUNKS):
        lo, hi = _chunk(N, t)
        gcols = np.empty((K, P), grad_x.dtype)
        for n in range(lo, hi):
            gemm.matmul(w2t, grad_out[n].reshape(M, P), gcols)
            for c in range(C):
                _fold_plane(gcols, 0, c, H, W, KH, KW, stride_h, stride_w, pad_h, pad_w, OH,
                            OW, grad_x[n, c].ravel())


@numba.njit(cache=True, parallel=True)
def conv2d_backward_weight_gemm(x, grad_out, KH, KW, stride_h, stride_w, pad_h, pad_w,
                                grad_w2t, grad_b):
    """Weight gradient, as (C*KH*KW, M), and bias gradient of `conv2d_forward_gemm`
    (overwritten): each chunk sums ``columns @ grad.T`` over its samples, then the chunks'
    sums are added."""
    N = x.shape[0]
    K, M = grad_w2t.shape
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    P = OH * OW
    parts = np.zeros((_CHUNKS, K, M), grad_w2t.dtype)
    bias_parts = np.zeros((_CHUNKS, M), grad_w2t.dtype)
    for t in prange(_CHUNKS):
        lo, hi = _chunk(N, t)
        cols = np.empty((K, P), x.dtype)
        g_t = np.empty((P, M), x.dtype)
        for n in range(lo, hi):
            _unfold_sample(x[n], KH, KW, stride_h, stride_w, pad_h, pad_w, OH, OW, cols)
            g = grad_out[n].reshape(M, P)
            for m in range(M):
                s = g.dtype.type(0)
                for p in range(P):
                    g_t[p, m] = g[m, p]
                    s += g[m, p]
                bias_parts[t, m] += s
            gemm.matmul_accumulate(cols, g_t, parts[t])
    grad_w2t[:] = 0
    grad_b[:] = 0
    for t in range(_CHUNKS):
        grad_w2t += parts[t]
        grad_b += bias_parts[t]


@numba.njit(cache=True)
def _max_pool_plane(xp, out, idx, KH, KW, SH, SW):
    """Max of every KHxKW window of one plane, with the flat index of the first maximum.

    Ties go to the first element in row-major window order and NaN wins, as in PyTorch.
    """
    OH, OW = out.shape
    W = xp.shape[1]
    for oh in range(OH):
        h0 = oh * SH
        for ow in range(OW):
            w0 = ow * SW
            best = xp[h0, w0]
            where = h0 * W + w0
            for kh in range(KH):
                for kw in range(KW):
                    v = xp[h0 + kh, w0 + kw]
                    take = (v > best) | (v != v)
                    best = v if take else best
                    where = (h0 + kh) * W + w0 + kw if take else where
            out[oh, ow] = best
            idx[oh, ow] = where


@numba.njit(cache=True, parallel=True)
def max_pool2d_forward(x, KH, KW, SH, SW, out, idx):
    """Max pooling without padding; `idx` (int32, shaped like `out`) records the argmax."""
    N, C = x.shape[0], x.shape[1]
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        # Literal sizes let LLVM unroll the window and vectorise across output columns.
        if KH == 2 and KW == 2 and SW == 2:
            _max_pool_plane(x[n, c], out[n, c], idx[n, c], 2, 2, SH, 2)
        elif KH == 3 and KW == 3 and SW == 2:
            _max_pool_plane(x[n, c], out[n, c], idx[n, c], 3, 3, SH, 2)
        elif KH == 3 and KW == 3 and SW == 1:
            _max_pool_plane(x[n, c], out[n, c], idx[n, c], 3, 3, SH, 1)
        else:
            _max_pool_plane(x[n, c], out[n, c], idx[n, c], KH, KW, SH, SW)


@numba.njit(cache=True, parallel=True)
def max_pool2d_backward(grad_out, idx, grad_x):
    """Route each output gradient to its window's argmax (summing where windows overlap)."""
    N, C = grad_x.shape[0], grad_x.shape[1]
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        gx = grad_x[n, c].ravel()
        gx[:] = 0
        g = grad_out[n, c].ravel()
        where = idx[n, c].ravel()
        for p in range(g.size):
            gx[where[p]] += g[p]


@numba.njit(cache=True)
def _avg_pool_plane(xp, out, KH, KW, SH, SW):
    """Mean of every KHxKW window of one plane."""
    OH, OW = out.shape
    scale = xp.dtype.type(1.0 / (KH * KW))
    for oh in range(OH):
        h0 = oh * SH
        for ow in range(OW):
            w0 = ow * SW
            s = xp.dtype.type(0)
            for kh in range(KH):
                for kw in range(KW):
                    s += xp[h0 + kh, w0 + kw]
            out[oh, ow] = s * scale


@numba.njit(cache=True, parallel=True)
def avg_pool2d_forward(x, KH, KW, SH, SW, out):
    """Average pooling without padding."""
    N, C = x.shape[0], x.shape[1]
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        # Literal sizes, as in max_pool2d_forward.
        if KH == 2 and KW == 2 and SW == 2:
            _avg_pool_plane(x[n, c], out[n, c], 2, 2, SH, 2)
        elif KH == 3 and KW == 3 and SW == 2:
            _avg_pool_plane(x[n, c], out[n, c], 3, 3, SH, 2)
        elif KH == 3 and KW == 3 and SW == 1:
            _avg_pool_plane(x[n, c], out[n, c], 3, 3, SH, 1)
        else:
            _avg_pool_plane(x[n, c], out[n, c], KH, KW, SH, SW)


@numba.njit(cache=True, parallel=True)
def avg_pool2d_backward(grad_out, KH, KW, SH, SW, grad_x):
    """Spread each output gradient evenly over its window (summing where windows overlap)."""
    N, C = grad_x.shape[0], grad_x.shape[1]
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    scale = grad_x.dtype.type(1.0 / (KH * KW))
    for plane in prange(N * C):
        n = plane // C
        c = plane - n * C
        gx = grad_x[n, c]
        gx[:] = 0
        g = grad_out[n, c]
        for oh in range(OH):
            for kh in range(KH):
                dst = gx[oh * SH + kh]
                for ow in range(OW):
                    v = g[oh, ow] * scale
                    for kw in range(KW):
                        dst[ow * SW + kw] += v


# The fused convolution + max pooling + ReLU (stride-1 convolution without padding, pooling
# windows of (PH, PW) at stride (PH, PW), conv rows and columns past the last whole window
# dropped). `idx` (int32, shaped like the pooled output) holds, for each pooled output, the
# flat offset ``r * W + s`` in the input plane of the conv output (r, s) that won the window,
# i.e. of the top-left pixel of its receptive field; ties and NaN as in max pooling. Only
# pooled outputs above zero pass gradient (the ReLU's, as `nanoml.ops.relu`), and only
# through that one conv output: a quarter of the conv outputs, at most, carry gradient.
#
# Measured at the tutorial's shape (batch 32, 1 -> 32 channels, 3x3 on 28x28, 2x2 pool) with
# 2 threads: forward 0.10-0.11 ms (one input channel, 3x3, 2x2 pool: vectorised over output
# channels, `_pool_relu_row`) vs 0.18-0.19 ms for the plane-by-plane general route and 0.21 ms
# for conv2d_forward_direct + max_pool2d_forward; about 45 us of the 0.10 ms is the transposed
# store and 20-25 us would be writing the 1.4 MB of out and idx at all. The
# channel-vectorised route is slower than the plane route with C = 3 (not vectorised: 2.4 ms).
# Weight gradient 0.09-0.10 ms (one input channel, 3x3, 2x2 pool: `_weight_taps_pool_3x3`,
# vectorised over the pooled outputs) vs 0.21 ms for the general route's per-output gather
# and 0.28 ms for max_pool2d_backward + conv2d_backward_weight_direct.
#
# Forward alternatives no faster than the channel-vectorised route (0.11 ms): the conv split
# into the four pooling phases over 8 deinterleaved, column-shifted input planes at the
# output's pitch, so that one vectorised pass per output plane writes it directly (its
# 9-long multiply-add chains are latency-bound like these); two channels or two halves of a
# plane per pass were not vectorised (0.16-0.7 ms).
# Vectorised over pooled outputs instead, from the weight gradient's 16 patch planes, with the
# nine products summed as a tree: 0.09 against 0.12 ms in one run, kept out as a second code
# path for a fifth of the forward that would no longer round as the general route does.
# Slower alternatives tried for the plane route: the pool row pair
# by row pair with the window unrolled, or one thread per (sample, channel) plane (no
# faster); the max of horizontal pairs over the whole plane first, then of the two rows
# (0.27 ms); the conv split into the four pooling phases over a deinterleaved input so the
# pool is elementwise (0.41 ms). For the general weight gradient, one pass over the pooled
# outputs with the nine taps in registers (LLVM gathers the inputs) beat: gathering the live
# outputs into a list first, then a dot product per tap (0.40-0.45 ms); scattering them
# into a zeroed plane for dense per-tap dot products (0.46 ms); accumulating into `grad_w`
# in memory (1.7 ms). The fast route's alternatives: vectorised over output channels with the
# 4x4 patch broadcast (0.14 ms, 0.08 of it transposing the gradient and argmax planes to
# channel-last); its patches built for the whole batch first, then a thread per channel
# (0.15 ms: each channel streams the batch's 360 KB of patches from L2).


@numba.njit(cache=True)
def _pool_relu_plane(a, W, out, idx, PH, PW):
    """`out` = ReLU of the max of each PHxPW window of the conv plane `a` (row pitch W),
    `idx` = the argmax's offset in `a`. Literal PH, PW unroll the window."""
    QH, QW = out.shape
    zero = out.dtype.type(0)
    uW = np.uint64(W)
    for i in range(QH):
        row = np.uint64(i * PH * W)
        for j in range(QW):
            s = row + np.uint64(j * PW)
            best = a[s]
            where = s
            for dr in range(PH):
                for ds in range(PW):
                    k = s + np.uint64(dr) * uW + np.uint64(ds)
                    v = a[k]
                    take = (v > best) | (v != v)
                    best = v if take else best
                    where = k if take else where
            out[i, j] = best if (best > zero) | (best != best) else zero
            idx[i, j] = where


@numba.njit(cache=True, fastmath={"contract"})
def _pool_relu_row(xn, wt, b, i, bo, bi, C, KH, KW, PH, PW):
    """Row `i` of pooled outputs of one sample `xn` (C, H, W) for every output channel at once:
    ``bo[j, o]`` = ReLU of the max of window (i, j) of conv channel o, ``bi[j, o]`` its argmax's
    offset. `wt` is the weight as (C, KH, KW, M); the loop over o is the one LLVM vectorises,
    each conv value a chain of multiply-adds in the same order as `_conv_plane`'s. Literal C,
    KH, KW, PH and PW unroll everything inside it."""
    W = xn.shape[2]
    zero = bo.dtype.type(0)
    for j in range(bo.shape[0]):
        for o in range(wt.shape[3]):
            best = zero
            where = 0
            for dr in range(PH):
                r = i * PH + dr
                for ds in range(PW):
                    s = j * PW + ds
                    v = b[o]
                    for c in range(C):
                        for kh in range(KH):
                            for kw in range(KW):
                                v += wt[c, kh, kw, o] * xn[c, r + kh, s + kw]
                    if dr == 0 and ds == 0:
                        best = v
                        where = r * W + s
                    else:
                        take = (v > best) | (v != v)
                        best = v if take else best
                        where = r * W + s if take else where
            bo[j, o] = best if (best > zero) | (best != best) else zero
            bi[j, o] = where


@numba.njit(cache=True, parallel=True)
def conv2d_max_pool_relu_forward(x, w, b, PH, PW, out, idx, acc):
    """``out = relu(max_pool(conv(x, w) + b))`` with the argmax offsets in `idx`.

    `out` and `idx` are (N, M, (H - KH + 1) // PH, (W - KW + 1) // PW); `acc` is
    (N, (out.shape[2] * PH - 1) * W + W - KW + 1) scratch: one conv plane at the input's pitch,
    used by the general route only.
    """
    N, C, W = x.shape[0], x.shape[1], x.shape[3]
    M, KH, KW = w.shape[0], w.shape[2], w.shape[3]
    QH, QW = out.shape[2], out.shape[3]
    if C == 1 and KH == 3 and KW == 3 and PH == 2 and PW == 2:
        # Vectorised over output channels, a row of pooled outputs at a time, then stored
        # transposed into the NCHW output.
        wt = np.empty((C, KH, KW, M), w.dtype)
        for o in range(M):
            for c in range(C):
                for kh in range(KH):
                    for kw in range(KW):
                        wt[c, kh, kw, o] = w[o, c, kh, kw]
        for n in prange(N):
            bo = np.empty((QW, M), out.dtype)
            bi = np.empty((QW, M), np.int32)
            for i in range(QH):
                _pool_relu_row(x[n], wt, b, i, bo, bi, 1, 3, 3, 2, 2)
                for o in range(M):
                    dst, dsti = out[n, o, i], idx[n, o, i]
                    for j in range(QW):
                        dst[j] = bo[j, o]
                        dsti[j] = bi[j, o]
    else:
        # Any other shape: one conv plane at a time, vectorised over its pixels, then pooled.
        L = (QH * PH - 1) * W + W - KW + 1
        for n in prange(N):
            a = acc[n, :L]
            for o in range(M):
                _conv_plane(x[n], w, b, o, a)
                if PH == 2 and PW == 2:
                    _pool_relu_plane(a, W, out[n, o], idx[n, o], 2, 2)
                else:
                    _pool_relu_plane(a, W, out[n, o], idx[n, o], PH, PW)


@numba.njit(cache=True, fastmath={"contract", "reassoc"})
def _weight_taps(xf, g, y, where, W, gw):
    """``gw[kh, kw] += sum(g[q] * xf[where[q] + kh * W + kw])`` over the live (y > 0)
    outputs q; -> their gradient sum (the bias gradient's share)."""
    zero = gw.dtype.type(0)
    bias = zero
    for q in range(g.size):
        gq = g[q] if y[q] > zero else zero
        bias += gq
        base = np.uint64(where[q])
        for kh in range(gw.shape[0]):
            for kw in range(gw.shape[1]):
                gw[kh, kw] += gq * xf[base + np.uint64(kh * W + kw)]
    return bias


@numba.njit(cache=True, fastmath={"contract", "reassoc"})
def _weight_taps_3x3(xf, g, y, where, W, gw):
    """`_weight_taps` for a 3x3 kernel, the nine sums in registers (about 3x faster)."""
    zero = gw.dtype.type(0)
    bias = s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = zero
    uW, one, two = np.uint64(W), np.uint64(1), np.uint64(2)
    for q in range(g.size):
        gq = g[q] if y[q] > zero else zero
        bias += gq
        r0 = np.uint64(where[q])
        r1 = r0 + uW
        r2 = r1 + uW
        s0 += gq * xf[r0]
        s1 += gq * xf[r0 + one]
        s2 += gq * xf[r0 + two]
        s3 += gq * xf[r1]
        s4 += gq * xf[r1 + one]
        s5 += gq * xf[r1 + two]
        s6 += gq * xf[r2]
        s7 += gq * xf[r2 + one]
        s8 += gq * xf[r2 + two]
    gw[0, 0] += s0
    gw[0, 1] += s1
    gw[0, 2] += s2
    gw[1, 0] += s3
    gw[1, 1] += s4
    gw[1, 2] += s5
    gw[2, 0] += s6
    gw[2, 1] += s7
    gw[2, 2] += s8
    return bias


WEIGHT_GRAD_CHUNKS = 8


@numba.njit(cache=True)
def _pool_patches(xn, QH, QW, patches):
    """``patches[4 * a + c, i * QW + j] = xn[2 * i + a, 2 * j + c]``: the 4x4 input patch
    that the four 3x3 conv outputs of 2x2 pool window (i, j) read, one row per position in
    the patch. Columns from QH * QW on are left as they are."""
    for a in range(4):
        for c in range(4):
            row = patches[4 * a + c]
            for i in range(QH):
                for j in range(QW):
                    row[i * QW + j] = xn[2 * i + a, 2 * j + c]


@numba.njit(cache=True, fastmath={"contract", "reassoc"})
def _weight_taps_pool_3x3(g, rel, patches, W, taps):
    """``taps[:9]`` += the 3x3 weight gradient and ``taps[9]`` += the bias gradient of one
    (sample, channel) of the fused op with 3x3 conv and 2x2 pool. `g` holds each pooled
    output's gradient (0 for outputs the ReLU stopped), `rel` its winner's offset from the
    window's first conv output (0, 1, W or W + 1), `patches` the `_pool_patches` rows.

    The winner's receptive field is one of the four 3x3 corners of the window's 4x4 patch:
    the gradient is routed by four masks instead of a gather, so the loop over outputs
    vectorises (the loads are contiguous) at the price of four multiply-adds per tap."""
    zero = taps.dtype.type(0)
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = sb = zero
    for q in range(g.size):
        gq = g[q]
        r = rel[q]
        g0 = gq if r == 0 else zero
        g1 = gq if r == 1 else zero
        g2 = gq if r == W else zero
        g3 = gq if r == W + 1 else zero
        p00, p01, p02, p03 = patches[0, q], patches[1, q], patches[2, q], patches[3, q]
        p10, p11, p12, p13 = patches[4, q], patches[5, q], patches[6, q], patches[7, q]
        p20, p21, p22, p23 = patches[8, q], patches[9, q], patches[10, q], patches[11, q]
        p30, p31, p32, p33 = patches[12, q], patches[13, q], patches[14, q], patches[15, q]
        s0 += g0 * p00 + g1 * p01 + g2 * p10 + g3 * p11
        s1 += g0 * p01 + g1 * p02 + g2 * p11 + g3 * p12
        s2 += g0 * p02 + g1 * p03 + g2 * p12 + g3 * p13
        s3 += g0 * p10 + g1 * p11 + g2 * p20 + g3 * p21
        s4 += g0 * p11 + g1 * p12 + g2 * p21 + g3 * p22
        s5 += g0 * p12 + g1 * p13 + g2 * p22 + g3 * p23
        s6 += g0 * p20 + g1 * p21 + g2 * p30 + g3 * p31
        s7 += g0 * p21 + g1 * p22 + g2 * p31 + g3 * p32
        s8 += g0 * p22 + g1 * p23 + g2 * p32 + g3 * p33
        sb += gq
    taps[0] += s0
    taps[1] += s1
    taps[2] += s2
    taps[3] += s3
    taps[4] += s4
    taps[5] += s5
    taps[6] += s6
    taps[7] += s7
    taps[8] += s8
    taps[9] += sb


@numba.njit(cache=True, parallel=True, fastmath={"contract", "reassoc"})
def conv2d_max_pool_relu_backward_weight(x, out, idx, grad_out, PH, PW, grad_w, grad_b):
    """Weight and bias gradients of `conv2d_max_pool_relu_forward` (overwritten) from the
    pooled output gradient `grad_out`, through the argmax offsets `idx`; PH, PW the pool."""
    N, C, W = x.shape[0], x.shape[1], x.shape[3]
    M, KH, KW = grad_w.shape[0], grad_w.shape[2], grad_w.shape[3]
    QH, QW = out.shape[2], out.shape[3]
    zero = grad_w.dtype.type(0)
    if C == 1 and KH == 3 and KW == 3 and PH == 2 and PW == 2:
        # Vectorised over the pooled outputs of a (sample, channel), padded to whole vectors.
        # Samples go in WEIGHT_GRAD_CHUNKS fixed slices, each summed on its own and the
        # slices added in order: the result does not depend on the number of threads.
        Q = QH * QW
        QP = (Q + 15) // 16 * 16
        parts = zeros((WEIGHT_GRAD_CHUNKS, M, 10), x.dtype)
        first = np.empty(Q, np.int32)  # offset of each window's first conv output
        for i in range(QH):
            for j in range(QW):
                first[i * QW + j] = 2 * (i * W + j)
        for t in prange(WEIGHT_GRAD_CHUNKS):
            patches = np.zeros((16, QP), x.dtype)  # the padding stays 0 (0 * garbage may be NaN)
            g = np.zeros(QP, x.dtype)
            rel = np.zeros(QP, np.int32)
            for n in range(t * N // WEIGHT_GRAD_CHUNKS, (t + 1) * N // WEIGHT_GRAD_CHUNKS):
                _pool_patches(x[n, 0], QH, QW, patches)
                for o in range(M):
                    go, y, where = grad_out[n, o].ravel(), out[n, o].ravel(), idx[n, o].ravel()
                    for q in range(Q):
                        g[q] = go[q] if y[q] > zero else zero
                        rel[q] = where[q] - first[q]
                    _weight_taps_pool_3x3(g, rel, patches, W, parts[t, o])
        for o in range(M):
            for t in range(1, WEIGHT_GRAD_CHUNKS):
                for k in range(10):
                    parts[0, o, k] += parts[t, o, k]
            for k in range(9):
                grad_w[o, 0, k // 3, k % 3] = parts[0, o, k]
            grad_b[o] = parts[0, o, 9]
    else:
        for o in prange(M):
            grad_w[o] = zero
            bias = zero
            for n in range(N):
                g, y, where = grad_out[n, o].ravel(), out[n, o].ravel(), idx[n, o].ravel()
                for c in range(C):
                    if KH == 3 and KW == 3:
                        s = _weight_taps_3x3(x[n, c].ravel(), g, y, where, W, grad_w[o, c])
                    else:
                        s = _weight_taps(x[n, c].ravel(), g, y, where, W, grad_w[o, c])
                    bias += s if c == 0 else zero
            grad_b[o] = bias


@numba.njit(cache=True, parallel=True, fastmath={"contract"})
def conv2d_max_pool_relu_backward_input(w, out, idx, grad_out, grad_x):
    """Input gradient of `conv2d_max_pool_relu_forward` (overwritten): each live pooled
    output's gradient spread over the receptive field of its argmax."""
    N, C = grad_x.shape[0], grad_x.shape[1]
    M, KH, KW = w.shape[0], w.shape[2], w.shape[3]
    W = grad_x.shape[3]
    zero = grad_x.dtype.type(0)
    for n in prange(N):
        grad_x[n] = zero
        for o in range(M):
            g, y, where = grad_out[n, o].ravel(), out[n, o].ravel(), idx[n, o].ravel()
            for q in range(g.size):
                if y[q] > zero:
                    for c in range(C):
                        gx = grad_x[n, c].ravel()
                        for kh in range(KH):
                            for kw in range(KW):
                                gx[where[q] + kh * W + kw] += g[q] * w[o, c, kh, kw]
