"""Numba kernels of the kernel SVM: LIBSVM's SMO solver with second-order working sets.

The solver minimises the C-SVC dual ½ αᵀQα − Σα subject to yᵀα = 0, 0 ≤ α ≤ C, where
Q[i, j] = y_i y_j K(x_i, x_j). Rows of Q live in a cache of fixed slots (least recently
used goes first); the caller computes kernel rows, so that the one kernel evaluation the
plugin has (NumPy, on the shared pairwise distances) serves both fitting and prediction.
When the solver needs a row the cache lacks, it returns and says which row and slot to
fill; called again with the same state, it picks up where it stopped.
"""

import numba
import numpy as np

TAU = 1e-12  # LIBSVM's floor on the curvature of a working pair
# counters[] of the solver's resumable state
ITERATIONS, CLOCK, SLOT = 0, 1, 2
OPTIMAL, MISSING_ROW, ITERATION_LIMIT = -1, 0, -2


@numba.njit(cache=True, nogil=True, fastmath=False)
def _row(i, slot_of, slot_row, slot_used, counters):
    """Slot holding row i of Q, or -1 after reserving the least recently used slot for it.

    The row just used is the most recent, so with two slots or more, reserving a slot for
    the second row of a working pair never evicts the first.
    """
    counters[CLOCK] += 1
    slot = slot_of[i]
    if slot >= 0:
        slot_used[slot] = counters[CLOCK]
        return slot
    slot = np.argmin(slot_used)
    if slot_row[slot] >= 0:
        slot_of[slot_row[slot]] = -1
    slot_row[slot] = i
    slot_of[i] = slot  # the caller fills the slot before calling the solver again
    slot_used[slot] = counters[CLOCK]
    counters[SLOT] = slot
    return -1


@numba.njit(cache=True, nogil=True, fastmath=False)
def smo(y, QD, C, tol, max_iter, alpha, G, cache, slot_of, slot_row, slot_used, counters):
    """Run SMO with LIBSVM's WSS2 working-set selection (Fan, Chen & Lin, 2005).

    y: ±1 labels; QD: the diagonal of Q; alpha, G (gradient Qα − 1) are updated in place.
    cache[slot] holds row slot_row[slot] of Q; slot_of maps a row to its slot or -1;
    slot_used holds each slot's last use. Returns OPTIMAL once the maximal violating pair
    violates by less than `tol`; ITERATION_LIMIT after `max_iter` steps; or the id of a
    missing row (≥ 0) after reserving counters[SLOT] for it: fill that slot with the row
    and call again.
    """
    n = y.shape[0]
    while counters[ITERATIONS] < max_iter:
        # i: the index that violates the optimality conditions most (first order)
        g_max = -np.inf
        i = -1
        for t in range(n):
            if y[t] > 0:
                if alpha[t] < C and -G[t] >= g_max:
                    g_max = -G[t]
                    i = t
            elif alpha[t] > 0 and G[t] >= g_max:
                g_max = G[t]
                i = t
        if i < 0:
            return OPTIMAL
        slot_i = _row(i, slot_of, slot_row, slot_used, counters)
        if slot_i < 0:
            return i
        Q_i = cache[slot_i]

        # j: the partner giving the largest decrease of the objective (second order)
        g_max2 = -np.inf
        j = -1
        best = np.inf
        for t in range(n):
            if y[t] > 0:
                if alpha[t] > 0:
                    diff = g_max + G[t]
                    if G[t] >= g_max2:
                        g_max2 = G[t]
                    if diff > 0:
                        curve = QD[i] + QD[t] - 2.0 * y[i] * Q_i[t]
                        gain = -(diff * diff) / (curve if curve > 0 else TAU)
                        if gain <= best:
                            best = gain
                            j = t
            elif alpha[t] < C:
                diff = g_max - G[t]
                if -G[t] >= g_max2:
                    g_max2 = -G[t]
                if diff > 0:
                    curve = QD[i] + QD[t] + 2.0 * y[i] * Q_i[t]
                    gain = -(diff * diff) / (curve if curve > 0 else TAU)
                    if gain <= best:
                        best = gain
                        j = t
        if g_max + g_max2 < tol or j < 0:
            return OPTIMAL
        slot_j = _row(j, slot_of, slot_row, slot_used, counters)
        if slot_j < 0:
            return j
        Q_j = cache[slot_j]

        # analytic solution of the two-variable subproblem, clipped to the box [0, C]
        old_i = alpha[i]
        old_j = alpha[j]
        if y[i] != y[j]:
            curve = QD[i] + QD[j] + 2.0 * Q_i[j]
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
            curve = QD[i] + QD[j] - 2.0 * Q_i[j]
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
        d_i = alpha[i] - old_i
        d_j = alpha[j] - old_j
        for t in range(n):
            G[t] += Q_i[t] * d_i + Q_j[t] * d_j
        counters[ITERATIONS] += 1
    return ITERATION_LIMIT


@numba.njit(cache=True, nogil=True, fastmath=False)
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
