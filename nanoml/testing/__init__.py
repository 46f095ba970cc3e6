"""Test helpers for nanoml and its plugins."""

from nanoml.testing.learners import check_learner  # noqa: F401
