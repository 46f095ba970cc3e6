"""Step kernels of the embedded environments, each over a batch of environments.

A kernel advances every environment of the batch by one step and resets, in the same step,
the ones whose episode ended (Gymnasium's same-step autoreset): ``obs`` then holds the new
episode's first observation and ``final_obs`` the last one of the finished episode. The
caller draws the random numbers (reset states, slips) with its seeded generator and passes
them in, so that a seed fixes a run. Each kernel writes every output element and returns
the index of the first invalid action, or -1.

Policy: ``cache=True``, no ``fastmath`` (the dynamics must match Gymnasium's to 1e-6),
serial (a batch of tens of environments is far below a thread's start-up cost).
"""

import math

import numba

# CartPole-v1 (Gymnasium, after Barto, Sutton and Anderson 1983)
GRAVITY = 9.8
MASS_POLE = 0.1
TOTAL_MASS = 1.1
HALF_LENGTH = 0.5
POLE_MASS_LENGTH = 0.05
FORCE = 10.0
TAU = 0.02
X_LIMIT = 2.4
THETA_LIMIT = 12 * 2 * math.pi / 360

# Pendulum-v1
MAX_SPEED = 8.0
MAX_TORQUE = 2.0
DT = 0.05
G = 10.0


@numba.njit(cache=True)
def _finish(i, reward, done, returns, lengths, episode_return, episode_length):
    """Add `reward` to environment i's episode; on `done`, report the episode and restart
    the count (else report nan and 0)."""
    returns[i] += reward
    lengths[i] += 1
    episode_return[i] = math.nan
    episode_length[i] = 0
    if done:
        episode_return[i] = returns[i]
        episode_length[i] = lengths[i]
        returns[i] = 0.0
        lengths[i] = 0


@numba.njit(cache=True)
def cartpole_step(state, actions, reset_state, max_steps, returns, lengths, obs, final_obs,
                  reward, terminated, truncated, episode_return, episode_length):
    """One Euler step of CartPole-v1 for each row of `state` (n, 4: x, x', θ, θ')."""
    for i in range(state.shape[0]):
        if actions[i] != 0 and actions[i] != 1:
            return i
    for i in range(state.shape[0]):
        x, x_dot, theta, theta_dot = state[i, 0], state[i, 1], state[i, 2], state[i, 3]
        force = FORCE if actions[i] == 1 else -FORCE
        cos, sin = math.cos(theta), math.sin(theta)
        temp = (force + POLE_MASS_LENGTH * theta_dot * theta_dot * sin) / TOTAL_MASS
        theta_acc = (GRAVITY * sin - cos * temp) / (
            HALF_LENGTH * (4.0 / 3.0 - MASS_POLE * cos * cos / TOTAL_MASS))
        x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS
        x = x + TAU * x_dot
        x_dot = x_dot + TAU * x_acc
        theta = theta + TAU * theta_dot
        theta_dot = theta_dot + TAU * theta_acc
        state[i, 0], state[i, 1], state[i, 2], state[i, 3] = x, x_dot, theta, theta_dot
        fell = x < -X_LIMIT or x > X_LIMIT or theta < -THETA_LIMIT or theta > THETA_LIMIT
        terminated[i] = fell
        truncated[i] = not fell and lengths[i] + 1 >= max_steps
        reward[i] = 1.0
        done = terminated[i] or truncated[i]
        _finish(i, 1.0, done, returns, lengths, episode_return, episode_length)
        for k in range(4):
            final_obs[i, k] = state[i, k]
            if done:
                state[i, k] = reset_state[i, k]
            obs[i, k] = state[i, k]
    return -1


@numba.njit(cache=True)
def frozen_lake_step(position, actions, slips, tiles, n_cols, max_steps, returns, lengths,
                     obs, final_obs, reward, terminated, truncated, episode_return,
                     episode_length):
    """One move on a FrozenLake map for each environment.

    `tiles` holds the map row by row (0 frozen, 1 hole, 2 goal, 3 start); actions are 0
    left, 1 down, 2 right, 3 up. `slips` (n,) are uniform draws in [0, 1): a slippery lake
    passes values in [0, 1) (a third each: turn left of the intended move, keep it, turn
    right, as Gymnasium's slip rule), a firm one passes 0.5 (always the intended move).
    """
    n_rows = tiles.shape[0] // n_cols
    for i in range(position.shape[0]):
        if actions[i] < 0 or actions[i] > 3:
            return i
    for i in range(position.shape[0]):
        move = (actions[i] + int(slips[i] * 3.0) - 1) % 4
        row, col = position[i] // n_cols, position[i] % n_cols
        if move == 0:
            col = max(col - 1, 0)
        elif move == 1:
            row = min(row + 1, n_rows - 1)
        elif move == 2:
            col = min(col + 1, n_cols - 1)
        else:
            row = max(row - 1, 0)
        cell = row * n_cols + col
        tile = tiles[cell]
        terminated[i] = tile == 1 or tile == 2
        truncated[i] = not terminated[i] and lengths[i] + 1 >= max_steps
        reward[i] = 1.0 if tile == 2 else 0.0
        done = terminated[i] or truncated[i]
        _finish(i, reward[i], done, returns, lengths, episode_return, episode_length)
        final_obs[i] = cell
        position[i] = 0 if done else cell  # every map starts in its top-left corner
        obs[i] = position[i]
    return -1


@numba.njit(cache=True)
def pendulum_step(state, torque, reset_state, max_steps, returns, lengths, obs, final_obs,
                  reward, terminated, truncated, episode_return, episode_length):
    """One step of Pendulum-v1 for each row of `state` (n, 2: θ, θ'); the torque is
    clipped to ±2 as Gymnasium does. A NaN torque is an invalid action."""
    for i in range(state.shape[0]):
        if math.isnan(torque[i, 0]):
            return i
    for i in range(state.shape[0]):
        theta, speed = state[i, 0], state[i, 1]
        u = min(max(torque[i, 0], -MAX_TORQUE), MAX_TORQUE)
        angle = ((theta + math.pi) % (2 * math.pi)) - math.pi
        cost = angle * angle + 0.1 * speed * speed + 0.001 * u * u
        speed = speed + (3.0 * G / 2.0 * math.sin(theta) + 3.0 * u) * DT
        speed = min(max(speed, -MAX_SPEED), MAX_SPEED)
        theta = theta + speed * DT
        terminated[i] = False
        truncated[i] = lengths[i] + 1 >= max_steps
        reward[i] = -cost
        done = truncated[i]
        _finish(i, -cost, done, returns, lengths, episode_return, episode_length)
        final_obs[i, 0], final_obs[i, 1], final_obs[i, 2] = (
            math.cos(theta), math.sin(theta), speed)
        if done:
            theta, speed = reset_state[i, 0], reset_state[i, 1]
        state[i, 0], state[i, 1] = theta, speed
        obs[i, 0], obs[i, 1], obs[i, 2] = math.cos(theta), math.sin(theta), speed
    return -1
