"""Convolution and pooling on the GPU: the twins of `nanoml.kernels.cpu.conv`.

Same names, arguments, shapes and layouts (NCHW inputs, OIHW weights, int32 max-pool indices
into each input plane). Most kernels run one thread per output element and gather what it
needs, so that no two threads write the same address: the convolution, padding, im2col,
pooling, and the adjoints col2im and the average-pool backward. Two cannot gather:

* the weight gradient of the direct convolution sums over the whole batch and image for each
  weight, so one block reduces one weight (and one more block per output channel the bias)
  through shared memory;
* the max-pool backward knows only the argmax of each window, not the window geometry, so it
  zeroes the input gradient and adds each output gradient at its argmax atomically (windows
  that do not overlap never collide); the fused conv + pool + ReLU's input gradient adds
  each pooled output's over its argmax's receptive field the same way (these do overlap).

The scratch arrays of the CPU kernels (`acc`, `gfull`) are accepted so that callers are the
same for both devices, and are not used: the GPU versions need none.
"""

from numba import cuda

from nanoml.kernels.cuda.arrays import fill
from nanoml.kernels.cuda.elementwise import DEVICE, JIT
from nanoml.kernels.cuda.launch import REDUCE_THREADS, launch_1d, reduce_threads
from nanoml.kernels.cuda.matmul import matmul, matmul_nt
from nanoml.kernels.cuda.reduce import block_sum


@cuda.jit(**JIT)
def pad2d_kernel(x, pad_h, pad_w, out):
    k = cuda.grid(1)
    if k < out.size:
        N, C, OH, OW = out.shape
        j = k % OW
        i = (k // OW) % OH
        plane = k // (OW * OH)
        n, c = plane // C, plane % C
        ih, iw = i - pad_h, j - pad_w
        inside = 0 <= ih < x.shape[2] and 0 <= iw < x.shape[3]
        out[n, c, i, j] = x[n, c, ih, iw] if inside else out.dtype.type(0)


def pad2d(x, pad_h, pad_w, out):
    """``out[n, c, i, j] = x[n, c, i - pad_h, j - pad_w]`` where that exists, 0 elsewhere.

    `out` may be of any height and width, so a negative pad crops.
    """
    launch_1d(pad2d_kernel, out.size, x, pad_h, pad_w, out)


@cuda.jit(**JIT)
def conv2d_forward_direct_kernel(xp, w, b, out):
    k = cuda.grid(1)
    if k < out.size:
        N, M, OH, OW = out.shape
        C, KH, KW = w.shape[1], w.shape[2], w.shape[3]
        ow = k % OW
        oh = (k // OW) % OH
        o = (k // (OW * OH)) % M
        n = k // (OW * OH * M)
        s = b[o]
        for c in range(C):
            for kh in range(KH):
                for kw in range(KW):
                    s += w[o, c, kh, kw] * xp[n, c, oh + kh, ow + kw]
        out[n, o, oh, ow] = s


def conv2d_forward_direct(xp, w, b, out, acc):
    """Stride-1 convolution of an already padded input `xp`: ``out = conv(xp, w) + b``.

    `acc` is the CPU kernel's scratch, unused here.
    """
    launch_1d(conv2d_forward_direct_kernel, out.size, xp, w, b, out)


@cuda.jit(**DEVICE)
def _block_weight(grad_w):
    """(is_weight, o, c, kh, kw) that this block of a weight-gradient kernel reduces: block
    q < grad_w.size the weight q, block grad_w.size + o the bias o."""
    C, KH, KW = grad_w.shape[1], grad_w.shape[2], grad_w.shape[3]
    q = cuda.blockIdx.x
    is_weight = q < grad_w.size
    o = q // (C * KH * KW) if is_weight else q - grad_w.size
    return is_weight, o, (q // (KH * KW)) % C, (q // KW) % KH, q % KW


@cuda.jit(**DEVICE)
def _store_block_sum(buf, acc, is_weight, grad_w, grad_b, o, c, kh, kw):
    """Sum `acc` over the block and store it as the weight or bias `_block_weight` named."""
    total = block_sum(buf, acc)
    if cuda.threadIdx.x == 0:
        if is_weight:
            grad_w[o, c, kh, kw] = total
        else:
            grad_b[o] = total


@cuda.jit(**JIT)
def conv2d_backward_weight_direct_kernel(xp, grad_out, grad_w, grad_b):
    """Block q < grad_w.size sums weight q's gradient; block grad_w.size + o the bias o's."""
    buf = cuda.shared.array(REDUCE_THREADS, dtype=grad_w.dtype)
    N, M, OH, OW = grad_out.shape
    is_weight, o, c, kh, kw = _block_weight(grad_w)
    plane = OH * OW
    acc = grad_w.dtype.type(0)
    for p in range(cuda.threadIdx.x, N * plane, cuda.blockDim.x):
        n = p // plane
        oh = (p - n * plane) // OW
        ow = p % OW
        if is_weight:
            acc += grad_out[n, o, oh, ow] * xp[n, c, oh + kh, ow + kw]
        else:
            acc += grad_out[n, o, oh, ow]
    _store_block_sum(buf, acc, is_weight, grad_w, grad_b, o, c, kh, kw)


def conv2d_backward_weight_direct(xp, grad_out, grad_w, grad_b, gfull):
    """Weight and bias gradients of `conv2d_forward_direct` (overwritten, not accumulated).

    `gfull` is the CPU kernel's scratch, unused here.
    """
    N, M, OH, OW = grad_out.shape
    threads = reduce_threads(N * OH * OW)
    conv2d_backward_weight_direct_kernel[grad_w.size + M, threads](xp, grad_out, grad_w, grad_b)


@cuda.jit(**JIT)
def im2col_kernel(x, KH, KW, stride_h, stride_w, pad_h, pad_w, OH, OW, cols):
    k = cuda.grid(1)
    if k < cols.size:
        N, C, H, W = x.shape
        R, NP = cols.shape
        P = OH * OW
        r = k // NP
        n = (k % NP) // P
        p = k % P
        c = r // (KH * KW)
        kh = (r // KW) % KH
        kw = r % KW
        ih = (p // OW) * stride_h - pad_h + kh
        iw = (p % OW) * stride_w - pad_w + kw
        inside = 0 <= ih < H and 0 <= iw < W
        cols[r, n * P + p] = x[n, c, ih, iw] if inside else cols.dtype.type(0)


def _out_size(x_shape, KH, KW, stride_h, stride_w, pad_h, pad_w):
    """(OH, OW) of a convolution of an (N, C, H, W) input."""
    return ((x_shape[2] + 2 * pad_h - KH) // stride_h + 1,
            (x_shape[3] + 2 * pad_w - KW) // stride_w + 1)


def im2col(x, KH, KW, stride_h, stride_w, pad_h, pad_w, cols):
    """Unfold every input patch into a column: `cols` is (C*KH*KW, N*OH*OW).

    Row ``(c * KH + kh) * KW + kw`` holds that tap for every output position of every
    sample, so ``w.reshape(M, -1) @ cols`` is the whole batch's convolution in one GEMM.
    """
    OH, OW = _out_size(x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w)
    launch_1d(im2col_kernel, cols.size, x, KH, KW, stride_h, stride_w, pad_h, pad_w, OH, OW,
              cols)


@cuda.jit(**JIT)
def col2im_kernel(cols, KH, KW, stride_h, stride_w, pad_h, pad_w, OH, OW, grad_x):
    k = cuda.grid(1)
    if k < grad_x.size:
        N, C, H, W = grad_x.shape
        w = k % W
        h = (k // W) % H
        c = (k // (W * H)) % C
        n = k // (W * H * C)
        first = n * OH * OW  # column of sample n's first output position
        s = grad_x.dtype.type(0)
        # Every (tap, output position) whose window puts that tap on pixel (h, w).
        for kh in range(KH):
            th = h + pad_h - kh
            if th < 0 or th % stride_h != 0 or th // stride_h >= OH:
                continue
            for kw in range(KW):
                tw = w + pad_w - kw
                if tw < 0 or tw % stride_w != 0 or tw // stride_w >= OW:
                    continue
                s += cols[(c * KH + kh) * KW + kw, first + (th // stride_h) * OW + tw // stride_w]
        grad_x[n, c, h, w] = s


def col2im(cols, KH, KW, stride_h, stride_w, pad_h, pad_w, grad_x):
    """The adjoint of `im2col`: sum each column entry back onto its input pixel."""
    OH, OW = _out_size(grad_x.shape, KH, KW, stride_h, stride_w, pad_h, pad_w)
    launch_1d(col2im_kernel, grad_x.size, cols, KH, KW, stride_h, stride_w, pad_h, pad_w, OH,
              OW, grad_x)


# The im2col route of `nanoml.kernels.cpu.conv` (`conv2d_forward_gemm` and its gradients):
# on the GPU the whole batch is unfolded at once, as one large GEMM suits a GPU, and the
# (M, N*P) product is reordered to NCHW by one more kernel.


@cuda.jit(**DEVICE)
def _sample_channel_position(k, M, P):
    """(n, m, p) of flat index k into an (N, M, P) array."""
    return k // (P * M), (k // P) % M, k % P


@cuda.jit(**JIT)
def _gemm_to_nchw_kernel(y, b, out):
    """``out[n, m, p] = y[m, n * P + p] + b[m]`` for out (N, M, P)."""
    k = cuda.grid(1)
    if k < out.size:
        P = out.shape[2]
        n, m, p = _sample_channel_position(k, out.shape[1], P)
        out[n, m, p] = y[m, n * P + p] + b[m]


@cuda.jit(**JIT)
def _nchw_to_gemm_kernel(g, y):
    """``y[m, n * P + p] = g[n, m, p]``: the inverse reorder."""
    k = cuda.grid(1)
    if k < g.size:
        P = g.shape[2]
        n, m, p = _sample_channel_position(k, g.shape[1], P)
        y[m, n * P + p] = g[n, m, p]


@cuda.jit(**JIT)
def _bias_grad_kernel(y, gb):
    """``gb[m] = y[m, :].sum()``, one thread per channel."""
    m = cuda.grid(1)
    if m < gb.size:
        s = gb.dtype.type(0)
        for j in range(y.shape[1]):
            s += y[m, j]
        gb[m] = s


def _columns(x, KH, KW, geometry, P):
    cols = cuda.device_array((x.shape[1] * KH * KW, x.shape[0] * P), x.dtype)
    im2col(x, KH, KW, *geometry, cols)
    return cols


def _gemm_layout(g):
    """The (M, N*P) layout of an (N, M, OH, OW) gradient."""
    N, M, P = g.shape[0], g.shape[1], g.shape[2] * g.shape[3]
    y = cuda.device_array((M, N * P), g.dtype)
    launch_1d(_nchw_to_gemm_kernel, g.size, g.reshape(N, M, P), y)
    return y


def conv2d_forward_gemm(x, w2, b, KH, KW, stride_h, stride_w, pad_h, pad_w, out):
    """``out = conv(x, w) + b``, `w2` the weight as (M, C*KH*KW)."""
    N, M, OH, OW = out.shape
    cols = _columns(x, KH, KW, (stride_h, stride_w, pad_h, pad_w), OH * OW)
    y = cuda.device_array((M, N * OH * OW), x.dtype)
    matmul(w2, cols, y)
    launch_1d(_gemm_to_nchw_kernel, out.size, y, b, out.reshape(N, M, OH * OW))


def conv2d_backward_input_gemm(grad_out, w2t, KH, KW, stride_h, stride_w, pad_h, pad_w,
                               grad_x):
    """Input gradient of `conv2d_forward_gemm`; `w2t` is the weight as (C*KH*KW, M)."""
    N, M, OH, OW = grad_out.shape
    gcols = cuda.device_array((w2t.shape[0], N * OH * OW), grad_x.dtype)
    matmul(w2t, _gemm_layout(grad_out), gcols)
    col2im(gcols, KH, KW, stride_h, stride_w, pad_h, pad_w, grad_x)


def conv2d_backward_weight_gemm(x, grad_out, KH, KW, stride_h, stride_w, pad_h, pad_w,
                                grad_w2t, grad_b):
    """Weight gradient, as (C*KH*KW, M), and bias gradient of `conv2d_forward_gemm`."""
    OH, OW = grad_out.shape[2], grad_out.shape[3]
    cols = _columns(x, KH, KW, (stride_h, stride_w, pad_h, pad_w), OH * OW)
    y = _gemm_layout(grad_out)
    matmul_nt(cols, y, grad_w2t)
    launch_1d(_bias_grad_kernel, grad_b.size, y, grad_b)


@cuda.jit(**JIT)
def max_pool2d_forward_kernel(x, KH, KW, SH, SW, out, idx):
    k = cuda.grid(1)
    if k < out.size:
        N, C, OH, OW = out.shape
        W = x.shape[3]
        ow = k % OW
        oh = (k // OW) % OH
        c = (k // (OW * OH)) % C
        n = k // (OW * OH * C)
        h0, w0 = oh * SH, ow * SW
        best = x[n, c, h0, w0]
        where = h0 * W + w0
        # Ties go to the first element in row-major window order and NaN wins, as on the CPU.
        for kh in range(KH):
            for kw in range(KW):
                v = x[n, c, h0 + kh, w0 + kw]
                if v > best or v != v:
                    best = v
                    where = (h0 + kh) * W + w0 + kw
        out[n, c, oh, ow] = best
        idx[n, c, oh, ow] = where


def max_pool2d_forward(x, KH, KW, SH, SW, out, idx):
    """Max pooling without padding; `idx` (int32, shaped like `out`) records the argmax."""
    launch_1d(max_pool2d_forward_kernel, out.size, x, KH, KW, SH, SW, out, idx)


@cuda.jit(**JIT)
def max_pool2d_scatter_kernel(grad_out, idx, grad_x):
    """Add output gradient k onto its window's argmax in the (N*C, H*W) view `grad_x`."""
    k = cuda.grid(1)
    if k < grad_out.shape[0] * grad_out.shape[1]:
        plane = k // grad_out.shape[1]
        p = k % grad_out.shape[1]
        cuda.atomic.add(grad_x, (plane, idx[plane, p]), grad_out[plane, p])


def max_pool2d_backward(grad_out, idx, grad_x):
    """Route each output gradient to its window's argmax (summing where windows overlap)."""
    N, C, H, W = grad_x.shape
    fill(grad_x, 0)
    planes, P = N * C, grad_out.shape[2] * grad_out.shape[3]
    launch_1d(max_pool2d_scatter_kernel, grad_out.size, grad_out.reshape(planes, P),
              idx.reshape(planes, P), grad_x.reshape(planes, H * W))


@cuda.jit(**JIT)
def avg_pool2d_forward_kernel(x, KH, KW, SH, SW, scale, out):
    k = cuda.grid(1)
    if k < out.size:
        N, C, OH, OW = out.shape
        ow = k % OW
        oh = (k // OW) % OH
        c = (k // (OW * OH)) % C
        n = k // (OW * OH * C)
        s = out.dtype.type(0)
        for kh in range(KH):
            for kw in range(KW):
                s += x[n, c, oh * SH + kh, ow * SW + kw]
        out[n, c, oh, ow] = s * scale


def avg_pool2d_forward(x, KH, KW, SH, SW, out):
    """Average pooling without padding."""
    scale = out.dtype.type(1.0 / (KH * KW))
    launch_1d(avg_pool2d_forward_kernel, out.size, x, KH, KW, SH, SW, scale, out)


@cuda.jit(**JIT)
def avg_pool2d_backward_kernel(grad_out, KH, KW, SH, SW, scale, grad_x):
    k = cuda.grid(1)
    if k < grad_x.size:
        N, C, H, W = grad_x.shape
        OH, OW = grad_out.shape[2], grad_out.shape[3]
        w = k % W
        h = (k // W) % H
        c = (k // (W * H)) % C
        n = k // (W * H * C)
        # Windows oh*SH <= h < oh*SH + KH, i.e. ceil((h - KH + 1) / SH) <= oh <= h // SH.
        oh_lo, oh_hi = max(0, (h - KH + SH) // SH), min(OH - 1, h // SH)
        ow_lo, ow_hi = max(0, (w - KW + SW) // SW), min(OW - 1, w // SW)
        s = grad_x.dtype.type(0)
        for oh in range(oh_lo, oh_hi + 1):
            for ow in range(ow_lo, ow_hi + 1):
                s += grad_out[n, c, oh, ow] * scale
        grad_x[n, c, h, w] = s


def avg_pool2d_backward(grad_out, KH, KW, SH, SW, grad_x):
    """Spread each output gradient evenly over its window (summing where windows overlap)."""
    scale = grad_x.dtype.type(1.0 / (KH * KW))
    launch_1d(avg_pool2d_backward_kernel, grad_x.size, grad_out, KH, KW, SH, SW, scale, grad_x)


# The fused convolution + max pooling + ReLU: `idx` holds each window's argmax as the flat
# offset r * W + s, in the input plane, of the top-left pixel of the winning conv output.


@cuda.jit(**DEVICE)
def _unravel(k, shape):
    """The (n, c, i, j) of flat index `k` into a C-contiguous array of 4-D `shape`."""
    H, W = shape[2], shape[3]
    return k // (W * H * shape[1]), (k // (W * H)) % shape[1], (k // W) % H, k % W


@cuda.jit(**JIT)
def conv2d_max_pool_relu_forward_kernel(x, w, b, PH, PW, out, idx):
    """One thread per pooled output: the window's conv outputs, their max, its ReLU."""
    k = cuda.grid(1)
    if k < out.size:
        n, o, i, j = _unravel(k, out.shape)
        C, KH, KW = w.shape[1], w.shape[2], w.shape[3]
        W = x.shape[3]
        best = out.dtype.type(0)
        where = 0
        for dr in range(PH):
            for ds in range(PW):
                r, s = i * PH + dr, j * PW + ds
                v = b[o]
                for c in range(C):
                    for kh in range(KH):
                        for kw in range(KW):
                            v += w[o, c, kh, kw] * x[n, c, r + kh, s + kw]
                # Ties go to the first element in row-major window order and NaN wins.
                if (dr == 0 and ds == 0) or v > best or v != v:
                    best = v
                    where = r * W + s
        out[n, o, i, j] = best if best > 0 or best != best else out.dtype.type(0)
        idx[n, o, i, j] = where


def conv2d_max_pool_relu_forward(x, w, b, PH, PW, out, idx, acc):
    """``out = relu(max_pool(conv(x, w) + b))`` with the argmax offsets in `idx`.

    `acc` is the CPU kernel's scratch, unused here.
    """
    launch_1d(conv2d_max_pool_relu_forward_kernel, out.size, x, w, b, PH, PW, out, idx)


@cuda.jit(**JIT)
def conv2d_max_pool_relu_backward_weight_kernel(x, out, idx, grad_out, grad_w, grad_b):
    """Block q < grad_w.size sums weight q's gradient; block grad_w.size + o the bias o's."""
    buf = cuda.shared.array(REDUCE_THREADS, dtype=grad_w.dtype)
    N, M, QH, QW = grad_out.shape
    W = x.shape[3]
    is_weight, o, c, kh, kw = _block_weight(grad_w)
    plane = QH * QW
    acc = grad_w.dtype.type(0)
    for p in range(cuda.threadIdx.x, N * plane, cuda.blockDim.x):
        n = p // plane
        i = (p - n * plane) // QW
        j = p % QW
        if out[n, o, i, j] > 0:
            g = grad_out[n, o, i, j]
            if is_weight:
                where = idx[n, o, i, j]
                acc += g * x[n, c, where // W + kh, where % W + kw]
            else:
                acc += g
    _store_block_sum(buf, acc, is_weight, grad_w, grad_b, o, c, kh, kw)


def conv2d_max_pool_relu_backward_weight(x, out, idx, grad_out, PH, PW, grad_w, grad_b):
    """Weight and bias gradients of `conv2d_max_pool_relu_forward` (overwritten) from the
    pooled output gradient `grad_out`, through the argmax offsets `idx` (which make the
    pool PH x PW, needed by the CPU twin's fast route, redundant here)."""
    N, M, QH, QW = grad_out.shape
    threads = reduce_threads(N * QH * QW)
    conv2d_max_pool_relu_backward_weight_kernel[grad_w.size + M, threads](
        x, out, idx, grad_out, grad_w, grad_b)


@cuda.jit(**JIT)
def conv2d_max_pool_relu_backward_input_kernel(w, out, idx, grad_out, grad_x):
    """One thread per pooled output: if live, add its gradient times the weights onto the
    receptive field of its argmax, atomically (receptive fields overlap)."""
    k = cuda.grid(1)
    if k < out.size:
        n, o, i, j = _unravel(k, out.shape)
        C, KH, KW = w.shape[1], w.shape[2], w.shape[3]
        W = grad_x.shape[3]
        if out[n, o, i, j] > 0:
            g = grad_out[n, o, i, j]
            r = idx[n, o, i, j] // W
            s = idx[n, o, i, j] % W
            for c in range(C):
                for kh in range(KH):
                    for kw in range(KW):
                        cuda.atomic.add(grad_x, (n, c, r + kh, s + kw), g * w[o, c, kh, kw])


def conv2d_max_pool_relu_backward_input(w, out, idx, grad_out, grad_x):
    """Input gradient of `conv2d_max_pool_relu_forward` (overwritten): each live pooled
    output's gradient spread over the receptive field of its argmax."""
    fill(grad_x, 0)
    launch_1d(conv2d_max_pool_relu_backward_input_kernel, out.size, w, out, idx, grad_out,
              grad_x)
