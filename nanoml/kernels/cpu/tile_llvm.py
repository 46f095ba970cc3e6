"""The GEMM micro-kernel in LLVM IR, through a Numba intrinsic: fenced, with its own check.

A tile of up to 8 rows x 2 vectors of columns accumulates in registers over the whole inner
dimension; each step of it loads two vectors of `b`, broadcasts one element of `a` per row
and issues two fused multiply-adds per row. Partial column blocks use masked loads and
stores, so no padding or packing copies are needed. The vector width is the host's
(AVX-512 where it has it: about 2.2x the OpenBLAS that NumPy ships, which picks AVX2 on AMD
Zen 5).

This leans on interfaces that may change under a user: Numba's `intrinsic` and code
generation API, llvmlite's IR builder, and the mangled names of LLVM's intrinsics (the
``.p0`` of ``llvm.masked.load.v16f32.p0`` is how LLVM spells an opaque pointer).
`nanoml.kernels.cpu.gemm` therefore uses `tile` only after `check` has compiled it and
compared its product with NumPy's, and falls back to a plain Numba tile otherwise.
"""

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_AVX512 = bool(llvm.get_host_cpu_features().get("avx512f", False))
_VECTOR_BYTES = 64 if _AVX512 else 32
_VECTORS = 2
#: Bytes of a row's columns that one `tile` call covers (two vectors).
COLUMN_BYTES = _VECTORS * _VECTOR_BYTES


@intrinsic(prefer_literal=True)
def tile(typingctx, a, b, c, i0, j0, rows, cols, accumulate):
    """``c[i0:i0+rows, j0:j0+cols] (+)= a[i0:i0+rows, :] @ b[:, j0:j0+cols]``.

    `rows` must be a literal (1 to 8); `cols` is at most two vectors' worth; the product
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
        # Where the tile's columns fill both vectors (the common case), c and b are read and
        # c written with plain loads and stores: a masked load in the k loop costs about
        # 30%, and AMD's AVX2 cores run masked stores as microcode (plain ones make a
        # recurrent step's 4 x 288 x 1024 product 8% faster on a Zen 3, 4 x 105 x 256 13%).
        full = builder.icmp_signed(">=", cols_, ir.Constant(cols_.type, _VECTORS * width))

        def plain_load(address, v):
            return builder.load(builder.bitcast(address, vty.as_pointer()), align=item)

        def masked_load_of(address, v):
            return builder.call(masked_load,
                                [builder.bitcast(address, ptr), align, masks[v], zero])

        entry = builder.block
        read_c = builder.append_basic_block("tile_read_c")
        read_full = builder.append_basic_block("tile_read_full")
        read_part = builder.append_basic_block("tile_read_part")
        start = builder.append_basic_block("tile_start")
        builder.cbranch(add_to_c, read_c, start)
        builder.position_at_end(read_c)
        builder.cbranch(full, read_full, read_part)
        c_loaded = []
        for block, load in ((read_full, plain_load), (read_part, masked_load_of)):
            builder.position_at_end(block)
            c_loaded.append([load(dst, k % _VECTORS) for k, dst in enumerate(c_vecs)])
            builder.branch(start)
        builder.position_at_end(start)
        initial = []
        for from_full, from_part in zip(*c_loaded, strict=True):
            phi = builder.phi(vty)
            phi.add_incoming(zero, entry)
            phi.add_incoming(from_full, read_full)
            phi.add_incoming(from_part, read_part)
            initial.append(phi)
        done = builder.append_basic_block("tile_done")
        choose = builder.append_basic_block("tile_choose")
        builder.cbranch(builder.icmp_signed(">", K, const(0)), choose, done)

        def k_loop(name, load_b):
            """The loop over the inner dimension (one basic block), each vector of its b
            rows read by `load_b(byte address, v)`; -> (the block, its final accumulators)."""
            loop = builder.append_basic_block(name)
            builder.position_at_end(loop)
            k = builder.phi(intp)
            k.add_incoming(const(0), choose)
            acc = [builder.phi(vty) for _ in range(n_rows * _VECTORS)]
            for phi, value in zip(acc, initial, strict=True):
                phi.add_incoming(value, choose)
            b_row = at(b_cols, builder.mul(k, sb_k))
            b_vecs = [load_b(at(b_row, const(v * width * item)), v) for v in range(_VECTORS)]
            summed = []
            for r in range(n_rows):
                a_rk = splat(builder.load(builder.bitcast(at(a_rows[r], builder.mul(k, sa_k)),
                                                          ptr)), vty)
                summed += [builder.call(fma, [a_rk, b_vecs[v], acc[r * _VECTORS + v]])
                           for v in range(_VECTORS)]
            k_next = builder.add(k, const(1))
            k.add_incoming(k_next, builder.block)
            for phi, value in zip(acc, summed, strict=True):
                phi.add_incoming(value, builder.block)
            builder.cbranch(builder.icmp_signed("<", k_next, K), loop, done)
            return loop, summed

        full_loop, full_sums = k_loop("tile_k_full", plain_load)
        part_loop, part_sums = k_loop("tile_k_part", masked_load_of)
        builder.position_at_end(choose)
        builder.cbranch(full, full_loop, part_loop)

        builder.position_at_end(done)
        results = []
        for full_sum, part_sum, begin in zip(full_sums, part_sums, initial, strict=True):
            phi = builder.phi(vty)
            phi.add_incoming(full_sum, full_loop)
            phi.add_incoming(part_sum, part_loop)
            phi.add_incoming(begin, start)  # an empty inner dimension adds nothing
            results.append(phi)
        write_full = builder.append_basic_block("tile_write_full")
        write_part = builder.append_basic_block("tile_write_part")
        finish = builder.append_basic_block("tile_finish")
        builder.cbranch(full, write_full, write_part)
        builder.position_at_end(write_full)
        for value, dst in zip(results, c_vecs, strict=True):
            builder.store(value, builder.bitcast(dst, vty.as_pointer()), align=item)
        builder.branch(finish)
        builder.position_at_end(write_part)
        for k_vec, (value, dst) in enumerate(zip(results, c_vecs, strict=True)):
            builder.call(masked_store, [value, dst, align, masks[k_vec % _VECTORS]])
        builder.branch(finish)
        builder.position_at_end(finish)
        return context.get_dummy_value()

    return types.void(a, b, c, i0, j0, rows, cols, accumulate), codegen


@numba.njit(cache=True)
def _product(a, b, c):
    """``c = a @ b`` for a 3-row `a` through `tile`: one call that replaces c, one that adds."""
    half = a.shape[1] // 2
    tile(a[:, :half], b[:half], c, 0, 0, 3, c.shape[1], False)
    tile(a[:, half:], b[half:], c, 0, 0, 3, c.shape[1], True)


def check():
    """None when `tile` compiles here and its product matches NumPy's, else what differs.

    Runs at import of `nanoml.kernels.cpu.gemm`; `_product` is cached on disk, so after
    the first run this costs a cache load and two tiny products.
    """
    for dtype in (np.float32, np.float64):
        full = COLUMN_BYTES // np.dtype(dtype).itemsize
        for cols in (full, full - 1):  # both vectors whole; a partial last vector
            a = (np.arange(3 * 7, dtype=dtype).reshape(3, 7) - 10) / 8
            b = (np.arange(7 * cols, dtype=dtype).reshape(7, cols) % 5 - 2) / 4
            c = np.full((3, cols), np.nan, dtype)
            _product(a, b, c)
            if not np.allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-6):
                return f"its {np.dtype(dtype).name} product differs from NumPy's"
    return None
