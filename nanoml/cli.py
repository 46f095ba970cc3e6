"""The ``nanoml`` command line: list, inspect and run the learners plugins provide."""

import contextlib
import datetime
import json
import os
import sys
import time

import click

import nanoml
from nanoml.errors import NanomlError, ParameterError
from nanoml.plugins import plugin_set


class UserError(click.ClickException):
    """A mistake in the user's request: one line on stderr, exit code 2, no traceback."""

    exit_code = 2


class NanomlGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NanomlError as exc:
            raise UserError(str(exc)) from None


def _echo_json(obj):
    click.echo(json.dumps(obj, indent=2, default=str))


@click.group(cls=NanomlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(nanoml.__version__, "--version", prog_name="nanoml")
def cli():
    """nanoml: classical and deep learners with Numba kernels, run from one command."""


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_learners(as_json):
    """List the learners the installed plugins provide."""
    rows = [
        {
            "name": name,
            "plugin": entry.plugin,
            "task": entry.cls.task,
            "default_dataset": entry.cls.default_dataset,
            "description": entry.cls.description,
        }
        for name, entry in plugin_set().learners.items()
    ]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no learners installed: 'nanoml plugins' shows what was found")
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['task']:<14}  {r['plugin']:<8}  {r['description']}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def list_plugins(as_json):
    """List the installed plugins, the hooks each implements, and load errors."""
    plugins = plugin_set()
    _ = (plugins.learners, plugins.datasets)  # registering records hook errors too
    rows = [vars(r) for r in plugins.records]
    if as_json:
        _echo_json(rows)
        return
    for r in rows:
        origin = f"{r['distribution']} {r['version']}".strip()
        click.echo(f"{r['name']}  ({r['module']}; {origin or 'no distribution'})")
        if r["error"]:
            click.echo(f"    failed to load: {r['error']}")
        else:
            click.echo(f"    hooks: {', '.join(r['hooks']) or '(none)'}")


@cli.command("info")
@click.argument("learner")
def info(learner):
    """Show a learner's hyperparameters, defaults and default dataset."""
    entry_cls = plugin_set().learner(learner)
    click.echo(f"{entry_cls.name}: {entry_cls.description}")
    click.echo(f"plugin: {plugin_set().learners[learner].plugin}")
    click.echo(f"task: {entry_cls.task}")
    click.echo(f"default dataset: {entry_cls.default_dataset}")
    click.echo("hyperparameters:")
    for name, default in entry_cls.param_defaults().items():
        space = entry_cls.search_space.get(name)
        tune = f"   (tuning: {space})" if space else ""
        click.echo(f"  {name} = {default!r}{tune}")


@cli.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def datasets(as_json):
    """List the known datasets and whether each is available offline."""
    rows = [
        {
            "name": name,
            "plugin": entry.plugin,
            "available": entry.is_available(),
            "description": entry.description,
        }
        for name, entry in plugin_set().datasets.items()
    ]
    if as_json:
        _echo_json(rows)
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        mark = "offline" if r["available"] else "missing"
        click.echo(f"{r['name']:<{width}}  {mark:<7}  {r['description']}")


def _run_params(cls, assignments, shortcuts):
    """--set values plus the --epochs/--batch-size/--lr/--seed/--device shortcuts."""
    from nanoml.params import parse_assignments

    params = parse_assignments(cls, assignments)
    defaults = cls.param_defaults()
    for key, value in shortcuts.items():
        if value is None:
            continue
        if key not in defaults:
            if key == "seed" or (key == "device" and value == "cpu"):
                continue  # deterministic or CPU-only learners simply ignore these
            flag = "--" + key.replace("_", "-")
            raise ParameterError(f"learner '{cls.name}' does not take {flag}")
        params.setdefault(key, value)
    return params


def _check_task(cls, data):
    supervised = ("classification", "regression")
    if cls.task in supervised and data.task != cls.task:
        raise ParameterError(
            f"learner '{cls.name}' does {cls.task} but dataset '{data.name}' is a "
            f"{data.task} dataset; pick one with --dataset ('nanoml datasets' lists them)"
        )


@contextlib.contextmanager
def _run_folder(path):
    """Make the run folder `path` (and missing parents); if the run fails before writing
    anything there, remove again what was made, so that a mistake leaves no empty folders."""
    made = []
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        made.append(probe)
        probe = os.path.dirname(probe)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    except BaseException:
        for folder in made:  # innermost first
            if os.listdir(folder):
                break
            os.rmdir(folder)
        raise


@cli.command("run")
@click.argument("learner")
@click.option("--dataset", help="Dataset to train on (default: the learner's own).")
@click.option("--epochs", type=int, help="Training epochs, for learners that have them.")
@click.option("--batch-size", type=int, help="Mini-batch size, for learners that have one.")
@click.option("--lr", type=float, help="Learning rate, for learners that have one.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), help="Where to compute.")
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a hyperparameter; repeatable.",
)
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with dataset files.")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Run folder (default: runs/NAME-TIME)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def run(
    learner, dataset, epochs, batch_size, lr, seed, device, assignments, data_dir, out, as_json
):
    """Train LEARNER, evaluate it on held-out data, and save a run folder."""
    from nanoml.data import load_dataset
    from nanoml.modelfile import write_json

    cls = plugin_set().learner(learner)
    shortcuts = {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "device": device,
    }
    params = _run_params(cls, assignments, shortcuts)
    dataset = dataset or cls.default_dataset
    data = load_dataset(dataset, seed=seed, data_dir=data_dir)
    _check_task(cls, data)
    if "input_shape" in cls.param_defaults() and "input_shape" not in params:
        # image and sequence learners take their input shape from the data
        params["input_shape"] = data.image_shape or data.sequence_shape
    model = cls(**params)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = out or os.path.join("runs", f"{cls.name}-{stamp}")
    with _run_folder(folder):
        model.run_folder = folder
        started = time.perf_counter()
        model.fit(data.X_train, data.y_train)
        fit_seconds = time.perf_counter() - started
        results = model.evaluate(data.X_test, data.y_test)
        model.save(os.path.join(folder, "model.npz"))
        figures = model.write_artifacts(folder, data)
        history = getattr(model, "history_", None)
        write_json(
            os.path.join(folder, "metrics.json"),
            {"test": results, "fit_seconds": fit_seconds, "history": history or {}},
        )
        write_json(
            os.path.join(folder, "config.json"),
            {
                "learner": cls.name,
                "params": model.get_params(),
                "dataset": dataset,
                "seed": seed,
                "nanoml_version": nanoml.__version__,
            },
        )
    summary = {
        "learner": cls.name,
        "dataset": dataset,
        "metrics": results,
        "fit_seconds": round(fit_seconds, 4),
        "run_folder": folder,
        "files": ["model.npz", "metrics.json", "config.json", *figures],
    }
    if as_json:
        _echo_json(summary)
        return
    click.echo(f"{cls.name} on {dataset}: trained in {fit_seconds:.2f} s")
    for name, value in results.items():
        click.echo(f"  {name}: {value:.4f}")
    click.echo(f"run folder: {folder}")


_commands_added = False


def main(argv=None):
    """Console entry point: adds the plugins' commands, then runs the CLI."""
    global _commands_added
    if not _commands_added:
        _commands_added = True
        try:
            plugin_set().manager.hook.register_commands(cli=cli)
        except NanomlError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
    return cli.main(args=argv, prog_name="nanoml")


if __name__ == "__main__":
    main()
