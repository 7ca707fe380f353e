"""What a user sees: plain per-epoch lines (every `log_every` epochs) when stderr is not a terminal,
nothing with -q, the summary as JSON with --json, and run names shown as written."""

from __future__ import annotations

import io
import json
import textwrap
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from rich.console import Console

import nnrun
from nnrun.cli import main
from nnrun.experiment.reporting import ConsoleReporter, results_table

TINY = """
[experiment]
name = "tiny"
seed = 2

[data]
expr = "x**2"
n = 24
split = { val = 0.25 }

[model]
layers = [1, 4, 1]

[optimizer]
name = "sgd"
lr = 0.1

[train]
epochs = 5
batch_size = 8
probes = [1.0, -2.0]
"""


def write(tmp_path, text):
    path = tmp_path / "experiment.toml"
    path.write_text(textwrap.dedent(text))
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def epoch_lines(text):
    return [line for line in text.splitlines() if " epoch " in line]


def expected_line(record, name="tiny", epochs=5):
    probes = "  ".join(f"f({x})={y:.6g}" for x, y in record["probes"].items())
    return (
        f"{name}  epoch {record['epoch']}/{epochs}  train_loss {record['train_loss']:.6g}  "
        f"val_loss {record['val_loss']:.6g}  {probes}"
    )


@pytest.mark.parametrize("log_every,printed", [(1, [1, 2, 3, 4, 5]), (2, [2, 4, 5])])
def test_plain_lines_every_log_every_epochs_and_the_last(tmp_path, log_every, printed):
    stream = io.StringIO()
    reporter = ConsoleReporter(Console(file=stream, force_terminal=False, width=60))
    text = TINY + f"log_every = {log_every}\n"
    nnrun.run_experiment(
        nnrun.load_experiment(write(tmp_path, text)), tmp_path / "out", reporter=reporter
    )
    records = {r["epoch"]: r for r in metrics(tmp_path / "out")}
    # One line per epoch even on a narrow console: a log is read (and grepped) line by line.
    assert epoch_lines(stream.getvalue()) == [expected_line(records[e]) for e in printed]


def test_the_command_prints_per_epoch_lines_with_probes_on_stderr_when_not_a_terminal(tmp_path):
    result = invoke(write(tmp_path, TINY), "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    records = metrics(tmp_path / "out")
    assert epoch_lines(result.stderr) == [expected_line(r) for r in records]
    assert epoch_lines(result.stdout) == []  # stdout holds the results table only
    assert "f(1.0)=" in result.stderr and "tiny" in result.stdout


def test_quiet_prints_no_per_epoch_lines(tmp_path):
    result = invoke(write(tmp_path, TINY), "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    assert epoch_lines(result.output) == [] and "f(1.0)=" not in result.output
    assert "tiny" in result.stdout  # but the results table
    assert result.stderr == f"nnrun: run directory: {tmp_path / 'out'}\n"  # and where it is


def test_the_table_the_last_epoch_line_and_loss_png_show_the_same_final_train_loss(tmp_path):
    from nnrun.experiment.figures import loss_figure

    result = invoke(write(tmp_path, TINY), "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    (entry,) = json.loads((tmp_path / "out" / "summary.json").read_text())["runs"]
    history = metrics(tmp_path / "out")
    shown = f"{entry['final_loss']:.6g}"
    assert f"train_loss {shown} " in epoch_lines(result.stderr)[-1]
    assert row(result.stdout, "tiny")[2] == shown  # the table's "final train loss" column
    (train, *_) = loss_figure({"tiny": history}).axes[0].get_lines()
    assert train.get_ydata()[-1] == entry["final_loss"] == history[-1]["train_loss"]


def test_probes_that_print_alike_are_recorded_apart(tmp_path):
    text = TINY.replace("probes = [1.0, -2.0]", "probes = [0.1, 0.1000001]")
    result = invoke(write(tmp_path, text), "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    (record, *_) = metrics(tmp_path / "out")
    assert list(record["probes"]) == ["0.1", "0.1000001"]


def test_json_prints_the_summary_and_nothing_else_on_stdout(tmp_path):
    result = invoke(write(tmp_path, TINY), "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary.pop("run_dir") == str(tmp_path / "out")
    assert summary == json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["experiment"] == "tiny" and summary["runs"][0]["status"] == "ok"
    assert epoch_lines(result.output) == []


def test_on_a_terminal_a_progress_bar_runs_and_the_epochs_are_still_printed(tmp_path):
    stream = io.StringIO()
    reporter = ConsoleReporter(Console(file=stream, force_terminal=True, width=120))
    bars = []
    started = reporter.run_started

    def run_started(run, epoch, steps_per_epoch):
        started(run, epoch, steps_per_epoch)
        bars.append(reporter.bar)

    reporter.run_started = run_started
    nnrun.run_experiment(
        nnrun.load_experiment(write(tmp_path, TINY)), tmp_path / "out", reporter=reporter
    )
    assert len(bars) == 1 and bars[0] is not None and reporter.bar is None  # started, stopped
    assert "tiny  epoch 5/5" in stream.getvalue()


# ------------------------------------------------------------------------------------------------
# names and messages are text, not rich markup


def test_a_run_named_like_markup_is_shown_as_written(tmp_path):
    stream = io.StringIO()
    reporter = ConsoleReporter(Console(file=stream, force_terminal=False, width=200))
    text = TINY.replace("epochs = 5", "epochs = 1") + '\n[[runs]]\nname = "[b]aseline"\n'
    summary = nnrun.run_experiment(
        nnrun.load_experiment(write(tmp_path, text)), tmp_path / "out", reporter=reporter
    )
    lines = stream.getvalue().splitlines()
    assert any(line.startswith("[b]aseline  epoch 1/1") for line in lines), lines
    assert "ok [b]aseline" in lines
    table = render(results_table(summary))
    assert "[b]aseline" in table


def test_an_error_message_with_brackets_is_reported_whole():
    stream = io.StringIO()
    reporter = ConsoleReporter(Console(file=stream, force_terminal=False, width=200))
    reporter.run_finished(
        {"name": "a", "status": "failed", "error": "OSError: cannot write [/tmp/x] [model]"}
    )
    assert stream.getvalue().strip() == "failed a: OSError: cannot write [/tmp/x] [model]"


# ------------------------------------------------------------------------------------------------
# the results table


def render(table):
    stream = io.StringIO()
    Console(file=stream, width=200, force_terminal=False).print(table)
    return stream.getvalue()


def row(text, name):
    (line,) = [line for line in text.splitlines() if f"│ {name} " in line]
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_results_table_has_train_and_solve_columns_for_a_mixed_summary():
    summary = {
        "experiment": "mixed",
        "runs": [
            {
                "name": "fit",
                "task": "train",
                "status": "ok",
                "final_loss": 0.012345678,
                "final_val_loss": 0.02,
                "epochs": 7,
                "seconds": 1.23456,
            },
            {
                "name": "roots",
                "task": "solve",
                "status": "ok",
                "roots": [0.5, 2.0],
                "iterations": 31,
                "converged": True,
                "seconds": 0.5,
            },
            {"name": "later", "status": "pending"},
        ],
    }
    text = render(results_table(summary))
    assert "mixed" in text.splitlines()[0]
    header = [cell.strip() for cell in text.splitlines()[2].split("┃")[1:-1]]
    assert header == [
        "run",
        "status",
        "final train loss",
        "final val loss",
        "epochs",
        "roots",
        "iterations",
        "converged",
        "time (s)",
    ]
    assert row(text, "fit") == ["fit", "ok", "0.0123457", "0.02", "7", "", "", "", "1.23"]
    assert row(text, "roots") == ["roots", "ok", "", "", "", "0.5, 2.0", "31", "True", "0.5"]
    assert row(text, "later") == ["later", "pending", "-", "-", "", "", "", "", ""]


def test_the_table_says_where_early_stopping_ended_and_which_weights_it_kept():
    common = {"task": "train", "status": "ok", "epochs": 23, "stopped_early": True}
    summary = {
        "experiment": "stops",
        "runs": [
            {"name": "kept", **common, "best_epoch": 13, "restored_best": True},
            {"name": "last", **common, "best_epoch": 13, "restored_best": False},
            {"name": "full", "task": "train", "status": "ok", "epochs": 30},
            {
                "name": "back",
                **common,
                "epochs": 30,
                "stopped_early": False,
                "best_epoch": 28,
                "restored_best": True,
            },
        ],
    }
    text = render(results_table(summary))
    assert row(text, "kept")[1] == "ok (early stop @ 23, best 13)"
    assert row(text, "last")[1] == "ok (early stop @ 23, best 13, not restored)"
    assert row(text, "full")[1] == "ok"
    assert row(text, "back")[1] == "ok (best 28 of 30)"  # ran every epoch, ended on the 28th's


def test_the_table_tells_no_real_roots_from_roots_not_found():
    solve = {"task": "solve", "iterations": 9, "seconds": 0.1}
    summary = {
        "experiment": "roots",
        "runs": [
            {"name": "none", **solve, "status": "ok", "roots": [], "converged": True},
            {"name": "lost", **solve, "status": "ok", "roots": [], "converged": False},
            {"name": "away", **solve, "status": "diverged", "roots": [], "converged": False},
            {"name": "half", **solve, "status": "ok", "roots": [0.5], "converged": False},
        ],
    }
    text = render(results_table(summary))
    assert row(text, "none")[1:3] == ["ok", "none"]
    assert row(text, "lost")[1:3] == ["not converged", "-"]
    assert row(text, "away")[1:3] == ["diverged", "-"]
    assert row(text, "half")[1:3] == ["not converged", "0.5"]


def test_an_early_stop_between_log_every_lines_still_shows_the_last_epoch():
    stream = io.StringIO()
    reporter = ConsoleReporter(Console(file=stream, force_terminal=False, width=200))
    run = SimpleNamespace(name="r", train=SimpleNamespace(log_every=5, epochs=50))
    for epoch in (1, 2, 3):
        reporter.epoch(run, {"epoch": epoch, "train_loss": 1.0 / epoch})
    reporter.run_finished({"name": "r", "status": "ok"})
    assert epoch_lines(stream.getvalue()) == ["r  epoch 3/50  train_loss 0.333333"]


def test_the_table_has_a_column_per_final_and_test_metric_and_the_test_loss():
    summary = {
        "experiment": "classes",
        "runs": [
            {
                "name": "a",
                "task": "train",
                "status": "ok",
                "final_loss": 0.5,
                "final_val_loss": 0.25,
                "test_loss": 0.3,
                "final_metrics": {"accuracy": 0.9, "f1_macro": 0.875},
                "test_metrics": {"accuracy": 0.8125, "f1_macro": 0.75},
                "epochs": 4,
                "seconds": 1.0,
            },
            {
                "name": "b",
                "task": "train",
                "status": "ok",
                "final_loss": 0.5,
                "final_val_loss": 0.25,
                "final_metrics": {"accuracy": 0.5},
                "epochs": 4,
                "seconds": 1.0,
            },
        ],
    }
    text = render(results_table(summary))
    header = [cell.strip() for cell in text.splitlines()[2].split("┃")[1:-1]]
    assert header == [
        "run",
        "status",
        "final train loss",
        "final val loss",
        "test loss",
        "final accuracy",
        "final f1_macro",
        "test accuracy",
        "test f1_macro",
        "epochs",
        "time (s)",
    ]
    assert row(text, "a")[4:9] == ["0.3", "0.9", "0.875", "0.8125", "0.75"]
    assert row(text, "b")[4:9] == ["-", "0.5", "-", "-", "-"]


def test_epoch_lines_show_the_metrics_and_show_prints_them_again(tmp_path):
    text = textwrap.dedent(TINY).replace("[train]\n", '[train]\nmetrics = ["r2", "mae"]\n')
    (tmp_path / "e.toml").write_text(text)
    result = CliRunner().invoke(
        main, ["run", str(tmp_path / "e.toml"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    records = [
        json.loads(line) for line in (tmp_path / "o" / "metrics.jsonl").read_text().splitlines()
    ]
    last = records[-1]
    assert f"val_r2 {last['val_r2']:.6g}  val_mae {last['val_mae']:.6g}" in result.stderr
    shown = CliRunner().invoke(main, ["show", str(tmp_path / "o")])
    assert "final r2" in shown.stdout and "final mae" in shown.stdout
    assert f"{last['val_r2']:.6g}" in shown.stdout
