"""REINFORCE (Williams 1992) with a learned baseline: each iteration runs one whole episode
in each of `num_envs` environments side by side, weighs every action's log-probability by
its reward-to-go minus the value network's estimate (normalised over the batch), and fits
the value network to the rewards-to-go."""

import numpy as np

from nanoml.deep import check_sizes
from nanoml.optim import Adam
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
from nanoml_rl.rl_kernels import discounted_returns


class Reinforce(Agent):
    name = "reinforce"
    description = "REINFORCE policy gradient with a learned value baseline"
    discrete_actions_only = False
    search_space = {"lr": [1e-3, 3e-3, 1e-2], "num_envs": [4, 8, 16]}

    def __init__(self, total_steps=300_000, lr=3e-3, gamma=0.99, num_envs=8, hidden=(64, 64),
                 seed=0):
        self.store_params(locals())

    def check_params(self):
        check_number("total_steps", self.total_steps, low=1, integer=True)
        check_number("num_envs", self.num_envs, low=1, integer=True)
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("gamma", self.gamma, low=0, high=1)
        check_sizes("hidden", self.hidden)

    def _build(self, rng):
        space = self.observation_space
        return {"policy_": policy_network(space, self.action_space, self.hidden, rng),
                "value_": mlp((n_features(space), *self.hidden, 1), rng)}

    def _learn(self, env):
        rng = np.random.default_rng(self.seed)
        nets = self._build(rng)
        policy, value = nets["policy_"], nets["value_"]
        policy_optimizer = Adam(policy.parameters(), lr=self.lr)
        value_optimizer = Adam(value.parameters(), lr=self.lr)
        space, action_space, n = self.observation_space, self.action_space, env.num_envs
        obs, _ = env.reset(seed=self.seed)
        step = 0
        with progress(self.total_steps, self.name) as bar:
            while step < self.total_steps:
                # one episode in each environment; steps after an environment's episode
                # ended belong to the next one and are left out
                xs, actions, rewards, live = [], [], [], []
                running = np.ones(n, dtype=np.bool_)
                while running.any():
                    x = features(obs, space)
                    action, _ = sample(policy, x, action_space, rng)
                    obs, reward, terminated, truncated, info = env.step(
                        env_actions(action, action_space))
                    done = terminated | truncated
                    xs.append(x)
                    actions.append(action)
                    rewards.append(reward)
                    live.append(running.copy())
                    step += n
                    log_episodes(self.history_, info, done & running, step)
                    running &= ~done
                    bar.update(n)
                live = np.array(live)
                returns = np.zeros(live.shape)
                discounted_returns(np.array(rewards, dtype=np.float64), ~live, self.gamma,
                                   returns)
                rows = live.reshape(-1)
                x = np.concatenate(xs)[rows]
                action = np.concatenate(actions)[rows]
                target = returns.reshape(-1)[rows].astype(np.float32)
                advantage = target - forward(value, x)[:, 0]
                advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)

                logp, _ = log_prob_and_entropy(policy, x, action, action_space)
                policy_loss = -(logp * Tensor(advantage.astype(np.float32))).mean()
                policy_optimizer.zero_grad()
                policy_loss.backward()
                policy_optimizer.step()
                error = value(Tensor(x)).reshape(-1) - Tensor(target)
                value_loss = (error * error).mean()
                value_optimizer.zero_grad()
                value_loss.backward()
                value_optimizer.step()
                bar.set_postfix(recent_return=recent_return(self.history_), refresh=False)
        self.policy_, self.value_ = policy, value

    def _act(self, obs):
        return greedy(self.policy_, features(obs, self.observation_space), self.action_space)
