"""Tabular Q-learning (Watkins 1989) on a batch of environments with discrete observations:
ε-greedy actions, one Q-table update per transition (`nanoml_rl.rl_kernels.q_update`)."""

import numpy as np

from nanoml.errors import ParameterError
from nanoml.state_schema import Array, Require
from nanoml.validation import check_number
from nanoml_rl.agent import Agent, linear_schedule, log_episodes, progress, recent_return
from nanoml_rl.rl_kernels import q_update
from nanoml_rl.spaces import Discrete


class QLearning(Agent):
    name = "q-learning"
    default_dataset = "FrozenLake-4x4"
    description = "tabular Q-learning with an ε-greedy policy, for grid worlds"
    search_space = {"lr": [0.02, 0.05, 0.1, 0.2], "gamma": [0.95, 0.99, 0.999]}

    def __init__(self, total_steps=400_000, lr=0.02, gamma=0.99, start_epsilon=1.0,
                 end_epsilon=0.05, exploration_fraction=0.5, num_envs=16, seed=0):
        self.store_params(locals())

    state_schema = Agent.state_schema.extend(
        checks=[Require(lambda v: v["q_table_"].shape == (v["spaces_"]["observation"]["n"],
                                                          v["spaces_"]["action"]["n"]),
                        "q_table_", "must have a row per observation, a column per action")],
        q_table_=Array(np.float64, shape=("n_states", "n_actions")),
    )

    def check_params(self):
        check_number("total_steps", self.total_steps, low=1, integer=True)
        check_number("lr", self.lr, low=0, high=1, low_open=True)
        check_number("gamma", self.gamma, low=0, high=1)
        check_number("exploration_fraction", self.exploration_fraction, low=0, high=1)
        check_number("num_envs", self.num_envs, low=1, integer=True)

    def _learn(self, env):
        if not isinstance(self.observation_space, Discrete):
            raise ParameterError(f"{self.name} needs a discrete observation space (a grid "
                                 "world such as FrozenLake-4x4)", argument="env")
        n, n_actions = env.num_envs, self.action_space.n
        rng = np.random.default_rng(self.seed)
        table = np.zeros((self.observation_space.n, n_actions))
        obs, _ = env.reset(seed=self.seed)
        with progress(self.total_steps, self.name) as bar:
            for step in range(0, self.total_steps, n):
                epsilon = linear_schedule(self.start_epsilon, self.end_epsilon,
                                          self.exploration_fraction * self.total_steps, step)
                # ties (an unvisited state) are broken at random, not always towards action 0
                greedy = (table[obs] + 1e-9 * rng.random((n, n_actions))).argmax(axis=1)
                actions = np.where(rng.random(n) < epsilon, rng.integers(0, n_actions, n),
                                   greedy)
                next_obs, reward, terminated, truncated, info = env.step(actions)
                q_update(table, obs, actions, reward, info["final_obs"], terminated, self.lr,
                         self.gamma)
                done = terminated | truncated
                log_episodes(self.history_, info, done, step + n)
                obs = next_obs
                bar.update(n)
                if done.any():
                    bar.set_postfix(recent_return=recent_return(self.history_), refresh=False)
        self.q_table_ = table

    def _act(self, obs):
        return self.q_table_[obs].argmax(axis=1)
