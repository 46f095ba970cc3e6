"""Reinforcement learning: environment steps of a batch of CartPoles against Gymnasium's
SyncVectorEnv, and the wall time of a DQN run on CartPole against a CleanRL-style PyTorch
DQN with the same hyperparameters (`DQN_PARAMS`), each with the mean return it reached."""

import copy

import numpy as np

from .peers import _torch

STEPS = 1000
DQN_PARAMS = {"total_steps": 100_000, "seed": 0}


def _gymnasium():
    try:
        import gymnasium
    except ImportError:
        raise NotImplementedError("gymnasium is not installed") from None
    return gymnasium


class CartPoleSteps:
    """1000 steps of 16 CartPoles side by side, random actions, autoreset included."""

    params = [[16]]
    param_names = ["envs"]

    def setup(self, envs):
        from nanoml_rl.envs import CartPole

        gym = _gymnasium()
        self.actions = np.random.default_rng(0).integers(0, 2, size=(STEPS, envs))
        self.ours = CartPole(num_envs=envs)
        self.ours.reset(seed=0)
        self.ours.step(self.actions[0])  # compile (or load) the kernel outside the timing
        self.theirs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * envs)
        self.theirs.reset(seed=0)

    def time_nanoml(self, envs):
        for actions in self.actions:
            self.ours.step(actions)

    def time_gymnasium(self, envs):
        for actions in self.actions:
            self.theirs.step(actions)


def torch_dqn(params, seed=0):
    """CleanRL's dqn.py with nanoml's DQN hyperparameters `params` (its defaults filled in)
    on Gymnasium's CartPole-v1, keeping its last weights (CleanRL has no periodic
    evaluation, which costs nanoml's run about 1% of its time); -> the mean return of 100
    greedy evaluation episodes."""
    torch, gym = _torch(), _gymnasium()
    from nanoml_rl.dqn import DQN

    p = {**DQN.param_defaults(), **params}
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = gym.make("CartPole-v1")
    sizes = (4, *p["hidden"], 2)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    q_net = torch.nn.Sequential(*layers[:-1])
    target = copy.deepcopy(q_net)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=p["lr"])
    size = p["buffer_size"]
    obs_buf, next_buf = np.zeros((size, 4), np.float32), np.zeros((size, 4), np.float32)
    act_buf, rew_buf = np.zeros(size, np.int64), np.zeros(size, np.float32)
    term_buf = np.zeros(size, np.float32)
    obs, _ = env.reset(seed=seed)
    explore_steps = p["exploration_fraction"] * p["total_steps"]
    for step in range(p["total_steps"]):
        epsilon = p["end_epsilon"] + (p["start_epsilon"] - p["end_epsilon"]) * max(
            0.0, 1.0 - step / explore_steps)
        if rng.random() < epsilon:
            action = int(rng.integers(0, 2))
        else:
            with torch.no_grad():
                action = int(q_net(torch.from_numpy(obs)[None]).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        row = step % size
        obs_buf[row], next_buf[row], act_buf[row] = obs, next_obs, action
        rew_buf[row], term_buf[row] = reward, terminated
        obs = env.reset()[0] if terminated or truncated else next_obs
        if step >= p["learning_starts"] and step % p["train_frequency"] == 0:
            if p["anneal_lr"]:
                optimizer.param_groups[0]["lr"] = p["lr"] * (1.0 - step / p["total_steps"])
            rows = torch.from_numpy(rng.integers(0, min(step + 1, size), p["batch_size"]))
            b_next = torch.from_numpy(next_buf)[rows]
            with torch.no_grad():
                next_q = target(b_next)
                if p["double"]:
                    picked = q_net(b_next).argmax(dim=1, keepdim=True)
                    next_value = next_q.gather(1, picked).squeeze(1)
                else:
                    next_value = next_q.max(dim=1).values
                td = torch.from_numpy(rew_buf)[rows] + p["gamma"] * next_value * (
                    1.0 - torch.from_numpy(term_buf)[rows])
            q = q_net(torch.from_numpy(obs_buf)[rows]).gather(
                1, torch.from_numpy(act_buf)[rows][:, None]).squeeze(1)
            loss = torch.nn.functional.huber_loss(q, td)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(q_net.parameters(), p["max_grad_norm"])
            optimizer.step()
        if step % p["target_update"] == 0:
            with torch.no_grad():
                for t, q in zip(target.parameters(), q_net.parameters(), strict=True):
                    t.copy_(p["tau"] * q + (1.0 - p["tau"]) * t)
    returns = []
    for episode in range(100):
        obs, _ = env.reset(seed=10_000 + episode)
        total, done = 0.0, False
        while not done:
            with torch.no_grad():
                action = int(q_net(torch.from_numpy(obs)[None]).argmax())
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + reward, terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


class DQNCartPole:
    """One DQN training run of 100,000 steps on CartPole, nanoml against PyTorch."""

    timeout = 1200
    number = 1
    repeat = 1
    warmup_time = 0

    def setup(self):
        from nanoml_rl.dqn import DQN

        _torch()
        DQN(total_steps=300, learning_starts=100).fit("CartPole-v1")  # compile outside

    def time_nanoml(self):
        from nanoml_rl.dqn import DQN

        DQN(**DQN_PARAMS).fit("CartPole-v1")

    def time_torch(self):
        torch_dqn(DQN_PARAMS)

    def track_nanoml_return(self):
        from nanoml_rl.dqn import DQN

        return DQN(**DQN_PARAMS).fit("CartPole-v1").evaluate()["mean_return"]

    track_nanoml_return.unit = "return"

    def track_torch_return(self):
        return torch_dqn(DQN_PARAMS)

    track_torch_return.unit = "return"
