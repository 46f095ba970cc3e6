"""The agents: each solves a small task on a short budget, keeps the Learner contract
(parameters, errors, model files without pickle), and runs through `nanoml run`."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from nanoml_rl.dqn import DQN
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
    summary = json.loads(result.output)
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
