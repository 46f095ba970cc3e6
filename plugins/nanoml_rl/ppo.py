"""Proximal policy optimisation (Schulman et al. 2017), as CleanRL's ppo.py and
ppo_continuous_action.py: rollouts of `num_steps` in `num_envs` environments side by side,
generalised advantage estimation, the clipped surrogate objective over `update_epochs`
passes of minibatches, an entropy bonus, gradients clipped to `max_grad_norm`, a learning
rate annealed to zero; discrete (categorical) and continuous (Gaussian) actions. Rewards
may be scaled by the running deviation of the discounted return (Gymnasium's
NormalizeReward), which continuous control needs."""

import numpy as np

from nanoml.deep import check_sizes
from nanoml.optim import Adam, clip_grad_norm
from nanoml.tensor import Tensor
from nanoml.validation import check_number
from nanoml_rl.agent import (
    Agent,
    features,
    forward,
    log_episodes,
    mlp,
    n_features,
    progress,
    recent_return,
)
from nanoml_rl.policies import (
    env_actions,
    greedy,
    log_prob_and_entropy,
    policy_network,
    sample,
)
from nanoml_rl.rl_kernels import gae


def reward_scaler(num_envs, gamma):
    """A function scaling rewards by the running standard deviation of the discounted
    return (Welford's running variance), as Gymnasium's NormalizeReward."""
    stats = {"ret": np.zeros(num_envs), "count": 1e-4, "mean": 0.0, "var": 1.0}

    def scale(reward, done):
        stats["ret"] = stats["ret"] * gamma + reward
        batch_mean, batch_var, n = stats["ret"].mean(), stats["ret"].var(), num_envs
        delta, total = batch_mean - stats["mean"], stats["count"] + n
        stats["mean"] += delta * n / total
        stats["var"] = (stats["var"] * stats["count"] + batch_var * n
                        + delta**2 * stats["count"] * n / total) / total
        stats["count"] = total
        stats["ret"][done] = 0.0
        return reward / np.sqrt(stats["var"] + 1e-8)

    return scale


class PPO(Agent):
    name = "ppo"
    description = "proximal policy optimisation: clipped objective, GAE, vectorised rollouts"
    discrete_actions_only = False
    search_space = {"lr": [2.5e-4, 1e-3, 3e-3], "num_steps": [64, 128, 256]}

    def __init__(self, total_steps=200_000, lr=1e-3, num_envs=8, num_steps=128, gamma=0.99,
                 gae_lambda=0.95, num_minibatches=4, update_epochs=4, clip_coef=0.2,
                 ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5, normalize_rewards=False,
                 hidden=(64, 64), seed=0):
        self.store_params(locals())

    def check_params(self):
        for name in ("total_steps", "num_envs", "num_steps", "num_minibatches",
                     "update_epochs"):
            check_number(name, getattr(self, name), low=1, integer=True)
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("gamma", self.gamma, low=0, high=1)
        check_number("gae_lambda", self.gae_lambda, low=0, high=1)
        check_number("clip_coef", self.clip_coef, low=0, low_open=True)
        check_sizes("hidden", self.hidden)

    def _build(self, rng):
        space = self.observation_space
        return {"policy_": policy_network(space, self.action_space, self.hidden, rng),
                "value_": mlp((n_features(space), *self.hidden, 1), rng)}

    def _learn(self, env):
        rng = np.random.default_rng(self.seed)
        nets = self._build(rng)
        policy, value = nets["policy_"], nets["value_"]
        params = [*policy.parameters(), *value.parameters()]
        optimizer = Adam(params, lr=self.lr, eps=1e-5)
        space, actions_space = self.observation_space, self.action_space
        n, T = env.num_envs, self.num_steps
        scale = reward_scaler(n, self.gamma) if self.normalize_rewards else None
        iterations = max(1, self.total_steps // (n * T))
        batch = n * T
        minibatch = max(1, batch // self.num_minibatches)
        obs, _ = env.reset(seed=self.seed)
        with progress(iterations * batch, self.name) as bar:
            for iteration in range(iterations):
                optimizer.lr = self.lr * (1.0 - iteration / iterations)
                x = np.zeros((T, n, n_features(space)), dtype=np.float32)
                x_next = np.zeros_like(x)
                actions, logps = [], np.zeros((T, n))
                rewards = np.zeros((T, n))
                terminated = np.zeros((T, n), dtype=np.bool_)
                done = np.zeros((T, n), dtype=np.bool_)
                for t in range(T):  # the rollout
                    x[t] = features(obs, space)
                    action, logps[t] = sample(policy, x[t], actions_space, rng)
                    actions.append(action)
                    obs, reward, terminated[t], truncated, info = env.step(
                        env_actions(action, actions_space))
                    done[t] = terminated[t] | truncated
                    x_next[t] = features(info["final_obs"], space)
                    rewards[t] = reward if scale is None else scale(reward, done[t])
                    log_episodes(self.history_, info, done[t], (iteration * T + t + 1) * n)
                bar.update(batch)
                bar.set_postfix(recent_return=recent_return(self.history_), refresh=False)

                # advantages: GAE over the rollout, values bootstrapped where truncated
                values = forward(value, x.reshape(batch, -1)).reshape(T, n)
                next_values = forward(value, x_next.reshape(batch, -1)).reshape(T, n)
                advantages = np.zeros((T, n))
                gae(rewards, values, next_values, terminated, done, self.gamma,
                    self.gae_lambda, advantages)
                b_x, b_actions = x.reshape(batch, -1), np.stack(actions).reshape(batch, -1)
                if actions_space.shape == ():
                    b_actions = b_actions[:, 0]
                b_logp, b_adv = logps.reshape(batch), advantages.reshape(batch)
                b_returns = (advantages + values).reshape(batch).astype(np.float32)

                for _ in range(self.update_epochs):  # the clipped surrogate, minibatch-wise
                    order = rng.permutation(batch)
                    for start in range(0, batch, minibatch):
                        rows = order[start:start + minibatch]
                        logp, entropy = log_prob_and_entropy(policy, b_x[rows],
                                                             b_actions[rows], actions_space)
                        ratio = (logp - Tensor(b_logp[rows].astype(np.float32))).exp()
                        adv = b_adv[rows]
                        adv = Tensor(((adv - adv.mean()) / (adv.std() + 1e-8)).astype(
                            np.float32))
                        clipped = ratio.clip(1 - self.clip_coef, 1 + self.clip_coef)
                        # -min(ratio A, clipped A) = max(a, b) = a + relu(b - a)
                        a, b = -adv * ratio, -adv * clipped
                        policy_loss = (a + (b - a).relu()).mean()
                        error = value(Tensor(b_x[rows])).reshape(-1) - Tensor(b_returns[rows])
                        value_loss = 0.5 * (error * error).mean()
                        loss = (policy_loss - self.ent_coef * entropy
                                + self.vf_coef * value_loss)
                        optimizer.zero_grad()
                        loss.backward()
                        clip_grad_norm(params, self.max_grad_norm)
                        optimizer.step()
        self.policy_, self.value_ = policy, value

    def _act(self, obs):
        return greedy(self.policy_, features(obs, self.observation_space), self.action_space)
