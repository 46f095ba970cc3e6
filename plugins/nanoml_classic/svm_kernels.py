"""Numba kernels of the kernel SVM: LIBSVM's SMO solver with second-order working sets
and shrinking.

The solver minimises the C-SVC dual ½ αᵀQα − Σα subject to yᵀα = 0, 0 ≤ α ≤ C, where
Q[i, j] = y_i y_j K(x_i, x_j). Kernel values come from a row cache: row i of the problem
is cache[slot_of[i]], and its entry for sample t sits in column cols[t], so one cache can
hold rows over a larger sample set (the whole training set, shared by every one-vs-one
pair) or over the problem's own samples. The caller computes kernel rows (as GEMM blocks);
when the solver needs a row the cache lacks, it returns that row's id, and called again
with the same state once the row is in, it picks up where it stopped.
"""

import numba
import numpy as np

TAU = 1e-12  # LIBSVM's floor on the curvature of a working pair
SHRINK_EVERY = 1000  # LIBSVM's: shrink every min(n, 1000) iterations
# counters[] of the solver's resumable state
ITERATIONS, CLOCK, COUNTDOWN, RECONSTRUCT, UNSHRUNK, ACTIVE = 0, 1, 2, 3, 4, 5
N_COUNTERS = 6
OPTIMAL, ITERATION_LIMIT = -1, -2


@numba.njit(cache=True, nogil=True)
def rbf_exponents(K, sq_rows, sq_cols, gamma):
    """In place: K[i, j] = a_i·b_j becomes -gamma ||a_i - b_j||², the squared distance
    taken as ||a||² + ||b||² - 2 a·b and clamped at zero (NumPy's SIMD exp follows)."""
    for i in range(K.shape[0]):
        row = K[i]
        a = sq_rows[i]
        for j in range(K.shape[1]):
            d = row[j] * -2.0 + a + sq_cols[j]
            row[j] = max(d, 0.0) * -gamma


@numba.njit(cache=True, nogil=True)
def _lookup(i, slot_of, slot_used, counters):
    """Slot holding row i (marked most recently used), or -1 when the cache lacks it."""
    slot = slot_of[i]
    if slot >= 0:
        counters[CLOCK] += 1
        slot_used[slot] = counters[CLOCK]
    return slot


@numba.njit(cache=True, nogil=True)
def store_rows(ids, slot_of, slot_row, slot_used, counters):
    """Slots for rows `ids`, evicting the least recently used; the caller fills
    cache[slots[k]] with row ids[k]. Rows the solver is working with were used last, so
    storing fewer rows than there are slots never evicts them."""
    slots = np.empty(ids.shape[0], np.int64)
    for k in range(ids.shape[0]):
        slot = np.argmin(slot_used)
        if slot_row[slot] >= 0:
            slot_of[slot_row[slot]] = -1
        slot_row[slot] = ids[k]
        slot_of[ids[k]] = slot
        counters[CLOCK] += 1
        slot_used[slot] = counters[CLOCK]
        slots[k] = slot
    return slots


@numba.njit(cache=True, nogil=True)
def mirror_cached(cache, slots, ids, slot_of):
    """Rows `ids` just given `slots`: copy in their entries for every other cached row
    (K is symmetric); returns whether each column still has to be computed."""
    todo = np.ones(slot_of.shape[0], np.bool_)
    fresh = np.zeros(slot_of.shape[0], np.bool_)
    fresh[ids] = True
    for c in range(slot_of.shape[0]):
        slot = slot_of[c]
        if slot < 0 or fresh[c]:
            continue
        todo[c] = False
        row = cache[slot]
        for b in range(ids.shape[0]):
            cache[slots[b], c] = row[ids[b]]
    return todo


@numba.njit(cache=True, nogil=True)
def rows_to_fetch(missing, limit, y, alpha, G, C, slot_of, active, counters):
    """Up to `limit` rows to compute in one block: `missing` first, then the rows the
    solver is likeliest to ask for next — those the gradient reconstruction still needs
    when one is under way, else the most violating samples (LIBSVM's m(α) / M(α) terms)."""
    n_active = counters[ACTIVE]
    score = np.full(y.shape[0], -np.inf)
    if counters[RECONSTRUCT] >= 0:
        for k in range(counters[RECONSTRUCT], n_active):
            t = active[k]
            if 0.0 < alpha[t] < C:
                score[t] = -k  # in the order the reconstruction reads them
    else:
        for k in range(n_active):
            t = active[k]
            up = alpha[t] < C if y[t] > 0 else alpha[t] > 0
            low = alpha[t] > 0 if y[t] > 0 else alpha[t] < C
            s = -np.inf
            if up:
                s = -y[t] * G[t]
            if low:
                s = max(s, y[t] * G[t])
            score[t] = s
    score[missing] = -np.inf
    for t in range(y.shape[0]):
        if slot_of[t] >= 0:
            score[t] = -np.inf
    order = np.argsort(-score)
    out = np.empty(limit, np.int64)
    out[0] = missing
    n = 1
    for t in order:
        if n >= limit or score[t] == -np.inf:
            break
        out[n] = t
        n += 1
    return out[:n]


@numba.njit(cache=True, nogil=True)
def _reconstruct(y, alpha, G, G_bar, C, cache, cols, slot_of, slot_used, active, counters):
    """LIBSVM's reconstruct_gradient, resumable: G of the shrunk samples from G_bar and the
    free α. Returns -1 once done (every sample active again) or the id of a missing row."""
    n = y.shape[0]
    n_active = counters[ACTIVE]
    start = counters[RECONSTRUCT]
    if start == 0:
        for k in range(n_active, n):
            G[active[k]] = G_bar[active[k]] - 1.0
    for k in range(start, n_active):
        t = active[k]
        if not 0.0 < alpha[t] < C:
            continue
        slot = _lookup(t, slot_of, slot_used, counters)
        if slot < 0:
            counters[RECONSTRUCT] = k
            return t
        row = cache[slot]
        a = alpha[t] * y[t]
        for m in range(n_active, n):
            u = active[m]
            G[u] += a * y[u] * row[cols[u]]
    for k in range(n):
        active[k] = k
    counters[ACTIVE] = n
    counters[RECONSTRUCT] = -1
    return -1


@numba.njit(cache=True, nogil=True)
def _shrink(y, alpha, G, C, tol, active, counters):
    """LIBSVM's do_shrinking: drop the samples at a bound that the optimality gap says
    will stay there. Returns True when the gradient must first be reconstructed (the gap
    has come within 10·tol, once per solve: LIBSVM's unshrink)."""
    n_active = counters[ACTIVE]
    g_max1 = -np.inf  # max of -y G over I_up
    g_max2 = -np.inf  # max of y G over I_low
    for k in range(n_active):
        t = active[k]
        if y[t] > 0:
            if alpha[t] < C:
                g_max1 = max(g_max1, -G[t])
            if alpha[t] > 0:
                g_max2 = max(g_max2, G[t])
        else:
            if alpha[t] < C:
                g_max2 = max(g_max2, -G[t])
            if alpha[t] > 0:
                g_max1 = max(g_max1, G[t])
    if counters[UNSHRUNK] == 0 and g_max1 + g_max2 <= tol * 10:
        counters[UNSHRUNK] = 1
        if n_active < y.shape[0]:
            counters[RECONSTRUCT] = 0
            counters[COUNTDOWN] = 0  # then shrink at once, on the whole set
            return True
    kept = 0
    dropped = np.empty(n_active, np.int64)
    n_dropped = 0
    for k in range(n_active):
        t = active[k]
        if alpha[t] >= C:
            shrunk = -G[t] > g_max1 if y[t] > 0 else -G[t] > g_max2
        elif alpha[t] <= 0:
            shrunk = G[t] > g_max2 if y[t] > 0 else G[t] > g_max1
        else:
            shrunk = False
        if shrunk:
            dropped[n_dropped] = t
            n_dropped += 1
        else:
            active[kept] = t
            kept += 1
    active[kept:n_active] = dropped[:n_dropped]  # the shrunk follow the active ones
    counters[ACTIVE] = kept
    return False


@numba.njit(cache=True, nogil=True)
def _settled(n, counters):
    """True when the active set is every sample; else starts the gradient's
    reconstruction, after which optimality is checked on all samples (LIBSVM's way)."""
    if counters[ACTIVE] == n:
        return True
    counters[RECONSTRUCT] = 0
    counters[COUNTDOWN] = 1  # shrink again right after the next step
    return False


@numba.njit(cache=True, nogil=True)
def smo(y, QD, C, tol, max_iter, shrinking, alpha, G, G_bar, cache, cols, slot_of,
        slot_used, active, counters):
    """Run SMO with LIBSVM's WSS2 working-set selection (Fan, Chen & Lin, 2005) and,
    when `shrinking`, its shrinking heuristic.

    y: ±1 labels; QD: the diagonal of Q; alpha, G (gradient Qα − 1) and G_bar (the
    gradient's part from the α at C) are updated in place; active[:counters[ACTIVE]]
    lists the samples not shrunk. Returns OPTIMAL once the maximal violating pair violates
    by less than `tol`; ITERATION_LIMIT after `max_iter` steps; or the id of a missing row
    (≥ 0): store it in the cache and call again.
    """
    n = y.shape[0]
    while True:
        if counters[RECONSTRUCT] >= 0:
            missing = _reconstruct(y, alpha, G, G_bar, C, cache, cols, slot_of, slot_used,
                                   active, counters)
            if missing >= 0:
                return missing
        if counters[ITERATIONS] >= max_iter:
            if counters[ACTIVE] < n:
                counters[RECONSTRUCT] = 0
                continue
            return ITERATION_LIMIT
        if shrinking and counters[COUNTDOWN] <= 0:
            counters[COUNTDOWN] = min(n, SHRINK_EVERY)
            if _shrink(y, alpha, G, C, tol, active, counters):
                continue
        n_active = counters[ACTIVE]

        # i: the index that violates the optimality conditions most (first order)
        g_max = -np.inf
        i = -1
        for k in range(n_active):
            t = active[k]
            if y[t] > 0:
                if alpha[t] < C and -G[t] >= g_max:
                    g_max = -G[t]
                    i = t
            elif alpha[t] > 0 and G[t] >= g_max:
                g_max = G[t]
                i = t
        if i < 0:
            if _settled(n, counters):
                return OPTIMAL
            continue
        slot_i = _lookup(i, slot_of, slot_used, counters)
        if slot_i < 0:
            return i
        K_i = cache[slot_i]

        # j: the partner giving the largest decrease of the objective (second order)
        g_max2 = -np.inf
        j = -1
        best = np.inf
        for k in range(n_active):
            t = active[k]
            if y[t] > 0:
                if alpha[t] > 0:
                    diff = g_max + G[t]
                    if G[t] >= g_max2:
                        g_max2 = G[t]
                    if diff > 0:
                        curve = QD[i] + QD[t] - 2.0 * y[t] * K_i[cols[t]]
                        gain = -(diff * diff) / (curve if curve > 0 else TAU)
                        if gain <= best:
                            best = gain
                            j = t
            elif alpha[t] < C:
                diff = g_max - G[t]
                if -G[t] >= g_max2:
                    g_max2 = -G[t]
                if diff > 0:
                    curve = QD[i] + QD[t] + 2.0 * y[t] * K_i[cols[t]]
                    gain = -(diff * diff) / (curve if curve > 0 else TAU)
                    if gain <= best:
                        best = gain
                        j = t
        if g_max + g_max2 < tol or j < 0:
            if _settled(n, counters):
                return OPTIMAL
            continue
        slot_j = _lookup(j, slot_of, slot_used, counters)
        if slot_j < 0:
            return j
        K_j = cache[slot_j]  # and K_i is still there: the newest rows are never evicted

        # analytic solution of the two-variable subproblem, clipped to the box [0, C]
        old_i = alpha[i]
        old_j = alpha[j]
        K_ij = K_i[cols[j]]
        if y[i] != y[j]:
            curve = QD[i] + QD[j] - 2.0 * K_ij  # Q_ij = -K_ij
            delta = (-G[i] - G[j]) / (curve if curve > 0 else TAU)
            diff = alpha[i] - alpha[j]
            alpha[i] += delta
            alpha[j] += delta
            if diff > 0:
                if alpha[j] < 0:
                    alpha[j] = 0.0
                    alpha[i] = diff
            elif alpha[i] < 0:
                alpha[i] = 0.0
                alpha[j] = -diff
            if diff > 0:
                if alpha[i] > C:
                    alpha[i] = C
                    alpha[j] = C - diff
            elif alpha[j] > C:
                alpha[j] = C
                alpha[i] = C + diff
        else:
            curve = QD[i] + QD[j] - 2.0 * K_ij
            delta = (G[i] - G[j]) / (curve if curve > 0 else TAU)
            total = alpha[i] + alpha[j]
            alpha[i] -= delta
            alpha[j] += delta
            if total > C:
                if alpha[i] > C:
                    alpha[i] = C
                    alpha[j] = total - C
            elif alpha[j] < 0:
                alpha[j] = 0.0
                alpha[i] = total
            if total > C:
                if alpha[j] > C:
                    alpha[j] = C
                    alpha[i] = total - C
            elif alpha[i] < 0:
                alpha[i] = 0.0
                alpha[j] = total
        d_i = (alpha[i] - old_i) * y[i]
        d_j = (alpha[j] - old_j) * y[j]
        for k in range(n_active):
            t = active[k]
            G[t] += y[t] * (K_i[cols[t]] * d_i + K_j[cols[t]] * d_j)
        # G_bar follows the α that reach or leave C, over every sample
        if (old_i >= C) != (alpha[i] >= C):
            step = C * y[i] if alpha[i] >= C else -C * y[i]
            for t in range(n):
                G_bar[t] += y[t] * K_i[cols[t]] * step
        if (old_j >= C) != (alpha[j] >= C):
            step = C * y[j] if alpha[j] >= C else -C * y[j]
            for t in range(n):
                G_bar[t] += y[t] * K_j[cols[t]] * step
        counters[ITERATIONS] += 1
        counters[COUNTDOWN] -= 1


@numba.njit(cache=True, nogil=True)
def offset(y, alpha, G, C):
    """LIBSVM's ρ: the mean of y·G over free α, else the middle of its feasible interval.

    The decision function is Σ α_i y_i K(x_i, x) − ρ.
    """
    upper = np.inf
    lower = -np.inf
    free_sum = 0.0
    n_free = 0
    for t in range(y.shape[0]):
        yg = y[t] * G[t]
        if alpha[t] >= C:
            if y[t] < 0:
                upper = min(upper, yg)
            else:
                lower = max(lower, yg)
        elif alpha[t] <= 0:
            if y[t] > 0:
                upper = min(upper, yg)
            else:
                lower = max(lower, yg)
        else:
            n_free += 1
            free_sum += yg
    if n_free > 0:
        return free_sum / n_free
    return (upper + lower) / 2.0
