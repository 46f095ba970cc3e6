"""The agents: each solves a small task on a short budget, keeps the Learner contract
(parameters, errors, model files without pickle), and runs through `nanoml run`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from nanoml_rl.agent import mlp, open_env, play
from nanoml_rl.dqn import DQN, SELECTION_SEED, soft_update
from nanoml_rl.ppo import PPO
from nanoml_rl.qlearning import QLearning
from nanoml_rl.reinforce import Reinforce

from nanoml.cli import cli
from nanoml.errors import InputError, NotFittedError, ParameterError
from nanoml.learner import Learner, contract_problem

FIRM_LAKE = "FrozenLakeNotSlippery-4x4"


@pytest.fixture(scope="module")
def solved():
    """Each agent fitted once on a small task: name -> (agent, its mean evaluation return)."""
    agents = {
        "q-learning": (QLearning(total_steps=20_000), FIRM_LAKE),
        "reinforce": (Reinforce(total_steps=40_000, seed=1), "CartPole-v1"),
        "dqn": (DQN(total_steps=5_000, learning_starts=500, exploration_fraction=0.6,
                    target_update=100, train_frequency=1, batch_size=64, lr=1e-3, gamma=0.9,
                    hidden=(64,), seed=2), FIRM_LAKE),
        "ppo": (PPO(total_steps=20_000, seed=3), "CartPole-v1"),
    }
    return {name: (agent.fit(env), agent.evaluate(episodes=20)["mean_return"])
            for name, (agent, env) in agents.items()}


@pytest.mark.parametrize("name, goal", [
    ("q-learning", 1.0),  # every episode reaches the goal
    ("reinforce", 150),  # a random policy holds the pole 22 steps on average
    ("dqn", 1.0),
    ("ppo", 150),
])
def test_each_agent_solves_a_small_task(solved, name, goal):
    assert solved[name][1] >= goal


@pytest.mark.parametrize("name", ["q-learning", "reinforce", "dqn", "ppo"])
def test_model_file_round_trip(solved, name, tmp_path):
    agent = solved[name][0]
    space = agent.observation_space
    obs = (np.arange(16) if name in ("q-learning", "dqn") else
           np.random.default_rng(0).normal(0, 0.1, (32, *space.shape)).astype(np.float32))
    path = tmp_path / "model.npz"
    agent.save(path)
    with np.load(path, allow_pickle=False) as archive:  # readable without pickle
        assert archive.files
    for loaded in (type(agent).load(path), Learner.load(path)):
        assert type(loaded) is type(agent) and loaded.get_params() == agent.get_params()
        np.testing.assert_array_equal(loaded.predict(obs), agent.predict(obs))
    assert np.ndim(agent.predict(obs[0])) == 0  # one observation: one action


@pytest.mark.parametrize("cls", [QLearning, Reinforce, DQN, PPO])
def test_contract(cls):
    assert contract_problem(cls) is None
    agent = cls()
    assert agent.get_params() == cls.param_defaults()
    with pytest.raises(NotFittedError):
        agent.predict(np.zeros(4, dtype=np.float32))
    with pytest.raises(ParameterError, match="no hyperparameter 'nope'"):
        agent.set_params(nope=1)
    with pytest.raises(ParameterError, match="total_steps"):
        cls(total_steps=0).fit()


def test_bad_observations_are_one_clear_error(solved):
    agent = solved["ppo"][0]
    with pytest.raises(InputError, match="NaN"):
        agent.predict(np.array([0.0, np.nan, 0.0, 0.0]))
    with pytest.raises(InputError, match=r"shape \(4,\)"):
        agent.predict(np.zeros((2, 3)))
    with pytest.raises(InputError, match="integers in 0..15"):
        solved["q-learning"][0].predict(np.array([16]))


def test_continuous_actions_with_ppo():
    agent = PPO(total_steps=256, num_envs=2, num_steps=128).fit("Pendulum-v1")
    actions = agent.predict(np.zeros((5, 3), dtype=np.float32))
    assert actions.shape == (5, 1) and np.all(np.abs(actions) <= 2.0)
    with pytest.raises(ParameterError, match="needs discrete actions"):
        DQN(total_steps=10).fit("Pendulum-v1")


def test_nanoml_run_writes_the_run_folder(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "run", "q-learning", "--env", FIRM_LAKE, "--set", "total_steps=20000",
        "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["dataset"] == FIRM_LAKE and summary["metrics"]["mean_return"] == 1.0
    assert summary["metrics"]["episodes"] == 100
    assert {"model.npz", "metrics.json", "config.json", "returns.png", "report.html"} <= {
        p.name for p in out.iterdir()}
    record = json.loads((out / "metrics.json").read_text())
    assert len(record["history"]["episode_return"]) == len(record["history"]["episode_step"])
    assert CliRunner().invoke(cli, ["run", "ridge", "--env", FIRM_LAKE]).exit_code == 2
    dqn = CliRunner().invoke(cli, ["run", "dqn", "--set", "total_steps=600",
                                   "--set", "learning_starts=100", "--out", str(tmp_path / "d")])
    assert dqn.exit_code == 0 and "dqn on CartPole-v1" in dqn.output, dqn.output
    assert (tmp_path / "d" / "returns.png").is_file()


def test_dqn_keeps_the_best_evaluated_policy():
    agent = DQN(total_steps=4_000, learning_starts=500, eval_every=500, eval_episodes=5,
                seed=3).fit("CartPole-v1")
    trace = agent.evaluations_["mean_return"]
    assert agent.evaluations_["step"] == list(range(500, 4_001, 500))
    assert trace[-1] < max(trace), "the last policy is the best: nothing to choose"
    best = len(trace) - 1 - trace[::-1].index(max(trace))  # the later one on a tie
    env, _ = open_env("CartPole-v1", 5)
    replayed = play(env, agent.predict, 5, agent.seed + SELECTION_SEED + best)
    assert np.mean(replayed) == trace[best]
    last = DQN(total_steps=600, learning_starts=100, eval_every=0).fit("CartPole-v1")
    assert last.evaluations_ == {"step": [], "mean_return": []}
    # keeping a policy draws nothing from training's random numbers: evaluating at other
    # steps leaves the training path as it was
    other = DQN(total_steps=4_000, learning_starts=500, eval_every=700, eval_episodes=5,
                seed=3).fit("CartPole-v1")
    assert other.history_["episode_return"] == agent.history_["episode_return"]


def test_dqn_soft_update_matches_numpy():
    rng = np.random.default_rng(0)
    online, target = mlp((4, 8, 2), rng), mlp((4, 8, 2), rng)
    before = [p.data.copy() for p in target.parameters()]
    soft_update(target, online, 0.25)
    for old, new, source in zip(before, target.parameters(), online.parameters(), strict=True):
        np.testing.assert_allclose(new.data, 0.25 * source.data + 0.75 * old, rtol=1e-6)
    soft_update(target, online, 1.0)
    for new, source in zip(target.parameters(), online.parameters(), strict=True):
        np.testing.assert_array_equal(new.data, source.data)
