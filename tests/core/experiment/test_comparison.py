"""`nnrun compare` in process, on run directories written by hand (a summary.json and a config.toml,
as a finished experiment leaves them): which groups and runs it reads, which figure it compares and
which way is better, which pairs are paired by seed and which unpaired, and the table of pairs.

The statistics themselves are pinned against scipy in test_statistics.py; here each expected
figure is computed with that module's functions or by hand from the few values written."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from nnrun.errors import ConfigError
from nnrun.experiment.comparison import (
    compare_groups,
    load_groups,
    metric_mode,
    pairs_table,
    resolve_metric,
)
from nnrun.experiment.statistics import (
    describe,
    group_statistics,
    paired_difference,
    welch_difference,
)


def run(name, status="ok", **figures):
    return {"name": name, "status": status, **figures}


def run_dir(folder, runs, groups=None):
    """A run directory as `show` and `compare` read it; `groups` (name → [(run, seed)]) gives
    summary.json its groups, as an experiment with `seeds` writes them; without, none (a summary
    from before groups existed)."""
    folder.mkdir()
    (folder / "config.toml").write_text('[experiment]\nname = "hand-made"\n')
    entries = {entry["name"]: entry for entry in runs}
    summary = {"runs": runs}
    if groups is not None:
        summary["groups"] = group_statistics(groups, entries)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def seeded(config, values, status=None, figure="final_val_loss"):
    """One configuration's runs over seeds 0, 1, ...: (runs, {config: [(run, seed)]})."""
    status = status or {}
    runs = [
        run(f"{config}/seed={seed}", status.get(seed, "ok"), **{figure: value})
        for seed, value in enumerate(values)
    ]
    return runs, {config: [(entry["name"], seed) for seed, entry in enumerate(runs)]}


# which groups and runs -----------------------------------------------------------------------------
def test_one_directory_keeps_its_names_and_several_are_told_apart_by_their_path(tmp_path):
    runs, groups = seeded("sgd", [0.5, 0.25])
    first = run_dir(tmp_path / "first", runs, groups)
    second = run_dir(tmp_path / "second", runs, groups)

    alone, entries = load_groups([first])
    assert [g["name"] for g in alone] == ["sgd"]
    assert alone[0]["runs"] == ["sgd/seed=0", "sgd/seed=1"]
    assert alone[0]["seeds"] == [0, 1] and alone[0]["final_val_loss"] == describe([0.5, 0.25])
    assert entries == {entry["name"]: entry for entry in runs}

    both, entries = load_groups([first, second])
    assert [g["name"] for g in both] == [f"{first}: sgd", f"{second}: sgd"]
    assert both[1]["runs"] == [f"{second}: sgd/seed=0", f"{second}: sgd/seed=1"]
    assert both[1]["seeds"] == [0, 1]
    assert list(entries) == [f"{d}: sgd/seed={s}" for d in (first, second) for s in (0, 1)]
    assert entries[f"{second}: sgd/seed=1"] == run(f"{second}: sgd/seed=1", final_val_loss=0.25)


def test_a_summary_without_groups_has_one_group_per_run_and_no_seeds(tmp_path):
    runs = [run("sgd", final_loss=0.5), run("adam", "diverged", final_loss=None)]
    folder = run_dir(tmp_path / "old", runs)
    groups, _ = load_groups([folder])
    assert [(g["name"], g["runs"], g["seeds"]) for g in groups] == [
        ("sgd", ["sgd"], [None]),
        ("adam", ["adam"], [None]),
    ]
    assert groups[0]["n"] == 1 and groups[0]["final_loss"] == describe([0.5])
    assert (groups[1]["n"], groups[1]["diverged"]) == (0, ["adam"])


# which figure, which way is better -----------------------------------------------------------------
ENTRIES = {
    "r": run(
        "r",
        final_loss=0.5,
        final_val_loss=0.6,
        final_metrics={"accuracy": 0.9, "mse": 0.1},
        test_metrics={"accuracy": 0.8},
    )
}


@pytest.mark.parametrize(
    "metric,figure",
    [
        (None, "final_val_loss"),
        ("final_loss", "final_loss"),
        ("final_metrics.accuracy", "final_metrics.accuracy"),
        ("accuracy", "test_metrics.accuracy"),  # a bare name: the test figure when there is one
        ("mse", "final_metrics.mse"),  # else the final one
    ],
)
def test_the_figure_compared(metric, figure):
    assert resolve_metric(metric, ENTRIES) == figure


def test_without_validation_the_train_loss_is_compared():
    assert resolve_metric(None, {"r": run("r", final_loss=0.5)}) == "final_loss"


def test_an_unknown_metric_is_refused_with_a_suggestion_and_what_the_runs_have():
    with pytest.raises(ConfigError) as error:
        resolve_metric("acuracy", ENTRIES)
    assert str(error.value) == (
        "--metric 'acuracy': no run has it; did you mean 'accuracy'?; the runs have final_loss, "
        "final_val_loss, final_metrics.accuracy, final_metrics.mse, test_metrics.accuracy"
    )
    with pytest.raises(ConfigError, match=r"the runs have no final figures$"):
        resolve_metric("accuracy", {"r": run("r", "failed")})


@pytest.mark.parametrize(
    "figure,mode",
    [
        ("final_loss", "min"),
        ("final_val_loss", "min"),
        ("final_metrics.accuracy", "max"),
        ("test_metrics.mse", "min"),  # the metric plugin says lower is better
        ("test_metrics.r2", "max"),
        ("final_metrics.not_installed", "max"),  # no plugin of that name: the usual way
    ],
)
def test_which_way_is_better(figure, mode):
    assert metric_mode(figure) == mode


PLUGIN_METRICS = """
import nnrun

class Regret(nnrun.Metric):
    mode = "min"

    def compute(self, pred, target):
        return 0.0

class Coverage(nnrun.Metric):  # says nothing: higher is better, as for Metric itself
    def compute(self, pred, target):
        return 1.0

@nnrun.hookimpl
def register_metrics(register):
    register("regret.top5", Regret)
    register("coverage.top5", Coverage)
"""


def test_a_plugin_metric_says_which_way_is_better_even_with_a_dot_in_its_name(install_plugin):
    install_plugin("nnrun-regret", {"nnrun_regret": PLUGIN_METRICS}, {"regret": "nnrun_regret"})
    assert metric_mode("test_metrics.regret.top5") == "min"
    assert metric_mode("final_metrics.coverage.top5") == "max"
    entries = {"r": run("r", test_metrics={"regret.top5": 0.5, "coverage.top5": 0.25})}
    assert resolve_metric("regret.top5", entries) == "test_metrics.regret.top5"
    with pytest.raises(ConfigError, match=r"did you mean 'regret\.top5'\?"):
        resolve_metric("regret.top6", entries)


# groups and pairs ----------------------------------------------------------------------------------
def test_only_ok_runs_with_the_figure_enter_a_groups_numbers(tmp_path):
    runs, groups = seeded("sgd", [0.5, None, 0.25, 7.0], status={3: "diverged"})
    groups["sgd"].append(("sgd/seed=4", 4))  # interrupted before it ran: not in the runs yet
    comparison = compare_groups([run_dir(tmp_path / "out", runs, groups)])
    (group,) = comparison["groups"]
    assert group == {
        "name": "sgd",
        "runs": ["sgd/seed=0", "sgd/seed=1", "sgd/seed=2", "sgd/seed=3", "sgd/seed=4"],
        "n": 2,
        **describe([0.5, 0.25]),
    }
    assert comparison["pairs"] == []


def test_groups_sharing_seeds_are_paired_on_those_seeds(tmp_path):
    a, a_groups = seeded("sgd", [0.5, 0.4, 0.3, 0.9])
    b, b_groups = seeded("adam", [0.6, 0.2, 0.3], status={1: "diverged"})
    folder = run_dir(tmp_path / "out", a + b, a_groups | b_groups)
    comparison = compare_groups([folder])
    assert (comparison["metric"], comparison["mode"]) == ("final_val_loss", "min")
    (pair,) = comparison["pairs"]
    # seed 1 of adam diverged and seed 3 it never ran: seeds 0 and 2 remain
    expected = paired_difference({0: 0.5, 2: 0.3}, {0: 0.6, 2: 0.3}, "min")
    assert pair == {"a": "sgd", "b": "adam", **expected}
    assert pair["seeds"] == [0, 2] and pair["wins"] == {"a": 1, "b": 0, "ties": 1}


def test_higher_is_better_for_a_metric_that_says_so_or_when_asked(tmp_path):
    a, a_groups = seeded("sgd", [0.9, 0.95], figure="test_metrics")
    b, b_groups = seeded("adam", [0.8, 0.8], figure="test_metrics")
    for entry in a + b:
        entry["test_metrics"] = {"accuracy": entry["test_metrics"], "mae": entry["test_metrics"]}
    folder = run_dir(tmp_path / "out", a + b, a_groups | b_groups)
    by_accuracy = compare_groups([folder], "accuracy")
    assert (by_accuracy["metric"], by_accuracy["mode"]) == ("test_metrics.accuracy", "max")
    assert by_accuracy["pairs"][0]["wins"] == {"a": 2, "b": 0, "ties": 0}
    by_mae = compare_groups([folder], "mae")
    assert (by_mae["metric"], by_mae["mode"]) == ("test_metrics.mae", "min")
    assert by_mae["pairs"][0]["wins"] == {"a": 0, "b": 2, "ties": 0}
    asked = compare_groups([folder], "mae", mode="max")
    assert asked["mode"] == "max" and asked["pairs"][0]["wins"] == {"a": 2, "b": 0, "ties": 0}


def test_groups_without_shared_seeds_are_compared_unpaired(tmp_path):
    first = run_dir(tmp_path / "first", *seeded("sgd", [0.5, 0.4, 0.3]))
    # seeds 5 and 6: none shared with the first directory's 0, 1, 2
    runs = [run("sgd/seed=5", final_val_loss=0.2), run("sgd/seed=6", final_val_loss=0.1)]
    second = run_dir(tmp_path / "second", runs, {"sgd": [("sgd/seed=5", 5), ("sgd/seed=6", 6)]})
    old = run_dir(tmp_path / "old", [run("sgd", final_val_loss=0.3)])  # seeds unknown
    comparison = compare_groups([first, second, old])
    pairs = {(p["a"], p["b"]): p for p in comparison["pairs"]}
    assert list(pairs) == [
        (f"{first}: sgd", f"{second}: sgd"),
        (f"{first}: sgd", f"{old}: sgd"),
        (f"{second}: sgd", f"{old}: sgd"),
    ]
    assert pairs[(f"{first}: sgd", f"{second}: sgd")] == {
        "a": f"{first}: sgd",
        "b": f"{second}: sgd",
        **welch_difference([0.5, 0.4, 0.3], [0.2, 0.1]),
    }
    assert pairs[(f"{first}: sgd", f"{old}: sgd")]["n"] == [3, 1]
    assert [g["n"] for g in comparison["groups"]] == [3, 2, 1]


def test_groups_whose_seeds_are_not_recorded_are_compared_unpaired(tmp_path):
    a, a_groups = seeded("sgd", [0.5, 0.4])
    b, b_groups = seeded("adam", [0.3, 0.1])
    folder = run_dir(tmp_path / "out", a + b, a_groups | b_groups)
    summary = json.loads((folder / "summary.json").read_text())
    for group in summary["groups"]:
        del group["seeds"]  # a summary written before groups recorded their seeds
    (folder / "summary.json").write_text(json.dumps(summary))
    (pair,) = compare_groups([folder])["pairs"]
    assert pair == {"a": "sgd", "b": "adam", **welch_difference([0.5, 0.4], [0.3, 0.1])}


# the table of pairs --------------------------------------------------------------------------------
def lines(table):
    stream = io.StringIO()
    Console(file=stream, width=200, force_terminal=False).print(table)
    return stream.getvalue().splitlines()


def rows(table):
    """The table as shown: its title (wrapped to the table's width, joined again) and its header
    and rows as lists of cells, each cell as printed (padded to its column's width)."""
    shown = lines(table)
    top = next(i for i, line in enumerate(shown) if line.startswith("┏"))
    title = " ".join(line.strip() for line in shown[:top])
    cells = [line[1:-1].split(line[0]) for line in shown[top:] if line[0] in "┃│"]
    return title, cells


def test_the_table_has_a_row_per_pair_with_its_test(tmp_path):
    a, a_groups = seeded("sgd", [0.5, 0.4, 0.3, 0.45, 0.35, 0.6])
    b, b_groups = seeded("adam", [0.25, 0.5, 0.125, 0.3, 0.3, 0.61])
    c = [run("lbfgs/seed=7", final_val_loss=0.1), run("lbfgs/seed=8", final_val_loss=0.25)]
    c_groups = {"lbfgs": [("lbfgs/seed=7", 7), ("lbfgs/seed=8", 8)]}
    folder = run_dir(tmp_path / "out", a + b + c, a_groups | b_groups | c_groups)
    comparison = compare_groups([folder])
    title, cells = rows(pairs_table(comparison))
    assert title == "final_val_loss: a − b (lower is better)"
    header, *body = [[cell.strip() for cell in row] for row in cells]
    assert header == ["a", "b", "seeds", "a − b (mean)", "95% CI", "wins a / b / ties", "p"]
    paired, welch = comparison["pairs"][0], comparison["pairs"][1]
    low, high = paired["ci95"]
    # six distinct nonzero differences, two of them negative: the exact p is 2·7/2⁶
    assert paired["wilcoxon_p"] == pytest.approx(14 / 64)
    assert body[0] == [
        "sgd",
        "adam",
        "6 paired",
        f"{paired['mean_difference']:.4g}",
        f"[{low:.4g}, {high:.4g}]",
        "2 / 4 / 0",
        "0.219 (Wilcoxon)",
    ]
    low, high = welch["ci95"]
    assert welch["welch_p"] == pytest.approx(0.1123, abs=5e-5)
    assert body[1] == [
        "sgd",
        "lbfgs",
        "6 vs 2, unpaired",
        f"{welch['mean_difference']:.4g}",
        f"[{low:.4g}, {high:.4g}]",
        "-",
        "0.112 (Welch)",
    ]
    assert [row[:2] for row in body] == [["sgd", "adam"], ["sgd", "lbfgs"], ["adam", "lbfgs"]]
    # the groups' names read from the left, the figures line up on the right
    for row in cells[1:]:
        assert all(cell[1] != " " for cell in row[:2])
        assert all(cell[-2] != " " for cell in row[2:])
    assert cells[1][2] == "         6 paired " and cells[2][2] == " 6 vs 2, unpaired "


def test_a_pair_without_an_interval_or_p_shows_dashes(tmp_path):
    a = [run("a/seed=0", test_metrics={"accuracy": 0.9})]
    b = [run("b/seed=0", test_metrics={"accuracy": 0.9}), run("b/seed=1", "failed")]
    groups = {"a": [("a/seed=0", 0)], "b": [("b/seed=0", 0), ("b/seed=1", 1)]}
    comparison = compare_groups([run_dir(tmp_path / "out", a + b, groups)], "accuracy")
    title, cells = rows(pairs_table(comparison))
    assert title == "test_metrics.accuracy: a − b (higher is better)"
    assert [cell.strip() for cell in cells[1]] == [
        "a",
        "b",
        "1 paired",
        "0",
        "-",
        "0 / 0 / 1",
        "- (Wilcoxon)",
    ]
