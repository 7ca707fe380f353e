"""End to end: a tiny experiment over seeds leaves groups in summary.json, one table row per group,
a loss.png with bands, and `nnrun compare` figures that equal scipy.stats on the summary's values."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from experiments import two_optimizers
from scipy import stats

import nnrun
from nnrun.cli import main
from nnrun.experiment.assemble import make_data

SEEDED = two_optimizers("seeded", 11, [0, 1, 2], 2, train="shuffle = true\n")


def write(folder, text=SEEDED):
    path = folder / "seeded.toml"
    path.write_text(textwrap.dedent(text))
    return path


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeded")
    result = invoke(write(folder), "--out", folder / "out", "-q")
    assert result.exit_code == 0, result.output
    return folder / "out", result.stdout


def test_the_summary_has_a_group_per_configuration_with_its_statistics(seeded_dir):
    out, _ = seeded_dir
    summary = json.loads((out / "summary.json").read_text())
    runs = {run["name"]: run for run in summary["runs"]}
    assert list(runs) == [f"{c}/seed={s}" for c in ("sgd", "adam") for s in (0, 1, 2)]
    groups = {group["name"]: group for group in summary["groups"]}
    assert list(groups) == ["sgd", "adam"]
    for name, group in groups.items():
        assert group["runs"] == [f"{name}/seed={s}" for s in (0, 1, 2)] and group["seeds"] == [
            0,
            1,
            2,
        ]
        assert group["n"] == 3 and group["diverged"] == []
        for figure in ("final_loss", "final_val_loss"):
            values = [runs[run][figure] for run in group["runs"]]
            got = group[figure]
            assert got["mean"] == pytest.approx(np.mean(values), rel=1e-12)
            assert got["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
            assert got["median"] == pytest.approx(np.median(values), rel=1e-12)
            low, high = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
            assert got["ci95"] == pytest.approx([low, high], rel=1e-12)
    assert not any((out / "checkpoints").glob("*/*/*"))  # `/` in a name made no sub-directory
    assert len(list((out / "checkpoints").iterdir())) == 6
    assert (out / "loss.png").stat().st_size > 0


def test_the_table_has_a_row_per_group_and_runs_shows_every_run(seeded_dir):
    out, stdout = seeded_dir
    summary = json.loads((out / "summary.json").read_text())
    rows = [line.split("│")[1].strip() for line in stdout.splitlines() if "│" in line]
    assert rows == ["sgd", "adam"]
    for group in summary["groups"]:
        line = next(line for line in stdout.splitlines() if f"│ {group['name']} " in line)
        half = (group["final_loss"]["ci95"][1] - group["final_loss"]["ci95"][0]) / 2
        assert f"{group['final_loss']['mean']:.4g} ± {half:.2g}" in line and "3 / 3" in line
    result = invoke("show", out, "--runs")
    rows = [line.split("│")[1].strip() for line in result.stdout.splitlines() if "│" in line]
    assert rows == [run["name"] for run in summary["runs"]]


def test_compare_json_equals_scipy_on_the_summarys_values(seeded_dir):
    out, _ = seeded_dir
    result = invoke("compare", out, "--json")
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.stdout)
    assert comparison["metric"] == "final_val_loss" and comparison["mode"] == "min"
    runs = {r["name"]: r for r in json.loads((out / "summary.json").read_text())["runs"]}
    a = [runs[f"sgd/seed={s}"]["final_val_loss"] for s in (0, 1, 2)]
    b = [runs[f"adam/seed={s}"]["final_val_loss"] for s in (0, 1, 2)]
    (pair,) = comparison["pairs"]
    assert (pair["a"], pair["b"], pair["test"], pair["seeds"]) == (
        "sgd",
        "adam",
        "paired",
        [0, 1, 2],
    )
    interval = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert pair["mean_difference"] == pytest.approx(np.mean(np.subtract(a, b)), rel=1e-12)
    assert pair["ci95"] == pytest.approx([interval.low, interval.high], rel=1e-12)
    assert pair["wilcoxon_p"] == pytest.approx(
        stats.wilcoxon(a, b, zero_method="pratt").pvalue, rel=1e-12
    )
    wins = sum(x < y for x, y in zip(a, b))
    assert pair["wins"] == {"a": wins, "b": 3 - wins, "ties": 0}


def test_compare_pairs_across_directories_and_welch_without_shared_seeds(seeded_dir, tmp_path):
    out, _ = seeded_dir
    other = tmp_path / "other"
    result = invoke(write(tmp_path), "--out", other, "-q", "-o", "experiment.seeds=[5, 6]")
    assert result.exit_code == 0, result.output
    result = invoke("compare", out, other, "--metric", "final_loss", "--json")
    assert result.exit_code == 0, result.output
    pairs = {(p["a"], p["b"]): p for p in json.loads(result.stdout)["pairs"]}
    assert len(pairs) == 6
    welch = pairs[(f"{out}: sgd", f"{other}: sgd")]
    runs = {r["name"]: r for r in json.loads((out / "summary.json").read_text())["runs"]}
    runs2 = {r["name"]: r for r in json.loads((other / "summary.json").read_text())["runs"]}
    a = [runs[f"sgd/seed={s}"]["final_loss"] for s in (0, 1, 2)]
    b = [runs2[f"sgd/seed={s}"]["final_loss"] for s in (5, 6)]
    expected = stats.ttest_ind(a, b, equal_var=False)
    assert welch["test"] == "welch" and welch["n"] == [3, 2]
    assert welch["welch_p"] == pytest.approx(expected.pvalue, rel=1e-12)
    interval = expected.confidence_interval(0.95)
    assert welch["ci95"] == pytest.approx([interval.low, interval.high], rel=1e-12)
    table = invoke("compare", out, other)
    assert table.exit_code == 0 and "(Welch)" in table.stdout and "(Wilcoxon)" in table.stdout


def test_compare_refuses_an_unknown_metric_with_a_suggestion(seeded_dir):
    out, _ = seeded_dir
    result = invoke("compare", out, "--metric", "final_val_los")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert (
        "--metric 'final_val_los': no run has it; did you mean 'final_val_loss'?" in result.stderr
    )


def test_seeds_repeat_deterministically_and_only_the_seed_changes_the_start(tmp_path):
    first = nnrun.run_experiment(nnrun.load_experiment(write(tmp_path)), tmp_path / "a")
    again = nnrun.run_experiment(nnrun.load_experiment(write(tmp_path)), tmp_path / "b")
    losses = [run["final_loss"] for run in first["runs"]]
    assert losses == [run["final_loss"] for run in again["runs"]]
    assert len(set(losses[:3])) == 3  # every seed starts elsewhere
    plain = write(tmp_path, SEEDED.replace("seed = 11\nseeds = [0, 1, 2]", "seed = 1"))
    experiment = nnrun.load_experiment(plain)  # no seeds: seed 1 draws data, weights, shuffling
    grouped = nnrun.load_experiment(write(tmp_path)).runs
    data = [make_data(run) for run in grouped]
    assert all(torch.equal(d.train[0], data[0].train[0]) for d in data)  # one split for all seeds
    assert all(torch.equal(d.val[1], data[0].val[1]) for d in data)
    reseeded = nnrun.load_experiment(write(tmp_path), ["data.reseed=true"]).runs
    drawn = [make_data(run).train[0] for run in reseeded[:3]]  # seeds 0, 1, 2
    assert not torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[1], drawn[2])
    assert torch.equal(make_data(experiment.runs[0]).train[0], drawn[1])  # reseed: S's data
