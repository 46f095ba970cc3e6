"""Hook specifications: the plugin author's manual.

A plugin is a module (or any object) with functions decorated by `nanoml.hookimpl`, named
in the `nanoml` entry-point group of its distribution::

    [options.entry_points]
    nanoml =
        myplugin = my_package.plugin

nanoml imports every module of that group when a command needs learners, datasets or
commands. A plugin implements any subset of the hooks below; each is called with keyword
arguments, once per process.
"""

import pluggy

hookspec = pluggy.HookspecMarker("nanoml")


@hookspec
def register_learners(register):
    """Make learners known to nanoml.

    Called when the learner registry is first needed (`nanoml list`, `nanoml run`,
    `nanoml.get_learner`). Call ``register(LearnerClass)`` once per learner, where
    ``LearnerClass`` subclasses `nanoml.Learner` and sets the class attributes ``name``,
    ``task``, ``default_dataset`` and ``description``. Two plugins registering the same
    ``name`` is an error that names both. Return nothing.
    """


@hookspec
def register_datasets(register):
    """Make datasets known to nanoml.

    Called when the dataset registry is first needed. Call
    ``register(name, loader, description, available=None, pipeline=None)`` once per dataset:

    - ``loader(seed, data_dir)`` returns a `nanoml.data.Dataset` (train and test split,
      the split drawn with ``seed``); ``data_dir`` is the folder the user named as holding the
      dataset's files, or None. It raises `nanoml.errors.DatasetUnavailableError` with a
      one-line explanation when the data cannot be had.
    - ``available()``, if given, tells without loading whether the data can be had
      offline; omitted, the dataset counts as always available (embedded).
    - ``pipeline``, if given, names the registered learner that chains the steps the raw
      rows need (a vectorizer for text) before a learner of its task; a run of such a
      learner on the dataset fits it inside that pipeline.

    Return nothing.
    """


@hookspec
def register_environments(register):
    """Make reinforcement-learning environments known to nanoml.

    Called when the environment registry is first needed (`nanoml envs`, a reinforcement
    learner's ``fit``). Call ``register(name, make, description)`` once per environment:
    ``make(num_envs=1)`` returns a batch of `num_envs` copies with Gymnasium's vector API
    (``reset(seed=None) -> (obs, info)``, ``step(actions) -> (obs, reward, terminated,
    truncated, info)``, ``single_observation_space`` and ``single_action_space`` saying
    their shape and bounds); see `nanoml_rl.envs` for the embedded ones. Return nothing.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``nanoml`` click group.

    Called once when the CLI starts, with the `click.Group` as ``cli``; use
    ``@cli.command()`` to add subcommands. Return nothing.
    """
