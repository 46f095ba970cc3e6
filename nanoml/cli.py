"""The ``nanoml`` command line: list, inspect and run the learners plugins provide."""

import json
import re
import warnings

import click

import nanoml
from nanoml.errors import ConvergenceWarning, NanomlError, ParameterError
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
        except KeyboardInterrupt:
            # What a run kept is on disk already (files are written whole, by renaming).
            click.echo("interrupted: files already written are complete; nothing else was "
                       "saved", err=True)
            ctx.exit(130)

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
    warnings.showwarning = _show_warning


_python_show_warning = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """A ConvergenceWarning as one line on stderr; every other warning as Python shows it."""
    if issubclass(category, ConvergenceWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


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
    _ = (plugins.learners, plugins.datasets, plugins.environments)  # records hook errors too
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


@cli.command("envs")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def envs(as_json):
    """List the reinforcement-learning environments the installed plugins provide."""
    rows = [{"name": name, "plugin": entry.plugin, "description": entry.description}
            for name, entry in plugin_set().environments.items()]
    if as_json:
        _echo_json(rows)
        return
    width = max((len(r["name"]) for r in rows), default=4)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['plugin']:<8}  {r['description']}")


def _run_params(cls, assignments, shortcuts, dataset=None):
    """--set values plus the --epochs/--batch-size/--lr/--seed/--device shortcuts."""
    from nanoml.params import parse_assignments
    from nanoml.runner import settable

    params = parse_assignments(cls, assignments, settable(cls, dataset))
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
@click.option("--env", help="Environment of a reinforcement learner ('nanoml envs'; "
                            "gymnasium:ID for an installed Gymnasium one).")
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
@click.option("--overwrite", is_flag=True, help="Write into an --out folder holding a run.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def run(learner, dataset, env, epochs, batch_size, lr, seed, device, assignments, data_dir,
        target, impute, out, overwrite, as_json):
    """Train LEARNER, evaluate it on held-out data, and save a run folder.

    --dataset takes a registered dataset ('nanoml datasets') or a file of one's own: CSV,
    TSV, Parquet, .npy/.npz (arrays X, y), or a folder of images in one subfolder per class.
    """
    cls = plugin_set().learner(learner)
    if env is not None:
        if dataset is not None or cls.task != "reinforcement":
            raise UserError("--env names the environment of a reinforcement learner, in place "
                            "of --dataset")
        dataset = env
    shortcuts = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "device": device}
    params = _run_params(cls, assignments, shortcuts, dataset)
    result = nanoml.run(cls, dataset, params=params, seed=seed, out=out, data_dir=data_dir,
                        target=target, impute=impute, overwrite=overwrite)
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


@cli.command("distill")
@click.option("--teacher", required=True,
              help="A saved model file, or a classifier's name (trained first).")
@click.option("--student", required=True, help="A deep classifier's name, e.g. mlp.")
@click.option("--dataset", help="Dataset (default: the student's own).")
@click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
              help="Set a student hyperparameter; repeatable.")
@click.option("--temperature", type=float, default=4.0, show_default=True,
              help="Softmax temperature of the soft targets.")
@click.option("--alpha", type=float, default=0.1, show_default=True,
              help="Weight of the hard-label loss (the soft one gets 1 - alpha).")
@click.option("--transfer", type=int, help="Jittered copies of each training row, "
              "labelled by the teacher.")
@click.option("--jitter", type=float, default=0.1, show_default=True,
              help="Noise on the transfer copies, in feature standard deviations.")
@click.option("--shift", type=int, default=0, show_default=True,
              help="Move each transfer copy by up to this many pixels (images).")
@click.option("--epochs", type=int, help="Student training epochs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Run folder (default: runs/distill-STUDENT-TIME).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with dataset files.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def distill(teacher, student, dataset, assignments, temperature, alpha, transfer, jitter, shift,
            epochs, seed, out, data_dir, as_json):
    """Distil TEACHER into the deep STUDENT; compare it with the student from labels alone."""
    cls = plugin_set().learner(student)
    params = _run_params(cls, assignments, {"epochs": epochs})
    result = nanoml.distill(teacher, cls, dataset, params=params, temperature=temperature,
                            alpha=alpha, transfer=transfer, jitter=jitter, shift=shift,
                            seed=seed, out=out, data_dir=data_dir)
    if as_json:
        _echo_json(result.summary())
        return
    click.echo(f"{'':<12} {'accuracy':>9} {'parameters':>11} {'file KB':>8} {'rows/s':>10}")
    for key in ("teacher", "distilled", "from_labels"):
        m = result.metrics[key]
        click.echo(f"{key.replace('_', ' '):<12} {m['accuracy']:>9.4f} {m['parameters']:>11,} "
                   f"{m['file_bytes'] / 1024:>8.1f} {m['rows_per_second']:>10,.0f}")
    gap = result.metrics["gap_closed"]
    click.echo("gap to the teacher closed: " + ("n/a" if gap is None else f"{gap:.0%}"))
    click.echo(f"run folder: {result.folder}")


@cli.command("explain")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--dataset", help="Dataset whose test rows are explained (default: the "
              "model's run's, else the learner's own).")
@click.option("--method", help="Method, or several comma-separated (default: the model's "
              "own set); see 'nanoml explain --help'.")
@click.option("--rows", help="Test rows to explain, e.g. 0,5,10-20 (default: one per class).")
@click.option("--steps", type=int, default=50, show_default=True,
              help="Integrated gradients' path steps.")
@click.option("--seed", type=int, help="Seed of the dataset's split and of the random "
              "methods (default: the model's run's, else 0).")
@click.option("--out", type=click.Path(file_okay=False),
              help="Explanation folder (default: runs/explain-NAME-TIME).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Folder with dataset files.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def explain(model, dataset, method, rows, steps, seed, out, data_dir, as_json):
    """Explain the saved MODEL: attributions, exact SHAP values, activations, importances.

    Methods: saliency, gradient-x-input, smoothgrad, integrated-gradients and activations
    (deep learners), permutation (any), occlusion (images), treeshap (trees, forests,
    gradient boosting), linear-shap (linear models), top-words (text pipelines of naive
    Bayes or a linear model).
    """
    result = nanoml.explain(model, dataset, method=method, rows=rows, steps=steps, seed=seed,
                            out=out, data_dir=data_dir)
    if as_json:
        _echo_json(result.summary())
        return
    click.echo(f"{result.learner} on {result.dataset}: explained rows "
               f"{', '.join(map(str, result.rows))}")
    for name, numbers in result.methods.items():
        check = numbers.get("max_completeness_error", numbers.get("max_additivity_error"))
        click.echo(f"  {name}" + ("" if check is None else f" (largest error {check:.2e})"))
    click.echo(f"explanation folder: {result.folder}")


def main(argv=None):
    """Console entry point."""
    return cli.main(args=argv, prog_name="nanoml")


if __name__ == "__main__":
    main()
