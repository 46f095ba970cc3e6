"""Kernels of the agents: advantage estimation and the tabular Q-learning update.

Policy: ``cache=True``, serial (short loops with a dependency along time or over updates
that may touch one table entry twice), no ``fastmath``.
"""

import numba


@numba.njit(cache=True)
def gae(rewards, values, next_values, terminated, done, gamma, lam, advantages):
    """Generalised advantage estimation (Schulman et al. 2016) over a rollout of (T, n)
    steps: `next_values` are the values of the observations each step led to (the
    finished episode's last one where `done`), zero where `terminated`; an episode's
    advantages stop where it is `done`."""
    T, n = rewards.shape
    for j in range(n):
        running = 0.0
        for t in range(T - 1, -1, -1):
            bootstrap = 0.0 if terminated[t, j] else next_values[t, j]
            delta = rewards[t, j] + gamma * bootstrap - values[t, j]
            if done[t, j]:
                running = 0.0
            running = delta + gamma * lam * running
            advantages[t, j] = running


@numba.njit(cache=True)
def discounted_returns(rewards, done, gamma, returns):
    """Reward-to-go of each step of a (T, n) rollout, restarting where an episode is
    `done`; steps after an environment's last finished episode are left unfinished
    (their return counts only the rewards seen)."""
    T, n = rewards.shape
    for j in range(n):
        running = 0.0
        for t in range(T - 1, -1, -1):
            if done[t, j]:
                running = 0.0
            running = rewards[t, j] + gamma * running
            returns[t, j] = running


@numba.njit(cache=True)
def q_update(table, states, actions, rewards, next_states, terminated, alpha, gamma):
    """One Q-learning step (Watkins 1989) for each transition, in order:
    Q(s, a) += alpha (r + gamma max Q(s', .) - Q(s, a)), no bootstrap past a terminal state."""
    for i in range(states.shape[0]):
        target = rewards[i]
        if not terminated[i]:
            best = table[next_states[i], 0]
            for b in range(1, table.shape[1]):
                best = max(best, table[next_states[i], b])
            target += gamma * best
        s, a = states[i], actions[i]
        table[s, a] += alpha * (target - table[s, a])
