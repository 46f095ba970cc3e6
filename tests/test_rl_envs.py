"""The embedded environments (CartPole against Gymnasium's, FrozenLake, Pendulum against
NumPy references), the agents' kernels, the environment registry and its errors."""

import math

import numpy as np
import pytest
from click.testing import CliRunner
from nanoml_rl import rl_kernels
from nanoml_rl.envs import CartPole, FrozenLake, Pendulum
from nanoml_rl.make import make_env

from nanoml.cli import cli
from nanoml.errors import InputError, UnknownEnvironmentError


def balance(obs):
    """A hand-made CartPole controller that keeps the pole up for 500 steps."""
    return (obs[:, 2] + 0.5 * obs[:, 3] > 0).astype(np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cartpole_matches_gymnasium(seed):
    gym = pytest.importorskip("gymnasium", reason="Gymnasium is the reference for CartPole")
    ours = CartPole()
    ours.reset(seed=seed)
    theirs = gym.make("CartPole-v1")
    theirs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    episodes = steps = 0
    while episodes < 6:
        # each transition from Gymnasium's state (the upright pole is unstable: a last-bit
        # difference of libm's cosine grows a millionfold within a few hundred steps);
        # random actions, and every other episode the controller that reaches truncation
        ours._state[0] = theirs.unwrapped.state
        obs = np.asarray(theirs.unwrapped.state, dtype=np.float32)[None]
        action = balance(obs)[0] if episodes % 2 else int(rng.integers(0, 2))
        _, reward, terminated, truncated, info = ours.step(np.array([action]))
        gym_obs, gym_reward, gym_terminated, gym_truncated, _ = theirs.step(action)
        np.testing.assert_allclose(info["final_obs"][0], gym_obs, atol=1e-6)
        assert (reward[0], terminated[0], truncated[0]) == (
            gym_reward, gym_terminated, gym_truncated)
        steps += 1
        if gym_terminated or gym_truncated:
            assert info["episode_length"][0] == steps and info["episode_return"][0] == steps
            assert gym_truncated == (steps == 500) and episodes % 2 == int(gym_truncated)
            theirs.reset()
            episodes, steps = episodes + 1, 0


def test_cartpole_batch_resets_finished_environments_in_the_same_step():
    env = CartPole(num_envs=16)
    obs, info = env.reset(seed=0)
    assert obs.shape == (16, 4) and obs.dtype == np.float32 and info == {}
    assert env.single_observation_space.shape == (4,) and env.single_action_space.n == 2
    lengths = np.zeros(16, dtype=int)
    rng = np.random.default_rng(0)
    for _ in range(60):
        actions = env.single_action_space.sample(rng, 16)
        obs, reward, terminated, truncated, info = env.step(actions)
        lengths += 1
        done = terminated | truncated
        assert np.all(np.abs(obs[done]) <= 0.05)  # a new episode's first observation
        fell = np.abs(info["final_obs"][done][:, [0, 2]]) > [2.4, 12 * 2 * math.pi / 360]
        assert fell.any(axis=1).all()
        np.testing.assert_array_equal(info["episode_length"][done], lengths[done])
        lengths[done] = 0
    again, _ = CartPole(num_envs=16).reset(seed=0)
    assert np.array_equal(again, env.reset(seed=0)[0])  # a seed fixes the episodes


def test_frozen_lake_firm_walk_and_hole():
    env = FrozenLake(num_envs=2, map_name="4x4", is_slippery=False)
    env.reset(seed=0)
    # down, down, right, right, down, right reaches the goal; right, down falls in a hole
    moves = [(1, 2), (1, 1), (2, 0), (2, 0), (1, 0), (2, 0)]
    for t, actions in enumerate(moves):
        obs, reward, terminated, _, info = env.step(np.array(actions))
        if t == 1:
            assert terminated[1] and reward[1] == 0 and info["final_obs"][1] == 5
            assert obs[1] == 0
    assert terminated[0] and reward[0] == 1.0 and info["final_obs"][0] == 15
    assert info["episode_return"][0] == 1.0


def test_frozen_lake_slips_a_third_each_way():
    env = FrozenLake(num_envs=3000, map_name="8x8", is_slippery=True)
    env.reset(seed=0)
    env._state[:] = 9  # row 1, column 1: every neighbour is frozen
    obs, *_ = env.step(np.full(3000, 1))  # down: slips left or right, or goes down
    shares = np.array([(obs == cell).mean() for cell in (8, 17, 10)])
    np.testing.assert_allclose(shares, 1 / 3, atol=0.04)
    assert set(np.unique(obs)) == {8, 17, 10}


def pendulum_reference(theta, speed, u):
    """Gymnasium's Pendulum-v1 step in plain NumPy: (new theta, new speed, reward)."""
    u = np.clip(u, -2.0, 2.0)
    angle = ((theta + np.pi) % (2 * np.pi)) - np.pi
    cost = angle**2 + 0.1 * speed**2 + 0.001 * u**2
    speed = np.clip(speed + (3 * 10.0 / 2 * np.sin(theta) + 3.0 * u) * 0.05, -8, 8)
    return theta + speed * 0.05, speed, -cost


def test_pendulum_matches_reference():
    env = Pendulum(num_envs=8)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for t in range(200):
        theta, speed = env._state[:, 0].copy(), env._state[:, 1].copy()
        torque = rng.uniform(-3, 3, size=(8, 1))
        obs, reward, terminated, truncated, info = env.step(torque)
        new_theta, new_speed, expected = pendulum_reference(theta, speed, torque[:, 0])
        np.testing.assert_allclose(reward, expected, rtol=1e-5)
        np.testing.assert_allclose(info["final_obs"], np.stack(
            [np.cos(new_theta), np.sin(new_theta), new_speed], 1), atol=1e-6)
        assert not terminated.any() and truncated.all() == (t == 199)


def test_gae_and_returns_match_a_plain_loop():
    rng = np.random.default_rng(0)
    T, n, gamma, lam = 7, 3, 0.9, 0.8
    rewards, values, next_values = rng.normal(size=(3, T, n))
    terminated = rng.random((T, n)) < 0.2
    done = terminated | (rng.random((T, n)) < 0.2)
    advantages, returns = np.zeros((T, n)), np.zeros((T, n))
    rl_kernels.gae(rewards, values, next_values, terminated, done, gamma, lam, advantages)
    rl_kernels.discounted_returns(rewards, done, gamma, returns)
    for j in range(n):
        for t in range(T):
            adv = ret = 0.0
            for k in range(t, T):
                delta = rewards[k, j] + gamma * next_values[k, j] * (
                    not terminated[k, j]) - values[k, j]
                adv += (gamma * lam) ** (k - t) * delta
                ret += gamma ** (k - t) * rewards[k, j]
                if done[k, j]:
                    break
            assert advantages[t, j] == pytest.approx(adv)
            assert returns[t, j] == pytest.approx(ret)


def test_q_update_matches_the_rule():
    table = np.arange(12, dtype=float).reshape(4, 3)
    expected = table.copy()
    rl_kernels.q_update(table, np.array([0, 1]), np.array([2, 0]), np.array([1.0, 2.0]),
                        np.array([3, 2]), np.array([False, True]), 0.5, 0.9)
    expected[0, 2] += 0.5 * (1.0 + 0.9 * 11 - 2)
    expected[1, 0] += 0.5 * (2.0 - 3)
    np.testing.assert_allclose(table, expected)


@pytest.mark.parametrize("actions, words", [
    (np.array([0, 2]), "action 2 of environment 1 is not in the action space Discrete(2)"),
    (np.array([0.0, 1.0]), "actions must be integers"),
    (np.array([0]), "must have shape (2,)"),
])
def test_a_bad_action_is_one_clear_error(actions, words):
    env = CartPole(num_envs=2)
    env.reset(seed=0)
    with pytest.raises(InputError, match="CartPole-v1") as caught:
        env.step(actions)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_a_bad_environment_name_suggests_the_closest():
    with pytest.raises(UnknownEnvironmentError, match="did you mean 'CartPole-v1'"):
        make_env("CartPole-v2")
    result = CliRunner().invoke(cli, ["run", "dqn", "--env", "CartPol"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("Error: unknown environment")


def test_gymnasium_adapter_and_its_absence(monkeypatch):
    pytest.importorskip("gymnasium", reason="the adapter runs Gymnasium's environments")
    env = make_env("gymnasium:CartPole-v1", num_envs=2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 4) and env.single_action_space.n == 2
    obs, reward, *_ = env.step(np.array([0, 1]))
    assert obs.shape == (2, 4) and reward.tolist() == [1.0, 1.0]
    with pytest.raises(UnknownEnvironmentError, match="Gymnasium has no environment"):
        make_env("gymnasium:NoSuchThing-v0")
    monkeypatch.setitem(__import__("sys").modules, "gymnasium", None)
    with pytest.raises(UnknownEnvironmentError, match="pip install gymnasium"):
        make_env("gymnasium:CartPole-v1")


NAN_PLUGIN = """
    import numpy as np
    import nanoml
    from nanoml_rl.spaces import Discrete, box


    class Broken:
        num_envs = 1
        single_observation_space = box([-1.0], [1.0])
        single_action_space = Discrete(2)

        def reset(self, seed=None):
            return np.zeros((1, 1), dtype=np.float32), {}

        def step(self, actions):
            obs = np.full((1, 1), np.nan, dtype=np.float32)
            done = np.zeros(1, dtype=bool)
            return obs, np.ones(1, dtype=np.float32), done, done, {}


    @nanoml.hookimpl
    def register_environments(register):
        register("Broken-v0", lambda num_envs=1: Broken(), "returns NaN")
"""


def test_nan_observations_of_a_third_party_environment(make_distribution, fresh_plugins):
    from nanoml_rl.dqn import DQN

    make_distribution("nanoml-broken", "nanoml_broken", NAN_PLUGIN, {"broken": "nanoml_broken"})
    plugins = fresh_plugins()
    assert plugins.environments["Broken-v0"].plugin == "broken"
    with pytest.raises(InputError, match="environment 'Broken-v0' returned a non-finite "
                                         "observation in a step"):
        DQN(total_steps=50).fit("Broken-v0")
    rows = CliRunner().invoke(cli, ["envs", "--json"]).output
    assert '"Broken-v0"' in rows and '"CartPole-v1"' in rows
