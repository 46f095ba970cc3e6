"""Entry point of the classic plugin: registers its learners with nanoml."""

from nanoml import hookimpl
from nanoml_classic.linear import LinearRegression


@hookimpl
def register_learners(register):
    register(LinearRegression)
