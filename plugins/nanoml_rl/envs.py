"""The embedded environments: batches of CartPole, FrozenLake and Pendulum, stepped by the
Numba kernels of `nanoml_rl.env_kernels`, with Gymnasium's vector-environment API::

    env = CartPole(num_envs=16)
    obs, info = env.reset(seed=0)            # obs: (16, 4) float32
    obs, reward, terminated, truncated, info = env.step(actions)

An environment whose episode ends is reset within the same step (``obs`` starts its next
episode); ``info`` holds ``final_obs`` (the finished episodes' last observations) and
``episode_return`` / ``episode_length`` (valid where ``terminated | truncated``).
"""

import numpy as np

from nanoml.errors import InputError, ParameterError
from nanoml.validation import check_number
from nanoml_rl import env_kernels
from nanoml_rl.spaces import Discrete, box

DRAW_BLOCK = 256  # steps of random numbers drawn at once

FROZEN_LAKE_MAPS = {
    "4x4": ("SFFF", "FHFH", "FFFH", "HFFG"),
    "8x8": ("SFFFFFFF", "FFFFFFFF", "FFFHFFFF", "FFFFFHFF", "FFFHFFFF", "FHHFFFHF",
            "FHFFHFHF", "FFFHFFFG"),
}


class VectorEnv:
    """A batch of `num_envs` copies of one environment; subclasses set the spaces, the
    episode limit and `_kernel_step`."""

    name = None
    description = ""
    max_episode_steps = None
    single_observation_space = None
    single_action_space = None

    def __init__(self, num_envs=1):
        self.num_envs = int(check_number("num_envs", num_envs, low=1, integer=True))
        self._rng = np.random.default_rng()
        self._draws, self._drawn = None, 0
        self._returns = np.zeros(self.num_envs)
        self._lengths = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, seed=None):
        """Start a new episode in every environment; -> (obs, info)."""
        if seed is not None or not hasattr(self, "_state"):
            self._rng = np.random.default_rng(seed)
        self._draws = None
        self._returns[:] = 0.0
        self._lengths[:] = 0
        self._state = self._initial_state(self.num_envs)
        return self._observe(self._state), {}

    def step(self, actions):
        """Act in every environment; -> (obs, reward, terminated, truncated, info)."""
        if not hasattr(self, "_state"):
            raise InputError(f"{self.name}: call reset() before step()")
        actions = self._check_actions(actions)
        n = self.num_envs
        space = self.single_observation_space
        obs, final_obs = np.empty((2, n, *space.shape), dtype=space.dtype)
        reward = np.empty(n, dtype=np.float32)
        terminated, truncated = np.empty((2, n), dtype=np.bool_)
        episode_return = np.empty(n)
        episode_length = np.empty(n, dtype=np.int64)
        bad = self._kernel_step(actions, self._next_draw(), self._returns, self._lengths, obs,
                                final_obs, reward, terminated, truncated, episode_return,
                                episode_length)
        if bad >= 0:
            raise InputError(
                f"{self.name}: action {actions[bad].tolist()!r} of environment {bad} is not in the "
                f"action space {self.single_action_space.describe()}", argument="action")
        info = {"final_obs": final_obs, "episode_return": episode_return,
                "episode_length": episode_length}
        return obs, reward, terminated, truncated, info

    def _check_actions(self, actions):
        space = self.single_action_space
        actions = np.asarray(actions)
        expected = (self.num_envs, *space.shape)
        if actions.shape != expected:
            raise InputError(f"{self.name}: actions must have shape {expected} (one per "
                             f"environment), got {actions.shape}", argument="action")
        if isinstance(space, Discrete):
            if actions.dtype.kind not in "iu":
                raise InputError(f"{self.name}: actions must be integers in 0..{space.n - 1}, "
                                 f"got {actions.dtype}", argument="action")
            return actions.astype(np.int64, copy=False)
        return np.ascontiguousarray(actions, dtype=np.float64)

    def _next_draw(self):
        """This step's random numbers (reset states, slips), drawn DRAW_BLOCK steps at a
        time: one generator call per step would cost as much as the step itself."""
        if self._draws is None or self._drawn == self._draws.shape[0]:
            self._draws, self._drawn = self._draw(DRAW_BLOCK), 0
        self._drawn += 1
        return self._draws[self._drawn - 1]

    def _draw(self, steps):
        """Random numbers for `steps` steps of the batch, (steps, num_envs, ...)."""
        raise NotImplementedError

    def _observe(self, state):
        raise NotImplementedError

    def _initial_state(self, n):
        raise NotImplementedError

    def _kernel_step(self, actions, draw, *buffers):
        raise NotImplementedError

    def close(self):
        """Nothing to release; here for Gymnasium's API."""


class CartPole(VectorEnv):
    """CartPole-v1: push a cart left or right to keep its pole upright (Gymnasium's dynamics)."""

    name = "CartPole-v1"
    description = "balance a pole on a cart: 2 actions, reward 1 a step, 500 steps at most"
    max_episode_steps = 500
    _high = np.array([env_kernels.X_LIMIT * 2, np.inf, env_kernels.THETA_LIMIT * 2, np.inf])
    single_observation_space = box(-_high, _high)
    single_action_space = Discrete(2)

    def _initial_state(self, n):
        return self._rng.uniform(-0.05, 0.05, size=(n, 4))

    def _observe(self, state):
        return state.astype(np.float32)

    def _draw(self, steps):
        return self._rng.uniform(-0.05, 0.05, size=(steps, self.num_envs, 4))

    def _kernel_step(self, actions, draw, *buffers):
        return env_kernels.cartpole_step(self._state, actions, draw, self.max_episode_steps,
                                         *buffers)


class FrozenLake(VectorEnv):
    """FrozenLake-v1: walk from the top-left corner to the goal without falling in a hole."""

    def __init__(self, num_envs=1, map_name="4x4", is_slippery=True):
        if map_name not in FROZEN_LAKE_MAPS:
            raise ParameterError(f"map_name must be one of {', '.join(FROZEN_LAKE_MAPS)}, got "
                                 f"{map_name!r}", argument="map_name")
        super().__init__(num_envs)
        rows = FROZEN_LAKE_MAPS[map_name]
        self.map_name, self.is_slippery = map_name, bool(is_slippery)
        self.tiles = np.array([{"F": 0, "H": 1, "G": 2, "S": 3}[c] for c in "".join(rows)],
                              dtype=np.int64)
        self.n_cols = len(rows[0])
        self.max_episode_steps = 100 if map_name == "4x4" else 200
        self.single_observation_space = Discrete(self.tiles.size)
        self.single_action_space = Discrete(4)
        self.name = f"FrozenLake{'' if self.is_slippery else 'NotSlippery'}-{map_name}"

    def _initial_state(self, n):
        return np.zeros(n, dtype=np.int64)

    def _observe(self, state):
        return state.copy()

    def _draw(self, steps):
        if self.is_slippery:
            return self._rng.random((steps, self.num_envs))
        return np.full((steps, self.num_envs), 0.5)

    def _kernel_step(self, actions, draw, *buffers):
        return env_kernels.frozen_lake_step(self._state, actions, draw, self.tiles,
                                            self.n_cols, self.max_episode_steps, *buffers)


class Pendulum(VectorEnv):
    """Pendulum-v1: swing a pendulum up and hold it there with a bounded torque."""

    name = "Pendulum-v1"
    description = "swing up a pendulum: torque in [-2, 2], 200 steps, reward -cost"
    max_episode_steps = 200
    single_observation_space = box([-1.0, -1.0, -8.0], [1.0, 1.0, 8.0])
    single_action_space = box([-2.0], [2.0])

    def _initial_state(self, n):
        return self._rng.uniform([-np.pi, -1.0], [np.pi, 1.0], size=(n, 2))

    def _observe(self, state):
        theta, speed = state[:, 0], state[:, 1]
        return np.stack([np.cos(theta), np.sin(theta), speed], axis=1).astype(np.float32)

    def _draw(self, steps):
        return self._rng.uniform([-np.pi, -1.0], [np.pi, 1.0], size=(steps, self.num_envs, 2))

    def _kernel_step(self, actions, draw, *buffers):
        return env_kernels.pendulum_step(self._state, actions, draw, self.max_episode_steps,
                                         *buffers)


def frozen_lake(map_name, is_slippery):
    """A maker of FrozenLake batches on one map: what the registry holds."""
    def make(num_envs=1):
        return FrozenLake(num_envs, map_name=map_name, is_slippery=is_slippery)
    return make


# name -> (maker(num_envs), description), as the plugin registers them
EMBEDDED = {
    "CartPole-v1": (CartPole, CartPole.description),
    "Pendulum-v1": (Pendulum, Pendulum.description),
    **{
        f"FrozenLake{'' if slippery else 'NotSlippery'}-{size}": (
            frozen_lake(size, slippery),
            f"walk a {size} frozen lake to its goal: 4 actions, reward 1 at the goal"
            + ("" if slippery else "; no slipping"),
        )
        for size in FROZEN_LAKE_MAPS for slippery in (True, False)
    },
}
