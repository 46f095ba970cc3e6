"""Stochastic policies of the policy-gradient agents: a categorical one over discrete
actions (logits from a network), and a Gaussian one over continuous actions (means from a
network, a learned log standard deviation per action), as shared small functions."""

import math

import numpy as np

from nanoml import nn
from nanoml.functional import log_softmax
from nanoml.tensor import Tensor
from nanoml_rl.agent import forward, mlp, n_features
from nanoml_rl.spaces import Discrete

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class GaussianPolicy(nn.Module):
    """Means of a Gaussian from an MLP; `log_std` a parameter of its own per action."""

    def __init__(self, sizes, rng):
        super().__init__()
        self.mean = mlp(sizes, rng)
        self.log_std = nn.Parameter(np.zeros(sizes[-1], dtype=np.float32))

    def forward(self, x):
        return self.mean(x)


def policy_network(observation_space, action_space, hidden, rng):
    """The policy for these spaces: logits for Discrete actions, a GaussianPolicy for Box."""
    if isinstance(action_space, Discrete):
        return mlp((n_features(observation_space), *hidden, action_space.n), rng)
    return GaussianPolicy((n_features(observation_space), *hidden, action_space.shape[0]), rng)


def sample(policy, x, action_space, rng):
    """Actions drawn from the policy for rows `x`, and their log-probabilities (arrays)."""
    out = forward(policy, x).astype(np.float64)
    if isinstance(action_space, Discrete):
        logp = out - out.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        cumulative = np.exp(logp).cumsum(axis=1)
        draws = rng.random((x.shape[0], 1)) * cumulative[:, -1:]
        actions = np.minimum((cumulative < draws).sum(axis=1), action_space.n - 1)
        return actions, logp[np.arange(x.shape[0]), actions]
    log_std = policy.log_std.data.astype(np.float64)
    noise = rng.standard_normal(out.shape)
    actions = out + np.exp(log_std) * noise
    logp = (-0.5 * noise**2 - log_std - _LOG_SQRT_2PI).sum(axis=1)
    return actions, logp


def greedy(policy, x, action_space):
    """The most likely actions: the largest logit, or the Gaussian's mean within bounds."""
    out = forward(policy, x)
    if isinstance(action_space, Discrete):
        return out.argmax(axis=1)
    return np.clip(out, action_space.low, action_space.high)


def log_prob_and_entropy(policy, x, actions, action_space):
    """Tensors: log-probability of `actions` at rows `x` (n,), and mean entropy (scalar)."""
    out = policy(Tensor(x))
    if isinstance(action_space, Discrete):
        logp_all = log_softmax(out, axis=1)
        chosen = np.eye(action_space.n, dtype=np.float32)[actions]
        entropy = -(logp_all.exp() * logp_all).sum(axis=1).mean()
        return (logp_all * Tensor(chosen)).sum(axis=1), entropy
    log_std = policy.log_std
    z = (Tensor(actions.astype(np.float32)) - out) * (-log_std).exp()
    logp = (-0.5 * z * z - log_std - _LOG_SQRT_2PI).sum(axis=1)
    return logp, (log_std + 0.5 + _LOG_SQRT_2PI).sum()


def env_actions(actions, action_space):
    """Actions as the environment takes them: continuous ones clipped to the bounds."""
    if isinstance(action_space, Discrete):
        return actions
    return np.clip(actions, action_space.low, action_space.high)
