"""Test helpers for nanoml and its plugins."""

from nanoml.testing.gradients import gradcheck
from nanoml.testing.learners import check_learner

__all__ = ["check_learner", "gradcheck"]
