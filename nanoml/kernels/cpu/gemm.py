"""Matrix products for kernels that run many small GEMMs, with a register-tiled micro-kernel.

`matmul(a, b, c)` computes ``c = a @ b`` inside an njit function without calling BLAS. The
recurrent kernels need it: their per-step products (64x128 @ 128x512) are too small for
BLAS threading to pay, and the OpenBLAS that NumPy and SciPy ship picks its AVX2 kernels on
AMD Zen 5, while this micro-kernel uses whatever vector width the host has (AVX-512 there:
about 2.2x OpenBLAS on one core). `a` may have any strides (a transposed view works without
a copy); `b` and `c` need unit stride along their rows.

The micro-kernel is written in LLVM IR through a Numba intrinsic: a tile of up to 8 rows x 2
vectors of columns accumulates in registers over the whole inner dimension; each step of it
loads two vectors of `b`, broadcasts one element of `a` per row and issues two fused
multiply-adds per row. Partial column blocks use masked loads and stores, so no padding or
packing copies are needed. The inner dimension is cut into blocks of 512 so that a block of
`b` stays in L2 while every row tile passes over it (blocks after the first add to `c`).

Policy: ``cache=True`` (the cache is keyed by the host CPU, so the vector width chosen at
compile time stays right); `matmul` and `matmul_rows` are serial, for callers that
parallelise over their own work (disjoint row ranges) inside one ``prange``;
`nanoml.kernels.cpu.matmul.matmul` spreads bands of rows over the threads.
"""

import llvmlite.binding as llvm
import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_JIT = {"cache": True}
_AVX512 = bool(llvm.get_host_cpu_features().get("avx512f", False))
_VECTOR_BYTES = 64 if _AVX512 else 32
# Rows per tile: 8 rows x 2 vectors of accumulators plus the operands fill AVX-512's 32
# registers without spilling; AVX2 has 16.
ROWS = 8 if _AVX512 else 4
_VECTORS = 2
# Inner-dimension block: 512 rows of b (up to 256 KB in float32 at N = 128) stay in L2.
_K_BLOCK = 512


@intrinsic(prefer_literal=True)
def _tile(typingctx, a, b, c, i0, j0, rows, cols, accumulate):
    """``c[i0:i0+rows, j0:j0+cols] (+)= a[i0:i0+rows, :] @ b[:, j0:j0+cols]``.

    `rows` must be a literal (1 to ROWS); `cols` is at most two vectors' worth; the product
    is added to c when `accumulate` is true, else it replaces c.
    """
    if not isinstance(rows, types.IntegerLiteral):
        return None
    n_rows = rows.literal_value

    def codegen(context, builder, signature, args):
        arr_a, arr_b, arr_c, i0_, j0_, _, cols_, accumulate_ = args
        A = context.make_array(signature.args[0])(context, builder, arr_a)
        Bm = context.make_array(signature.args[1])(context, builder, arr_b)
        Cm = context.make_array(signature.args[2])(context, builder, arr_c)
        fty = context.get_value_type(signature.args[0].dtype)
        item = context.get_abi_sizeof(fty)
        width = _VECTOR_BYTES // item
        vty = ir.VectorType(fty, width)
        intp = context.get_value_type(types.intp)
        i32 = ir.IntType(32)
        ptr = A.data.type
        suffix = f"v{width}f{8 * item}"
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty] * 3), f"llvm.fma.{suffix}")
        mty = ir.VectorType(ir.IntType(1), width)
        masked_load = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [ptr, i32, mty, vty]),
            f"llvm.masked.load.{suffix}.p0")
        masked_store = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [vty, ptr, i32, mty]),
            f"llvm.masked.store.{suffix}.p0")
        align = ir.Constant(i32, item)
        zero = ir.Constant(vty, None)

        def const(v):
            return ir.Constant(intp, v)

        def at(base, byte_offset):
            return builder.gep(builder.bitcast(base, ir.IntType(8).as_pointer()), [byte_offset])

        def splat(value, vector_type):
            v = builder.insert_element(ir.Constant(vector_type, ir.Undefined), value,
                                       ir.Constant(i32, 0))
            return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, width),
                                                            [0] * width))

        sa_row, sa_k = cgutils.unpack_tuple(builder, A.strides, 2)
        sb_k = cgutils.unpack_tuple(builder, Bm.strides, 2)[0]
        sc_row = cgutils.unpack_tuple(builder, Cm.strides, 2)[0]
        K = cgutils.unpack_tuple(builder, A.shape, 2)[1]
        # Lane v*width + l of the column block is live when it is below `cols`.
        lanes = ir.VectorType(intp, width)
        live = splat(cols_, lanes)
        masks = [builder.icmp_signed("<", ir.Constant(lanes, [v * width + lane
                                                              for lane in range(width)]), live)
                 for v in range(_VECTORS)]
        a_rows = [at(A.data, builder.mul(builder.add(i0_, const(r)), sa_row))
                  for r in range(n_rows)]
        b_cols = at(Bm.data, builder.mul(j0_, const(item)))
        c_vecs = []  # where each accumulator ends up in c
        for r in range(n_rows):
            c_row = at(Cm.data, builder.add(builder.mul(builder.add(i0_, const(r)), sc_row),
                                            builder.mul(j0_, const(item))))
            c_vecs += [builder.bitcast(at(c_row, const(v * width * item)), ptr)
                       for v in range(_VECTORS)]
        add_to_c = builder.icmp_unsigned("!=", accumulate_, ir.Constant(accumulate_.type, 0))
        initial = [builder.select(add_to_c, builder.call(masked_load, [dst, align,
                                                                       masks[k % _VECTORS], zero]),
                                  zero)
                   for k, dst in enumerate(c_vecs)]

        entry = builder.block
        loop = builder.append_basic_block("tile_k")
        done = builder.append_basic_block("tile_done")
        builder.cbranch(builder.icmp_signed(">", K, const(0)), loop, done)
        builder.position_at_end(loop)
        k = builder.phi(intp)
        k.add_incoming(const(0), entry)
        acc = [builder.phi(vty) for _ in range(n_rows * _VECTORS)]
        for phi, value in zip(acc, initial, strict=True):
            phi.add_incoming(value, entry)
        b_row = at(b_cols, builder.mul(k, sb_k))
        b_vecs = [builder.call(masked_load, [builder.bitcast(at(b_row, const(v * width * item)),
                                                             ptr), align, masks[v], zero])
                  for v in range(_VECTORS)]
        summed = []
        for r in range(n_rows):
            a_rk = splat(builder.load(builder.bitcast(at(a_rows[r], builder.mul(k, sa_k)), ptr)),
                         vty)
            summed += [builder.call(fma, [a_rk, b_vecs[v], acc[r * _VECTORS + v]])
                       for v in range(_VECTORS)]
        k_next = builder.add(k, const(1))
        k.add_incoming(k_next, builder.block)
        for phi, value in zip(acc, summed, strict=True):
            phi.add_incoming(value, builder.block)
        builder.cbranch(builder.icmp_signed("<", k_next, K), loop, done)

        builder.position_at_end(done)
        results = []
        for value, start in zip(summed, initial, strict=True):
            phi = builder.phi(vty)
            phi.add_incoming(value, loop)
            phi.add_incoming(start, entry)  # an empty inner dimension adds nothing
            results.append(phi)
        for k_vec, (value, dst) in enumerate(zip(results, c_vecs, strict=True)):
            builder.call(masked_store, [value, dst, align, masks[k_vec % _VECTORS]])
        return context.get_dummy_value()

    return types.void(a, b, c, i0, j0, rows, cols, accumulate), codegen


if numba.config.DISABLE_JIT:  # an intrinsic exists only compiled: NumPy stands in for it

    def _tile(a, b, c, i0, j0, rows, cols, accumulate):
        block = a[i0:i0 + rows] @ b[:, j0:j0 + cols]
        target = c[i0:i0 + rows, j0:j0 + cols]
        target[...] = target + block if accumulate else block


@numba.njit(**_JIT)
def _rows(a, b, c, i0, n, accumulate):
    """Rows i0 to i0+n of ``c (+)= a @ b``, n <= ROWS, in tiles of literal height."""
    N = b.shape[1]
    step = _VECTORS * (_VECTOR_BYTES // a.itemsize)
    i = i0
    # Literal tile heights (each its own unrolled code): ROWS, then the binary remainder.
    if n >= 8 and ROWS >= 8:
        for j0 in range(0, N, step):
            _tile(a, b, c, i, j0, 8, min(step, N - j0), accumulate)
        i += 8
    if i0 + n - i >= 4:
        for j0 in range(0, N, step):
            _tile(a, b, c, i, j0, 4, min(step, N - j0), accumulate)
        i += 4
    if i0 + n - i >= 2:
        for j0 in range(0, N, step):
            _tile(a, b, c, i, j0, 2, min(step, N - j0), accumulate)
        i += 2
    if i0 + n - i >= 1:
        for j0 in range(0, N, step):
            _tile(a, b, c, i, j0, 1, min(step, N - j0), accumulate)


@numba.njit(**_JIT)
def matmul_rows(a, b, c, r0, r1):
    """Rows r0 to r1 of ``c = a @ b`` (2-D float arrays of one dtype, see module doc).

    The inner dimension is blocked so that a block of b stays in cache while every row tile
    passes over it. Disjoint row ranges may run on different threads.
    """
    K = a.shape[1]
    for k0 in range(0, max(K, 1), _K_BLOCK):
        k1 = min(K, k0 + _K_BLOCK)
        for i0 in range(r0, r1, ROWS):
            _rows(a[:, k0:k1], b[k0:k1], c, i0, min(ROWS, r1 - i0), k0 > 0)


@numba.njit(**_JIT)
def matmul(a, b, c):
    """``c = a @ b`` on the calling thread."""
    matmul_rows(a, b, c, 0, a.shape[0])
