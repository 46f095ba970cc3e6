"""Deep Q-learning (Mnih et al. 2015), as CleanRL's dqn.py: a replay buffer, a target
network moved towards the online one every `target_update` steps (copied when `tau` is 1,
Polyak-averaged below), an ε schedule falling linearly over `exploration_fraction` of the
steps, the Huber loss, and double DQN (van Hasselt et al. 2016) as an option; the learning
rate falls linearly to zero (`anneal_lr`) and gradients are clipped to `max_grad_norm`,
both steadying the end of training.

DQN on CartPole often collapses late in training, so the weights kept are chosen as
Stable-Baselines3's EvalCallback does: every `eval_every` steps, and at the end, the greedy
policy plays `eval_episodes` episodes in environments of its own (seeds apart from the
training's and the final evaluation's; their steps are not counted in `total_steps`), and
the best of these policies is kept, the later one on a tie. ``eval_every=0`` keeps the last
weights; so does learning in an environment batch given as an object (no name to make the
evaluation environments from). `evaluations_` holds each evaluation's step and mean return."""

import numpy as np

from nanoml import nn
from nanoml.deep import check_sizes
from nanoml.optim import Adam, clip_grad_norm
from nanoml.tensor import Tensor
from nanoml.validation import check_number
from nanoml_rl.agent import (
    Agent,
    features,
    forward,
    linear_schedule,
    log_episodes,
    mlp,
    n_features,
    open_env,
    play,
    progress,
    recent_return,
)

SELECTION_SEED = 20_000  # added to the agent's seed (and the evaluation's number)


def huber(error):
    """Mean Huber loss (δ = 1) of a Tensor of errors: 0.5 e² near 0, |e| - 0.5 beyond ±1."""
    inside = error.clip(-1.0, 1.0)
    return (0.5 * inside * inside + error.abs() - inside.abs()).mean()


def replay_buffer(size, n_features):
    """Arrays of `size` transitions, and the write position and fill count."""
    return {"obs": np.zeros((size, n_features), dtype=np.float32),
            "next_obs": np.zeros((size, n_features), dtype=np.float32),
            "action": np.zeros(size, dtype=np.int64),
            "reward": np.zeros(size, dtype=np.float32),
            "terminated": np.zeros(size, dtype=np.float32), "position": 0, "full": False}


def replay_add(buffer, **transitions):
    """Write a batch of transitions, overwriting the oldest once the buffer is full."""
    size = buffer["action"].shape[0]
    n = transitions["action"].shape[0]
    rows = (buffer["position"] + np.arange(n)) % size
    for key, values in transitions.items():
        buffer[key][rows] = values
    buffer["full"] = buffer["full"] or buffer["position"] + n >= size
    buffer["position"] = (buffer["position"] + n) % size


def replay_sample(buffer, batch_size, rng):
    stored = buffer["action"].shape[0] if buffer["full"] else buffer["position"]
    rows = rng.integers(0, stored, batch_size)
    return {key: buffer[key][rows] for key in ("obs", "next_obs", "action", "reward",
                                               "terminated")}


class DQN(Agent):
    name = "dqn"
    description = "deep Q-network: replay buffer, target network, ε-greedy, double DQN option"
    search_space = {"lr": [2.5e-4, 5e-4, 1e-3], "target_update": [100, 250, 500]}

    def __init__(self, total_steps=100_000, lr=2e-3, gamma=0.99, buffer_size=50_000,
                 batch_size=128, learning_starts=1_000, train_frequency=2, target_update=500,
                 tau=1.0, start_epsilon=1.0, end_epsilon=0.01, exploration_fraction=0.1,
                 hidden=(64, 64), double=True, anneal_lr=True, max_grad_norm=10.0,
                 eval_every=5_000, eval_episodes=10, seed=0):
        self.store_params(locals())

    def check_params(self):
        for name in ("total_steps", "buffer_size", "batch_size", "train_frequency",
                     "target_update", "eval_episodes"):
            check_number(name, getattr(self, name), low=1, integer=True)
        for name in ("learning_starts", "eval_every"):
            check_number(name, getattr(self, name), low=0, integer=True)
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("tau", self.tau, low=0, high=1, low_open=True)
        check_number("gamma", self.gamma, low=0, high=1)
        check_number("exploration_fraction", self.exploration_fraction, low=0, high=1)
        check_sizes("hidden", self.hidden)

    def _build(self, rng):
        sizes = (n_features(self.observation_space), *self.hidden, self.action_space.n)
        return {"q_net_": mlp(sizes, rng, activation=nn.ReLU)}

    def _learn(self, env):
        rng = np.random.default_rng(self.seed)
        q_net = self._build(rng)["q_net_"]
        target_net = self._build(rng)["q_net_"].load_state_dict(q_net.state_dict())
        optimizer = Adam(q_net.parameters(), lr=self.lr)
        space, n, n_actions = self.observation_space, env.num_envs, self.action_space.n
        buffer = replay_buffer(self.buffer_size, n_features(space))
        selection = self.eval_every > 0 and self.env_name_ is not None
        eval_env = open_env(self.env_name_, self.eval_episodes)[0] if selection else None
        self.evaluations_ = {"step": [], "mean_return": []}
        # the kept policy is built now, so that keeping one later draws nothing from `rng`
        best, self.q_net_ = -np.inf, self._build(rng)["q_net_"] if selection else q_net
        obs, _ = env.reset(seed=self.seed)
        with progress(self.total_steps, self.name) as bar:
            for step in range(0, self.total_steps, n):
                epsilon = linear_schedule(self.start_epsilon, self.end_epsilon,
                                          self.exploration_fraction * self.total_steps, step)
                x = features(obs, space)
                if rng.random() < epsilon:  # the whole batch explores: one draw, as CleanRL
                    actions = rng.integers(0, n_actions, n)
                else:
                    actions = forward(q_net, x).argmax(axis=1)
                next_obs, reward, terminated, truncated, info = env.step(actions)
                replay_add(buffer, obs=x, next_obs=features(info["final_obs"], space),
                           action=actions, reward=reward, terminated=terminated)
                done = terminated | truncated
                log_episodes(self.history_, info, done, step + n)
                obs = next_obs

                if step >= self.learning_starts and step % self.train_frequency < n:
                    if self.anneal_lr:
                        optimizer.lr = self.lr * (1.0 - step / self.total_steps)
                    self._train_step(q_net, target_net, optimizer,
                                     replay_sample(buffer, self.batch_size, rng))
                if step % self.target_update < n:
                    soft_update(target_net, q_net, self.tau)
                end = step + n >= self.total_steps
                if selection and ((step + n) % self.eval_every < n or end):
                    current = float(np.mean(play(
                        eval_env, lambda o: greedy_actions(q_net, o, space),
                        self.eval_episodes,
                        self.seed + SELECTION_SEED + len(self.evaluations_["step"]))))
                    self.evaluations_["step"].append(step + n)
                    self.evaluations_["mean_return"].append(current)
                    if current >= best:
                        best = current
                        self.q_net_.load_state_dict(q_net.state_dict())
                bar.update(n)
                if done.any():
                    bar.set_postfix(recent_return=recent_return(self.history_), refresh=False)

    def _train_step(self, q_net, target_net, optimizer, batch):
        """One gradient step on the Huber loss of the TD error of a replay batch."""
        next_q = forward(target_net, batch["next_obs"])
        if self.double:  # the online network picks, the target network values
            picked = forward(q_net, batch["next_obs"]).argmax(axis=1)
            next_value = next_q[np.arange(next_q.shape[0]), picked]
        else:
            next_value = next_q.max(axis=1)
        td_target = batch["reward"] + self.gamma * next_value * (1.0 - batch["terminated"])
        chosen = np.eye(next_q.shape[1], dtype=np.float32)[batch["action"]]
        q_value = (q_net(Tensor(batch["obs"])) * Tensor(chosen)).sum(axis=1)
        loss = huber(q_value - Tensor(td_target.astype(np.float32)))
        optimizer.zero_grad()
        loss.backward()
        clip_grad_norm(q_net.parameters(), self.max_grad_norm)
        optimizer.step()

    def _act(self, obs):
        return greedy_actions(self.q_net_, obs, self.observation_space)


def greedy_actions(q_net, obs, space):
    """The actions of largest Q-value for observations `obs`."""
    return forward(q_net, features(obs, space)).argmax(axis=1)


def soft_update(target_net, q_net, tau):
    """target ← tau · online + (1 - tau) · target, parameter by parameter (a copy at 1)."""
    if tau == 1.0:
        target_net.load_state_dict(q_net.state_dict())
        return
    for target, online in zip(target_net.parameters(), q_net.parameters(), strict=True):
        target.data[...] = tau * online.data + (1.0 - tau) * target.data
