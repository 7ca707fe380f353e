"""The command line: both examples end to end, and every kind of bad input as one clear error."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from nnrun.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

TRAIN = """
[experiment]
name = "tiny"
seed = 0

[data]
expr = "x**2"
n = 64
range = [-2.0, 2.0]
noise = 0.1

[model]
layers = [1, 8, 1]

[optimizer]
name = "sgd"
lr = 0.01
momentum = 0.9

[train]
epochs = 2
batch_size = 8
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def write(tmp_path, text, name="experiment.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.slow  # 16 s on a quiet 2-core machine, minutes on a busy one; test_examples.py runs it shortened
def test_seed_experiment_runs_all_four_optimizers_to_a_small_loss(tmp_path):
    result = invoke(EXAMPLES / "x_squared.toml", "--out", tmp_path / "run", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [r["name"] for r in summary["runs"]] == ["sgd_momentum", "adagrad", "rmsprop", "adam"]
    for run in summary["runs"]:
        assert run["status"] == "ok"
        assert run["epochs"] == 20
        assert run["final_loss"] < 0.05, run
        assert set(run["probes"]) == {"1.0", "2.0", "-1.0", "-2.0"}
        assert abs(run["probes"]["2.0"] - 4.0) < 0.5
    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert len(records) == 4 * 20
    assert {"run", "epoch", "train_loss", "probes"} <= set(records[0])


def test_solve_example_prints_both_roots_to_twelve_digits(tmp_path):
    result = invoke(EXAMPLES / "roots.toml", "--out", tmp_path / "roots", "--json")
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)["runs"]
    low, high = run["roots"]
    assert math.isclose(low, 3 - math.sqrt(5), rel_tol=1e-12)
    assert math.isclose(high, 3 + math.sqrt(5), rel_tol=1e-12)
    assert run["converged"] and run["iterations"] > 0


def test_run_directory_holds_config_metrics_summary_and_plot(tmp_path):
    out = tmp_path / "run"
    result = invoke(write(tmp_path, TRAIN), "--out", out)
    assert result.exit_code == 0, result.output
    for name in (
        "config.toml",
        "environment.json",
        "metrics.jsonl",
        "summary.json",
        "loss.png",
        "fit.png",
    ):
        assert (out / name).is_file(), name
    assert "tiny" in result.stdout and "ok" in result.stdout  # the results table


def test_same_file_and_seed_give_the_same_numbers(tmp_path):
    path = write(tmp_path, TRAIN)
    first = json.loads(invoke(path, "--out", tmp_path / "a", "--json").stdout)
    second = json.loads(invoke(path, "--out", tmp_path / "b", "--json").stdout)
    assert first["runs"][0]["final_loss"] == second["runs"][0]["final_loss"]


def test_plugins_lists_components_with_their_distribution():
    result = invoke("plugins")
    assert result.exit_code == 0
    assert (
        "adam" in result.output
        and "quadratic_descent" in result.output
        and "nnrun 0.1.0" in result.output
    )


BAD_INPUTS = {
    "toml syntax": ("[experiment\nname = 'x'\n", r"invalid TOML.*line 1"),
    "unknown key": (
        TRAIN.replace("epochs = 2", "epochz = 2"),
        r"\[train\] unknown key 'epochz'; did you mean 'epochs'",
    ),
    "unknown table": (
        TRAIN + "\n[optimiser]\nname='sgd'\n",
        r"unknown table \[optimiser\]; did you mean 'optimizer'",
    ),
    "unknown component": (
        TRAIN.replace('name = "sgd"', 'name = "adamm"'),
        r"unknown optimizer 'adamm'; did you mean 'adam'",
    ),
    "foreign hyperparameter": (
        TRAIN.replace("momentum = 0.9", "betas = [0.9, 0.99]"),
        r"sgd' does not take 'betas'; it takes lr=0.001, momentum",
    ),
    "wrong type": (TRAIN.replace("epochs = 2", 'epochs = "ten"'), r"\[train\] epochs = \"ten\""),
    "negative lr": (TRAIN.replace("lr = 0.01", "lr = -0.1"), r"Invalid learning rate: -0.1"),
    "zero width": (TRAIN.replace("[1, 8, 1]", "[1, 0, 1]"), r"layers.*at least 1"),
    "zero epochs": (
        TRAIN.replace("epochs = 2", "epochs = 0"),
        r"epochs = 0.*greater than or equal to 1",
    ),
    "zero batch": (TRAIN.replace("batch_size = 8", "batch_size = 0"), r"batch_size = 0"),
    "zero n": (TRAIN.replace("n = 64", "n = 0"), r"\[data\]: dataset .function.: Invalid n: 0"),
    "layers don't fit data": (
        TRAIN.replace("[1, 8, 1]", "[2, 8, 1]"),
        r"has 1 input\(s\) \(x\), so the first width must be 1",
    ),
    "unsafe expr": (TRAIN.replace('"x**2"', "\"__import__('os')\""), r"expr"),
    "missing table": (
        "[experiment]\nname = 'x'\n",
        r"a train experiment needs \[data\], \[model\], \[optimizer\], \[train\]",
    ),
    "degenerate equation": (
        "[experiment]\ntask = 'solve'\n[solver]\nname = 'quadratic_descent'\na = 0.0\nb = 0.0\nc = 1.0\n",
        r"degenerate",
    ),
    "empty file": ("", r"the file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_one_paragraph_and_exit_status_2(tmp_path, case):
    text, message = BAD_INPUTS[case]
    result = invoke(write(tmp_path, text), "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    error = result.stderr.strip()
    assert error.startswith("Error: ") and error.count("\n") == 0, error
    import re

    assert re.search(message, error), error
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_missing_and_unreadable_files_exit_2(tmp_path):
    assert invoke(tmp_path / "nope.toml").exit_code == 2
    assert invoke(tmp_path).exit_code == 2
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00bad")
    result = invoke(binary)
    assert result.exit_code == 2 and "cannot read" in result.stderr


def test_typo_in_override_is_rejected_with_a_suggestion(tmp_path):
    result = invoke(write(tmp_path, TRAIN), "-o", "optimizer.lrr=0.1", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "does not take 'lrr'; did you mean 'lr'" in result.stderr
    result = invoke(write(tmp_path, TRAIN), "-o", "train.epochz=3", "--out", tmp_path / "o")
    assert "did you mean 'epochs'" in result.stderr


def test_refuses_a_non_empty_out_directory_without_resume_or_force(tmp_path):
    out = tmp_path / "out"
    assert invoke(write(tmp_path, TRAIN), "--out", out, "-q").exit_code == 0
    result = invoke(write(tmp_path, TRAIN), "--out", out)
    assert result.exit_code == 2 and "not empty" in result.stderr
    assert invoke(write(tmp_path, TRAIN), "--out", out, "--force", "-q").exit_code == 0
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # not 4: the old ones went


def test_force_keeps_a_users_file_in_a_run_directory_and_deletes_nothing(tmp_path):
    out = tmp_path / "out"
    assert invoke(write(tmp_path, TRAIN), "--out", out, "-q").exit_code == 0
    (out / "thesis.txt").write_text("three years of work")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    result = invoke(write(tmp_path, TRAIN), "--out", out, "--force", "-q")
    assert result.exit_code == 2 and "thesis.txt" in result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert (out / "thesis.txt").read_text() == "three years of work"


def test_force_never_deletes_a_directory_that_is_not_a_run_directory(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = invoke(write(tmp_path, TRAIN), "--out", out, "--force")
    assert (
        result.exit_code == 2 and "only overwrites a run directory nnrun created" in result.stderr
    )
    assert (out / "keep.txt").read_text() == "mine"


def test_resuming_a_file_without_a_seed_reuses_the_seed_drawn_the_first_time(tmp_path):
    path = write(tmp_path, TRAIN.replace("seed = 0\n", ""))
    out = tmp_path / "out"
    first = json.loads(invoke(path, "--out", out, "--json").stdout)
    result = invoke(path, "--out", out, "--resume", "--json")
    assert result.exit_code == 0, result.output  # not refused as a changed config
    assert json.loads(result.stdout) == first
