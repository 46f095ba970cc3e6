"""Entry point of the reinforcement-learning plugin: its environments and agents."""

from nanoml import hookimpl
from nanoml_rl.dqn import DQN
from nanoml_rl.envs import EMBEDDED
from nanoml_rl.ppo import PPO
from nanoml_rl.qlearning import QLearning
from nanoml_rl.reinforce import Reinforce


@hookimpl
def register_learners(register):
    for learner in (QLearning, Reinforce, DQN, PPO):
        register(learner)


@hookimpl
def register_environments(register):
    for name, (make, description) in EMBEDDED.items():
        register(name, make, description)
