"""The plugins the README shows, written only from it, install, run, save and load."""

import pathlib
import re

import numpy as np
import pytest
from click.testing import CliRunner

import nanoml
from nanoml.cli import cli
from nanoml.testing import check_learner

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _readme_module(first_line):
    """The README's Python block that starts with `first_line`."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    return next(b for b in blocks if b.startswith(first_line))


@pytest.mark.parametrize(
    "first_line, learner, params, flags",
    [
        ("# my_learners/plugin.py", "mean-regressor", {"shrink": 0.5}, []),
        ("# my_learners/deep.py", "wide-net", {"epochs": 2}, ["--epochs", "2"]),
    ],
)
def test_readme_plugin_installs_runs_saves_and_loads(
    first_line, learner, params, flags, make_distribution, fresh_plugins, tmp_path
):
    source = _readme_module(first_line)
    module = "readme_" + learner.replace("-", "_")
    make_distribution("my-learners", module, source, {"my-learners": module})
    plugins = fresh_plugins()
    assert plugins.learners[learner].plugin == "my-learners"
    cls = plugins.learner(learner)
    assert len(source.splitlines()) < 40
    check_learner(cls, params=params)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", learner, *flags, "--out", str(out)])
    assert result.exit_code == 0, result.output
    model = nanoml.load_model(out / "model.npz")
    assert type(model) is cls
    X = np.zeros((2, model.n_features_in_))
    assert model.predict(X).shape == (2,)
