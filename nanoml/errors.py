"""Errors that mean "the user asked for something wrong", as opposed to a bug.

The CLI turns any `NanomlError` into one line on stderr and exit code 2; everything
else is a bug and keeps its traceback.
"""

import warnings


class NanomlError(Exception):
    """Base class of every error caused by the user's input or environment.

    ``argument`` names the library argument (or a tuple of them) a message's remedy is
    about (``lr``, ``data_dir``), written as that word in the message; the CLI shows its
    option instead.
    """

    def __init__(self, *args, argument=None):
        super().__init__(*args)
        self.argument = argument


class InputError(NanomlError, ValueError):
    """Data of the wrong shape, type or content (NaN, inf, empty, mismatched lengths)."""


class NotFittedError(NanomlError, ValueError, AttributeError):
    """A learner was asked to predict, score or save before `fit` (a ValueError too, as
    scikit-learn's is)."""


class ParameterError(NanomlError, ValueError):
    """A hyperparameter the learner does not have, or a value it cannot take."""


class UnknownLearnerError(NanomlError, KeyError):
    """No installed plugin registers a learner of that name."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class UnknownDatasetError(NanomlError, KeyError):
    """No installed plugin registers a dataset of that name."""

    def __str__(self):
        return str(self.args[0])


class UnknownEnvironmentError(NanomlError, KeyError):
    """No installed plugin registers a reinforcement-learning environment of that name."""

    def __str__(self):
        return str(self.args[0])


class DatasetUnavailableError(NanomlError):
    """A dataset is known but its files are missing, truncated or corrupt."""


class ModelFileError(NanomlError):
    """A model file is missing, corrupt, or of a format version this nanoml cannot read."""


class PluginConflictError(NanomlError):
    """Two plugins register the same learner or dataset name."""


class LearnerContractError(NanomlError, TypeError):
    """A plugin's learner class breaks the Learner contract (see `nanoml.learner`); the
    plugin's author has to fix it."""


class DeviceError(NanomlError):
    """A device was asked for that this machine cannot provide."""


class RunFolderError(NanomlError):
    """A folder of runs cannot be read: not a folder, or a run's JSON file is corrupt."""


class ConvergenceWarning(UserWarning):
    """An iterative solver stopped at its iteration cap before converging: the result may be
    poor. `nanoml run` prints it as one line."""


def warn_not_converged(solver, cap, tol, advice, stacklevel=3):
    """A ConvergenceWarning: `solver` (e.g. "logistic-regression's L-BFGS") used all `cap`
    (e.g. "max_iter=100 iterations") before reaching tol; `advice` says what to try.
    `stacklevel` 3 points at the caller of the function that warns."""
    warnings.warn(f"{solver} stopped at {cap} before reaching tol={tol}; {advice}",
                  ConvergenceWarning, stacklevel=stacklevel)
