"""The ``nanoml`` command line: list, inspect and run the learners plugins provide."""

import json
import re

import click

import nanoml
from nanoml.errors import NanomlError, ParameterError
from nanoml.plugins import plugin_set


class UserError(click.ClickException):
    """A mistake in the user's request: one line on stderr, exit code 2, no traceback."""

    exit_code = 2


def _flag(argument):
    """The command-line option for a library argument: lr -> --lr, data_dir -> --data-dir."""
    return "--" + argument.replace("_", "-")


def _in_cli_words(exc):
    """A NanomlError's message, naming the option where the library names its argument."""
    text = str(exc)
    names = (exc.argument,) if isinstance(exc.argument, str) else exc.argument or ()
    for name in names:
        # the word itself, not a part of a path or of a longer name
        text = re.sub(rf"(?<![\w/.-]){re.escape(name)}(?![\w/])", _flag(name), text)
    return text


class NanomlGroup(click.Group):
    """The command group: NanomlError as one line, and plugins' commands added only when
    a command is not one of the group's own (or all are listed), so that `--version` and
    the built-in commands start without importing every plugin."""

    _plugin_commands_added = False

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NanomlError as exc:
            raise UserError(_in_cli_words(exc)) from None

    def _add_plugin_commands(self):
        if not self._plugin_commands_added:
            self._plugin_commands_added = True
            plugin_set().add_commands(self)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None:
            self._add_plugin_commands()
            command = super().get_command(ctx, name)
        return command

    def list_commands(self, ctx):
        self._add_plugin_commands()
        return super().list_commands(ctx)


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
    _report_broken_plugins()
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no learners installed: 'nanoml plugins' shows what was found")
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['task']:<14}  {r['plugin']:<8}  {r['description']}")


def _report_broken_plugins():
    """One line on stderr when plugins failed to load or learners were refused."""
    plugins = plugin_set()
    failed = [r.name for r in plugins.records if r.error]
    refused = list(plugins.refused_learners)
    parts = []
    if failed:
        parts.append(f"{len(failed)} plugin(s) failed to load ({', '.join(failed)})")
    if refused:
        parts.append(f"{len(refused)} learner(s) were refused ({', '.join(refused)})")
    if parts:
        click.echo(f"{'; '.join(parts)}: 'nanoml plugins' says why", err=True)


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
        for problem in r["problems"]:
            click.echo(f"    refused: {problem}")


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
    plugin_width = max((len(r["plugin"]) for r in rows), default=6)
    for r in rows:
        mark = "offline" if r["available"] else "missing"
        click.echo(f"{r['name']:<{width}}  {mark:<7}  {r['plugin']:<{plugin_width}}  "
                   f"{r['description']}")


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
            raise ParameterError(f"learner '{cls.name}' does not take {_flag(key)}")
        params.setdefault(key, value)
    return params


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
@click.option("--target", help="Column to predict, for a table file (default: the last).")
@click.option("--impute", type=click.Choice(["mean", "median", "most-frequent"]),
              help="Fill a table's missing feature values (default: refuse them).")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Run folder (default: runs/NAME-TIME)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def run(learner, dataset, epochs, batch_size, lr, seed, device, assignments, data_dir, target,
        impute, out, as_json):
    """Train LEARNER, evaluate it on held-out data, and save a run folder.

    --dataset takes a registered dataset ('nanoml datasets') or a file of one's own: CSV,
    TSV, Parquet, .npy/.npz (arrays X, y), or a folder of images in one subfolder per class.
    """
    cls = plugin_set().learner(learner)
    shortcuts = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device}
    params = _run_params(cls, assignments, shortcuts)
    result = nanoml.run(cls, dataset, params=params, seed=seed, out=out, data_dir=data_dir,
                        target=target, impute=impute)
    if as_json:
        _echo_json(result.summary())
        return
    click.echo(f"{result.learner} on {result.dataset}: trained in {result.fit_seconds:.2f} s")
    for name, value in result.metrics.items():
        click.echo(f"  {name}: {value:.4f}")
    click.echo(f"run folder: {result.folder}")


@cli.command("new-plugin")
@click.argument("name")
@click.option("--deep", is_flag=True, help="A deep learner (nanoml.deep), not a classical one.")
@click.option("--out", "folder", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Folder to create the package in.")
def new_plugin(name, deep, folder):
    """Write a ready plugin package NAME: its entry point, one learner, a test, a README."""
    from nanoml.scaffold import write_plugin

    path = write_plugin(name, folder, deep=deep)
    click.echo(f"wrote {path}")
    click.echo(f"next: cd {path} && pip install -e '.[test]' && python -m pytest && "
               f"nanoml run {name}")


@cli.command("tune")
@click.argument("learners", nargs=-1)
@click.option("--dataset", help="Dataset to tune on (default: the first learner's own).")
@click.option("--trials", type=int, help="Trials per learner (default 20; grid: all points).")
@click.option("--space", "spaces", multiple=True, metavar="KEY=VALUES",
              help="Search KEY over low..high, low..high:log or a,b,c instead of the "
                   "learner's own values; repeatable.")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Fix a hyperparameter in every trial; repeatable.")
@click.option("--sampler", help="tpe (default), random or grid.")
@click.option("--pruner", help="asha (default: stop poor trials early) or none.")
@click.option("--cv", type=int, help="K-fold cross-validation (default: 20% held out).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--workers", type=int, help="Run trials on a local Dask cluster of N processes.")
@click.option("--scheduler", metavar="tcp://HOST:PORT",
              help="Run trials on the Dask cluster whose scheduler is at this address.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with dataset files.")
@click.option(
    "--out", type=click.Path(file_okay=False), help="Run folder (default: runs/tune-TIME)."
)
@click.option("--resume", type=click.Path(file_okay=False), metavar="FOLDER",
              help="Continue the stopped search in FOLDER, with its settings.")
@click.pass_context
def tune(ctx, learners, dataset, trials, spaces, assignments, sampler, pruner, cv, seed,
         workers, scheduler, data_dir, out, resume):
    """Search the hyperparameters of LEARNERS, choose the best, refit, test and save it."""
    from nanoml.tuning import TuningInterrupted
    from nanoml.tuning.space import split_pairs

    try:
        result = nanoml.tune(
            list(learners) or None, dataset, trials=trials,
            space=split_pairs(spaces, space=True) or None, params=split_pairs(assignments) or None,
            sampler=sampler, pruner=pruner, cv=cv, seed=seed, workers=workers,
            scheduler=scheduler, out=out, data_dir=data_dir, resume=resume,
        )
    except TuningInterrupted as stop:
        click.echo(f"stopped: {stop.finished} finished trials kept in {stop.folder}; "
                   f"'nanoml tune --resume {stop.folder}' continues", err=True)
        ctx.exit(130)
    for line in result.table():
        click.echo(line)
    tested = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    click.echo(f"best: {result.learner} (validation {result.score_name} "
               f"{result.validation_score:.4f}), refitted on all training rows: test {tested}")
    click.echo(f"run folder: {result.folder}")


def _cluster_options(command):
    command = click.option("--workers", type=int,
                           help="Work on a local Dask cluster of N processes.")(command)
    return click.option("--scheduler", metavar="tcp://HOST:PORT",
                        help="Work on the Dask cluster whose scheduler is there.")(command)


@cli.command("predict")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False),
              help="CSV or Parquet file (by its name) to write; default: CSV on stdout.")
@click.option("--proba", is_flag=True, help="Class probabilities instead of classes.")
@_cluster_options
def predict(model, data, out, proba, workers, scheduler):
    """Apply the saved MODEL to DATA (a file or image folder), chunk by chunk."""
    from nanoml.cluster import connected
    from nanoml.prediction import predict_file

    with connected(workers, scheduler) as client:
        rows = predict_file(model, data, out, proba=proba, client=client)
    if out is not None:
        click.echo(f"{rows} predictions written to {out}", err=True)


@cli.command("evaluate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(model, data, as_json):
    """Print the saved MODEL's metrics on labelled DATA."""
    from nanoml.prediction import evaluate_file

    metrics = evaluate_file(model, data)
    if as_json:
        _echo_json(metrics)
        return
    for name, value in metrics.items():
        click.echo(f"{name}: {value:.4f}")


@cli.command("runs")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False),
              help="Also write the table as one self-contained HTML page.")
def runs(folder, as_json, html_file):
    """Compare the runs in FOLDER: learner, dataset, seed, fit time and test metrics."""
    from nanoml.report import compare_runs, runs_table, write_comparison

    rows = compare_runs(folder)
    if html_file:
        write_comparison(rows, html_file, folder)
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo(f"no runs in {folder} (folders with config.json and metrics.json)")
    for line in runs_table(rows) if rows else ():
        click.echo(line)
    if html_file:
        click.echo(f"wrote {html_file}")


def main(argv=None):
    """Console entry point."""
    return cli.main(args=argv, prog_name="nanoml")


if __name__ == "__main__":
    main()
