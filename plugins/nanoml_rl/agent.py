"""What every agent shares: the environment it learns in, observations as network input,
acting, evaluation over episodes, the return curve, and its networks in the model file.

An agent follows the Learner contract with an environment in place of data:
``fit(env=None)`` learns in `env` (a registered name, ``gymnasium:ID``, or a batch of
environments; default the agent's own), ``predict(obs)`` gives the greedy actions,
``evaluate(env=None)`` the mean and spread of the return over 100 episodes.
"""

import contextlib
import math

import numba
import numpy as np
from tqdm.auto import tqdm

from nanoml import nn
from nanoml.deep import network_state, restore_network_state, show_progress
from nanoml.errors import InputError, ParameterError, UnknownEnvironmentError
from nanoml.learner import Learner
from nanoml.state_schema import Json, Network, StateSchema, Str
from nanoml.tensor import Tensor, no_grad
from nanoml_rl.envs import VectorEnv
from nanoml_rl.make import Checked, make_env
from nanoml_rl.spaces import Box, Discrete

EVALUATION_EPISODES = 100
EVALUATION_SEED = 10_000  # added to the agent's seed: evaluation never replays training
RUNNING_MEAN = 100  # episodes in the running mean of the return curve and progress bar
_NET_PREFIX = "net."


@contextlib.contextmanager
def one_thread():
    """Numba's kernels on one thread within: an agent's batches are a few hundred rows, far
    below what pays for waking a second thread."""
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(threads)


def open_env(env, num_envs):
    """(a batch of environments, its name or None) for `env`: a name, made with
    `num_envs` copies, or an environment batch used as it is."""
    if isinstance(env, str):
        return make_env(env, num_envs), env
    if all(hasattr(env, attr) for attr in ("reset", "step", "single_action_space")):
        return (env if isinstance(env, (VectorEnv, Checked)) else
                Checked(env, type(env).__name__)), None
    raise UnknownEnvironmentError(
        f"env must be an environment's name ('nanoml envs' lists them) or a batch of "
        f"environments, got {type(env).__name__}", argument="env")


def space_json(space):
    if isinstance(space, Discrete):
        return {"kind": "discrete", "n": space.n}
    return {"kind": "box", "low": space.low.tolist(), "high": space.high.tolist()}


def check_space_json(data):
    """Raise ValueError unless `data` is a space as `space_json` writes it."""
    if data["kind"] == "discrete":
        n = data["n"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"a discrete space needs a positive integer n, got {n!r}")
    elif data["kind"] == "box":
        low, high = np.asarray(data["low"], np.float64), np.asarray(data["high"], np.float64)
        if low.shape != high.shape or low.size == 0 or not np.all(low <= high):
            raise ValueError("a box needs low <= high, both of one shape")
    else:
        raise ValueError(f"unknown kind of space {data['kind']!r}")


def space_from_json(data):
    if data["kind"] == "discrete":
        return Discrete(int(data["n"]))
    return Box(np.asarray(data["low"], dtype=np.float32),
               np.asarray(data["high"], dtype=np.float32))


def n_features(space):
    """Network inputs for an observation of `space` (one-hot for a Discrete one)."""
    return space.n if isinstance(space, Discrete) else int(np.prod(space.shape))


def features(obs, space):
    """Observations (n, *shape) as float32 network input (n, n_features)."""
    if isinstance(space, Discrete):
        return np.eye(space.n, dtype=np.float32)[obs]
    return np.asarray(obs, dtype=np.float32).reshape(obs.shape[0], -1)


def mlp(sizes, rng, activation=nn.Tanh):
    """Linear layers of `sizes` (inputs, hidden..., outputs) with `activation` between."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b, rng=rng))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def forward(module, x):
    """The module's output on float32 rows `x`, without a graph, as an array."""
    with no_grad():
        return module(Tensor(x)).data


def log_episodes(history, info, done, step):
    """Append the episodes finished at `step` (where `done`) to `history`."""
    for i in np.flatnonzero(done):
        history["episode_return"].append(float(info["episode_return"][i]))
        history["episode_step"].append(int(step))


def recent_return(history, episodes=RUNNING_MEAN):
    """Mean return of the last `episodes` episodes (nan before the first)."""
    returns = history["episode_return"][-episodes:]
    return float(np.mean(returns)) if returns else math.nan


def progress(total, name):
    """A progress bar over environment steps: steps/s, and the current return as postfix."""
    return tqdm(total=total, desc=name, unit="step", unit_scale=True, leave=False,
                disable=not show_progress(), dynamic_ncols=True)


def play(env, act, episodes, seed):
    """Returns of `episodes` episodes of the policy `act` (observations -> actions) in the
    batch `env`, run side by side from ``reset(seed=seed)``; each environment contributes
    an equal share, its first episodes, so the set does not favour short episodes."""
    quota = math.ceil(episodes / env.num_envs)
    counts = np.zeros(env.num_envs, dtype=np.int64)
    returns = []
    obs, _ = env.reset(seed=seed)
    while len(returns) < episodes:
        obs, _, terminated, truncated, info = env.step(act(obs))
        for i in np.flatnonzero(terminated | truncated):
            if counts[i] < quota and len(returns) < episodes:
                returns.append(float(info["episode_return"][i]))
            counts[i] += 1
    return returns


def linear_schedule(start, end, duration, t):
    """`start` moving linearly to `end` over `duration` steps, then `end`."""
    return end + (start - end) * max(0.0, 1.0 - t / duration) if duration > 0 else end


def _network_weight(name):
    """(attribute, parameter) for a ``net.<attribute>.<parameter>`` array, else None."""
    if not name.startswith(_NET_PREFIX):
        return None
    attribute, _, parameter = name[len(_NET_PREFIX):].partition(".")
    return attribute, parameter


class Agent(Learner):
    """Base of the agents: subclasses define `_learn(env)`, `_build(rng)` (their networks
    from ``spaces_``, as name -> module) and `_act(obs)` (greedy actions)."""

    task = "reinforcement"
    default_dataset = "CartPole-v1"
    discrete_actions_only = True
    num_envs = 1  # the batch an agent learns in; agents with the hyperparameter override it
    # The networks' weights are checked against the networks `_build` makes from spaces_.
    state_schema = StateSchema(
        spaces_=Json(check=lambda spaces: [check_space_json(spaces[k])
                                           for k in ("observation", "action")]),
        env_name_=Str(none=True),
        history_=Json(),
        evaluations_=Json(optional=True),
        networks=Network(_NET_PREFIX),
    )

    def check_params(self):
        """Raise ParameterError naming the first hyperparameter with an invalid value."""

    def fit(self, env=None, y=None):
        """Learn in `env` (default: the agent's own environment); -> self."""
        self.check_params()
        env = self.default_dataset if env is None else env
        with one_thread():
            environment, name = open_env(env, self.num_envs)
            self._start(environment, name)
            self._learn(environment)
        return self

    def _start(self, env, name):
        """Forget what an earlier fit learned; keep what the environment is like."""
        for key in self._learned_names():
            delattr(self, key)
        action_space = env.single_action_space
        if self.discrete_actions_only and not isinstance(action_space, Discrete):
            raise ParameterError(f"{self.name} needs discrete actions; the environment's are "
                                 f"{action_space.describe()}", argument="env")
        self.spaces_ = {"observation": space_json(env.single_observation_space),
                        "action": space_json(action_space)}
        self.env_name_ = name
        self.history_ = {"episode_return": [], "episode_step": []}

    @property
    def observation_space(self):
        return space_from_json(self.spaces_["observation"])

    @property
    def action_space(self):
        return space_from_json(self.spaces_["action"])

    def predict(self, X):
        """Greedy actions for observations X (one observation, or a batch of them)."""
        self.check_fitted()
        space = self.observation_space
        obs = np.asarray(X)
        single = obs.shape == space.shape
        obs = obs[None] if single else obs
        if obs.shape[1:] != space.shape:
            raise InputError(f"observations must have shape {space.shape} (or a batch of "
                             f"them), got {np.asarray(X).shape}", argument="X")
        if isinstance(space, Discrete):
            if obs.dtype.kind not in "iu" or obs.min() < 0 or obs.max() >= space.n:
                raise InputError(f"observations must be integers in 0..{space.n - 1}",
                                 argument="X")
        elif not np.isfinite(obs).all():
            raise InputError("observations contain NaN or infinite values", argument="X")
        with one_thread():
            actions = self._act(obs)
        return actions[0] if single else actions

    def evaluate(self, X=None, y=None, episodes=EVALUATION_EPISODES):
        """Mean and standard deviation of the return of the greedy policy over `episodes`
        episodes of `X` (default: the environment it learned in), run side by side."""
        self.check_fitted()
        env = X if X is not None else self.env_name_ or self.default_dataset
        env, _ = open_env(env, episodes)
        with one_thread():
            returns = play(env, self._act, episodes, self.seed + EVALUATION_SEED)
        return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)),
                "episodes": episodes}

    def score(self, X=None, y=None):
        """Mean return over evaluation episodes."""
        return self.evaluate(X)["mean_return"]

    def write_artifacts(self, folder, dataset):
        """returns.png: the return of each training episode and its running mean."""
        from nanoml_rl.figures import plot_returns

        plot_returns(self.history_, f"{folder}/returns.png",
                     title=f"{self.name} on {dataset.name}: episodic return",
                     window=RUNNING_MEAN)
        return ["returns.png"]

    # -- persistence: networks as ``net.<attribute>.<parameter>`` arrays ------------------
    def _get_state(self):
        return network_state(self, lambda attribute: f"{_NET_PREFIX}{attribute}.")

    def _set_state(self, plain, arrays):
        weights = restore_network_state(self, plain, arrays, _network_weight)
        for key, module in self._build(np.random.default_rng(0)).items():
            setattr(self, key, module.load_state_dict(weights[key]).eval())

    def _build(self, rng):
        return {}

    def _act(self, obs):
        raise NotImplementedError

    def _learn(self, env):
        raise NotImplementedError
