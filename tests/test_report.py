"""Run reports (report.html in every run folder) and `nanoml runs`, which compares runs."""

import base64
import html
import json
import re
import shlex
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

import nanoml
from nanoml import report
from nanoml.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two runs (one with settings off their defaults), a junk folder and a half run."""
    root = tmp_path_factory.mktemp("runs")
    nanoml.run("logistic-regression", "moons", params={"C": 0.5, "max_iter": 50}, seed=2,
               out=root / "logistic")
    nanoml.run("ridge", "quadratic", seed=1, out=root / "ridge")
    (root / "junk").mkdir()
    (root / "junk" / "notes.txt").write_text("not a run")
    (root / "half").mkdir()
    (root / "half" / "config.json").write_text("{}")  # no metrics.json: not a run
    return root


def page_of(run):
    return (run / "report.html").read_text(encoding="utf-8")


def command_in(page):
    """The reproduce command shown on a report, as argv."""
    found = re.search(r"<pre><code>(nanoml run .*?)</code></pre>", page, re.S)
    assert found, "no reproduce command on the page"
    return shlex.split(html.unescape(found.group(1)))


def test_the_report_holds_metrics_configuration_and_every_figure(folder):
    run = folder / "logistic"
    page = page_of(run)
    record = json.loads((run / "metrics.json").read_text())
    for name, value in record["test"].items():
        assert f"<td>{name}</td><td class=\"num\">{report.format_number(value)}</td>" in page
    figures = sorted(p.name for p in run.glob("*.png"))
    assert {"confusion_matrix.png", "roc.png", "decision_regions.png"} <= set(figures)
    embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert sorted(base64.b64decode(data) for data in embedded) == sorted(
        (run / name).read_bytes() for name in figures)
    assert "<td>C</td><td><code>0.5</code></td><td><code>1.0</code></td>" in page
    assert "logistic-regression" in page and "moons" in page


def test_the_report_refers_to_nothing_outside_itself(folder):
    for run in ("logistic", "ridge"):
        page = page_of(folder / run)
        assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))
        text = re.sub(r'src="data:image/png;base64,[^"]*"', "", page)  # base64 holds '//'
        assert not re.search(r"https?:|//[a-z]|<link|<script|@import|url\(|href=", text, re.I)


def test_the_reports_command_reproduces_the_run(folder, tmp_path):
    argv = command_in(page_of(folder / "logistic"))
    assert argv[:2] == ["nanoml", "run"]
    assert "--set" in argv and "C=0.5" in argv and "max_iter=50" in argv
    again = invoke(*argv[1:], "--out", tmp_path / "again")
    assert again.exit_code == 0, again.output
    first = json.loads((folder / "logistic" / "metrics.json").read_text())["test"]
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["test"] == first
    config = json.loads((folder / "logistic" / "config.json").read_text())
    assert json.loads((tmp_path / "again" / "config.json").read_text()) == config


def test_the_command_sets_only_what_differs_and_names_what_it_cannot_set():
    defaults = {"sizes": (128,), "flag": False, "rate": 0.1, "seed": 0, "start": "auto",
                "limit": 5}
    params = {"sizes": (16, 8), "flag": True, "rate": 0.1, "seed": 3, "start": np.zeros(2),
              "limit": None}
    config = {"learner": "x", "dataset": "my data.csv", "seed": 3, "params": params}
    command = report.reproduce_command(config, defaults, {"data_dir": "d", "target": None})
    assert command["settings"] == ["sizes=16,8", "flag=true", "limit=none"]
    assert command["unset"] == ["start"]  # an array has no key=value form
    assert command["dataset"] == "'my data.csv'" and command["options"] == [("data_dir", "d")]
    other_seed = report.reproduce_command({**config, "seed": 4}, defaults)
    assert "seed=3" in other_seed["settings"]  # a learner seed unlike the run's seed


def test_every_value_on_the_page_is_escaped(tmp_path):
    hostile = "<script>alert('x')</script>"
    config = {"learner": hostile, "dataset": "a&b", "seed": 0, "nanoml_version": "0",
              "params": {"name": hostile}}
    record = {"test": {hostile: 1.0}, "fit_seconds": 0.1, "history": {}}
    report.write_report(tmp_path, config, record, [], defaults={"name": ""})
    page = (tmp_path / "report.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page and "a&amp;b" in page


def test_a_long_history_is_thinned_to_the_rows_a_page_can_hold(tmp_path):
    losses = list(np.linspace(1.0, 0.1, 1000))
    record = {"test": {}, "fit_seconds": 1.0, "history": {"loss": losses}}
    config = {"learner": "x", "dataset": "d", "seed": 0, "params": {}}
    report.write_report(tmp_path, config, record, [])
    page = (tmp_path / "report.html").read_text()
    epochs = [int(e) for e in re.findall(r'<tr><td class="num">(\d+)</td>', page)]
    assert len(epochs) == report.HISTORY_ROWS and epochs[0] == 1 and epochs[-1] == 1000
    assert f">{report.format_number(losses[-1])}<" in page


def test_runs_prints_an_aligned_table_of_the_runs(folder):
    result = invoke("runs", folder)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["run", "logistic", "ridge"]
    header = lines[0].split()
    assert header[:5] == ["run", "learner", "dataset", "seed", "fit"]
    assert {"accuracy", "r2", "mse"} <= set(header)
    start = lines[0].index("learner")
    assert lines[1][start:].startswith("logistic-regression")
    assert lines[2][start:].startswith("ridge")
    r2 = json.loads((folder / "ridge" / "metrics.json").read_text())["test"]["r2"]
    assert f"{r2:.4f}" in lines[2]


def test_runs_json_gives_each_runs_row(folder):
    rows = json.loads(invoke("runs", folder, "--json").output)
    assert [r["run"] for r in rows] == ["logistic", "ridge"]
    for row in rows:
        run = folder / row["run"]
        assert row["metrics"] == json.loads((run / "metrics.json").read_text())["test"]
        config = json.loads((run / "config.json").read_text())
        assert (row["learner"], row["dataset"], row["seed"]) == (
            config["learner"], config["dataset"], config["seed"])
        assert row["report"] == f"{row['run']}/report.html"


def test_runs_html_writes_one_page_linking_each_report(folder, tmp_path):
    out = tmp_path / "pages" / "runs.html"
    result = invoke("runs", folder, "--html", out)
    assert result.exit_code == 0 and "wrote" in result.output
    page = out.read_text()
    links = re.findall(r'<a href="([^"]+)">', page)
    assert [(out.parent / link).resolve() for link in links] == [
        (folder / run / "report.html").resolve() for run in ("logistic", "ridge")]
    accuracy = json.loads((folder / "logistic" / "metrics.json").read_text())["test"]
    assert f"{accuracy['accuracy']:.4f}" in page and "junk" not in page


def test_a_corrupt_metrics_file_is_one_line_naming_it(folder, tmp_path):
    broken = tmp_path / "runs"
    shutil.copytree(folder / "ridge", broken / "ridge")
    (broken / "ridge" / "metrics.json").write_text('{"test": {"r2": 0.9')
    result = CliRunner().invoke(cli, ["runs", str(broken)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "metrics.json" in lines[0] and "not valid JSON" in lines[0]
    assert "Traceback" not in result.output


def test_an_empty_folder_has_no_runs(tmp_path):
    assert json.loads(invoke("runs", tmp_path, "--json").output) == []
    assert "no runs" in invoke("runs", tmp_path).output


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium installed (apt-get install "
                    "chromium) to render the report")
def test_the_report_renders_in_a_browser(folder, tmp_path):
    import matplotlib.image

    shot = tmp_path / "shot.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--no-first-run", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1000,1400",
         (folder / "logistic" / "report.html").as_uri()],
        capture_output=True, timeout=60, check=True,
    )
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1400, 1000)
    inked = np.mean(pixels.min(axis=2) < 0.9)  # share of pixels that are not near white
    assert inked > 0.05, f"the rendered report is almost blank ({inked:.1%} inked)"
