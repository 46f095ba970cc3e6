"""Environments by name: the registered ones, and Gymnasium's as ``gymnasium:ID``.

Environments that are not nanoml's own kernels (a third-party plugin's, Gymnasium's) are
wrapped in `Checked`, which refuses a NaN or infinite observation or reward with one line
naming the environment, instead of letting it poison a network's weights.
"""

import numpy as np

from nanoml.errors import InputError, UnknownEnvironmentError
from nanoml_rl.envs import VectorEnv
from nanoml_rl.spaces import Box, Discrete

GYMNASIUM = "gymnasium:"


def make_env(name, num_envs=1):
    """A batch of `num_envs` copies of the environment called `name`."""
    if not isinstance(name, str):
        raise UnknownEnvironmentError(
            f"env must be an environment's name or an environment, got {name!r}",
            argument="env")
    if name.startswith(GYMNASIUM):
        return Checked(GymnasiumEnv(name[len(GYMNASIUM):], num_envs), name)
    from nanoml.plugins import plugin_set

    env = plugin_set().environment(name).make(num_envs)
    return env if isinstance(env, VectorEnv) else Checked(env, name)


def space_of(space, what):
    """A Gymnasium space as nanoml's (Discrete or Box); other kinds are refused."""
    if isinstance(space, (Discrete, Box)):
        return space
    kind = type(space).__name__
    if kind == "Discrete" and int(getattr(space, "start", 0)) == 0:
        return Discrete(int(space.n))
    if kind == "Box":
        return Box(np.asarray(space.low, dtype=np.float32),
                   np.asarray(space.high, dtype=np.float32))
    raise InputError(f"{what} is a {kind} space; nanoml's agents handle Discrete (from 0) "
                     "and Box spaces", argument="env")


class Checked:
    """An environment whose observations and rewards are checked to be finite."""

    def __init__(self, env, name):
        self.env, self.name = env, name
        self.num_envs = env.num_envs
        self.single_observation_space = space_of(env.single_observation_space,
                                                 f"{name}'s observation space")
        self.single_action_space = space_of(env.single_action_space, f"{name}'s action space")

    def reset(self, seed=None):
        obs, info = self.env.reset(seed=seed)
        return self._finite(obs, "observation", "after reset"), info

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        self._finite(reward, "reward", "in a step")
        return (self._finite(obs, "observation", "in a step"), reward,
                np.asarray(terminated), np.asarray(truncated), info)

    def _finite(self, values, what, when):
        values = np.asarray(values)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            bad = np.argwhere(~np.isfinite(values))[0]
            raise InputError(f"environment '{self.name}' returned a non-finite {what} {when} "
                             f"(environment {bad[0]}): {values[tuple(bad)]}", argument="env")
        return values

    def close(self):
        self.env.close()


class GymnasiumEnv:
    """`num_envs` copies of the installed Gymnasium environment `env_id`, with the
    embedded environments' conventions: same-step autoreset, and ``info`` holding
    ``final_obs``, ``episode_return`` and ``episode_length``."""

    def __init__(self, env_id, num_envs=1):
        try:
            import gymnasium
        except ImportError:
            raise UnknownEnvironmentError(
                f"environment '{GYMNASIUM}{env_id}' needs Gymnasium, which is not installed: "
                "pip install gymnasium", argument="env") from None
        try:
            self.envs = [gymnasium.make(env_id) for _ in range(num_envs)]
        except gymnasium.error.Error as exc:
            raise UnknownEnvironmentError(f"Gymnasium has no environment '{env_id}': {exc}",
                                          argument="env") from None
        self.num_envs = num_envs
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self._returns = np.zeros(num_envs)
        self._lengths = np.zeros(num_envs, dtype=np.int64)

    def reset(self, seed=None):
        self._returns[:] = 0.0
        self._lengths[:] = 0
        seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        obs = [env.reset(seed=s)[0] for env, s in zip(self.envs, seeds, strict=True)]
        return np.stack(obs), {}

    def step(self, actions):
        n = self.num_envs
        obs, final_obs = [], []
        reward = np.zeros(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        episode_return = np.full(n, np.nan)
        episode_length = np.zeros(n, dtype=np.int64)
        for i, env in enumerate(self.envs):
            o, reward[i], terminated[i], truncated[i], _ = env.step(actions[i])
            self._returns[i] += reward[i]
            self._lengths[i] += 1
            final_obs.append(o)
            if terminated[i] or truncated[i]:
                episode_return[i], episode_length[i] = self._returns[i], self._lengths[i]
                self._returns[i], self._lengths[i] = 0.0, 0
                o, _ = env.reset()
            obs.append(o)
        info = {"final_obs": np.stack(final_obs), "episode_return": episode_return,
                "episode_length": episode_length}
        return np.stack(obs), reward, terminated, truncated, info

    def close(self):
        for env in self.envs:
            env.close()
