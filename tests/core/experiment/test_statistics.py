"""Group statistics and group differences against scipy.stats and numpy on hand-made values.

Tolerance: rel 1e-12. Both sides compute in float64 from the same few values; only the order of
the sums differs, a few ulps at most."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nnrun.experiment.statistics import (
    describe,
    figure_names,
    figure_value,
    group_figure,
    group_statistics,
    paired_difference,
    t_quantile,
    welch_difference,
)

REL = 1e-12


def close(value, expected):
    return value == pytest.approx(expected, rel=REL, abs=1e-15)


@pytest.mark.parametrize(
    "values",
    [[0.25, 0.5, 0.125], [3.0, 3.0, 3.0, 3.0], [1e-3, 2e-3], [5.0, -1.0, 2.5, 0.0, 7.25, 1.5]],
)
def test_describe_equals_numpy_and_scipys_t_interval(values):
    got = describe(values)
    n = len(values)
    assert close(got["mean"], np.mean(values))
    assert close(got["std"], np.std(values, ddof=1))
    assert close(got["median"], np.median(values))
    assert (got["min"], got["max"]) == (min(values), max(values))
    if np.std(values) == 0:  # scipy refuses a zero scale; the interval is the mean itself
        low = high = np.mean(values)
    else:
        low, high = stats.t.interval(0.95, n - 1, loc=np.mean(values), scale=stats.sem(values))
    assert close(got["ci95"][0], low) and close(got["ci95"][1], high)


def test_the_t_factor_is_the_tabulated_one():
    # t₀.₉₇₅ for 1, 2 and 4 degrees of freedom, from any table: 12.706, 4.303, 2.776
    assert [round(t_quantile(n), 3) for n in (2, 3, 5)] == [12.706, 4.303, 2.776]


def test_one_value_has_no_spread_and_no_interval():
    assert describe([0.5]) == {
        "mean": 0.5,
        "std": None,
        "median": 0.5,
        "min": 0.5,
        "max": 0.5,
        "ci95": None,
    }
    assert describe([]) == dict.fromkeys(("mean", "std", "median", "min", "max", "ci95"))


def test_a_diverged_seed_is_counted_and_listed_not_averaged():
    entries = {
        "a/seed=0": {"name": "a/seed=0", "status": "ok", "final_loss": 0.5, "final_val_loss": 0.6},
        "a/seed=1": {"name": "a/seed=1", "status": "diverged", "final_loss": None},
        "a/seed=2": {"name": "a/seed=2", "status": "ok", "final_loss": 0.25, "final_val_loss": 0.3},
        "a/seed=3": {"name": "a/seed=3", "status": "failed", "error": "boom"},
    }
    members = {"a": [(name, int(name[-1])) for name in entries]}
    (group,) = group_statistics(members, entries)
    assert group["runs"] == list(entries) and group["seeds"] == [0, 1, 2, 3]
    assert (group["n"], group["n_diverged"]) == (2, 1)
    assert group["diverged"] == ["a/seed=1"] and group["not_finished"] == ["a/seed=3"]
    assert group["final_loss"] == describe([0.5, 0.25])
    assert close(group["final_val_loss"]["mean"], 0.45)


def test_metrics_get_statistics_laid_out_as_in_a_run_entry():
    entries = {
        f"r{i}": {
            "name": f"r{i}",
            "status": "ok",
            "final_loss": 0.1 * (i + 1),
            "final_metrics": {"accuracy": acc},
            "test_metrics": {"accuracy": acc - 0.1, "mae": 0.5},
        }
        for i, acc in enumerate([0.9, 0.8, 0.95])
    }
    (group,) = group_statistics({"g": [(name, None) for name in entries]}, entries)
    assert group["final_metrics"]["accuracy"] == describe([0.9, 0.8, 0.95])
    assert close(group["test_metrics"]["accuracy"]["median"], 0.8)
    assert group["test_metrics"]["mae"]["std"] == 0.0


PAIRS = [
    # plain, all one sign: the exact Wilcoxon p is 2/2⁵
    ([1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 1.0, 2.0, 3.5, 4.0]),
    # ties among the |differences| and a zero difference (seed 3)
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [0.5, 2.5, 2.5, 4.0, 4.5, 6.5]),
    # more seeds, mixed signs
    (list(np.linspace(0.1, 1.0, 9)), list(np.linspace(0.1, 1.0, 9)[::-1] ** 2)),
    # 16 seeds with zeros and ties: past 13, scipy's normal approximation, where Pratt's zeros
    # count (zero_method="wilcox" gives another p here)
    (
        [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        [1.0, 2.0, 2.5, 3.5, 5.5, 4.0, 6.0, 6.5, 1.0, 1.5, 2.5, 2.0, 4.5, 6.5, 5.0, 7.5],
    ),
]


@pytest.mark.parametrize("a,b", PAIRS)
def test_the_paired_difference_equals_scipys_ttest_rel_and_wilcoxon(a, b):
    got = paired_difference(dict(enumerate(a)), dict(enumerate(b)))
    difference = np.subtract(a, b)
    assert got["n"] == len(a) and got["seeds"] == list(range(len(a)))
    assert close(got["mean_difference"], difference.mean())
    interval = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert close(got["ci95"][0], interval.low) and close(got["ci95"][1], interval.high)
    assert close(got["wilcoxon_p"], stats.wilcoxon(a, b, zero_method="pratt").pvalue)
    assert got["wins"] == {
        "a": int((difference < 0).sum()),
        "b": int((difference > 0).sum()),
        "ties": int((difference == 0).sum()),
    }


def test_wilcoxon_on_five_positive_differences_is_the_exact_two_sided_p():
    got = paired_difference(dict(enumerate([2.0, 3, 4, 5, 6])), dict(enumerate([1.0] * 5)))
    assert got["wilcoxon_p"] == pytest.approx(2 / 2**5, rel=REL)
    assert got["wins"] == {"a": 0, "b": 5, "ties": 0}  # lower is better: b wins every seed


def test_higher_is_better_turns_the_wins_around():
    got = paired_difference({0: 0.9, 1: 0.8}, {0: 0.7, 1: 0.8}, mode="max")
    assert got["wins"] == {"a": 1, "b": 0, "ties": 1}


def test_pairs_only_on_shared_seeds_and_one_seed_has_no_interval():
    got = paired_difference({0: 1.0, 1: 2.0, 7: 5.0}, {1: 1.5, 2: 0.0})
    assert got["seeds"] == [1] and got["mean_difference"] == 0.5
    assert got["ci95"] is None
    assert got["wilcoxon_p"] == stats.wilcoxon([0.5], zero_method="pratt").pvalue


def test_every_difference_zero_has_no_wilcoxon_p():
    got = paired_difference({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert got["wilcoxon_p"] is None and got["wins"]["ties"] == 2


@pytest.mark.parametrize(
    "a,b",
    [
        ([1.0, 2.0, 3.5], [2.0, 4.0, 7.0, 9.0]),
        ([0.1, 0.11, 0.12, 0.2], [0.3, 0.31]),
        ([5, 5.5], [1, 9]),
        ([1.0, 2.0], [3.0, 4.0]),  # the same spread on both sides
        ([0.0, 2.0], [5.0, 5.0]),  # no spread on one side: all of the variance is a's
    ],
)
# scipy warns of precision loss on the group without spread (its own moment check), not nnrun
@pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")
def test_the_unpaired_difference_equals_scipys_welch_test(a, b):
    got = welch_difference(a, b)
    result = stats.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(0.95)
    assert close(got["mean_difference"], np.mean(a) - np.mean(b))
    assert close(got["df"], result.df) and close(got["welch_p"], result.pvalue)
    assert close(got["ci95"][0], interval.low) and close(got["ci95"][1], interval.high)


def test_welch_needs_two_values_on_each_side():
    got = welch_difference([1.0], [2.0, 3.0])
    assert got["mean_difference"] == -1.5
    assert got["ci95"] is None and got["welch_p"] is None and got["df"] is None


def test_integer_values_are_described_as_floats():
    got = describe([3, 1, 2])
    assert (got["median"], got["min"], got["max"]) == (2.0, 1.0, 3.0)
    assert all(type(got[key]) is float for key in ("mean", "std", "median", "min", "max"))


def test_the_figures_are_every_final_number_in_the_order_first_met():
    entries = [
        {"final_val_loss": 0.5, "test_metrics": {"mae": 0.1}, "final_metrics": None},
        {"final_loss": 0.4, "final_metrics": {"mse": 0.2}, "test_metrics": {"mae": 0.3}},
        {"status": "failed"},
    ]
    assert figure_names(entries) == [
        "final_val_loss",
        "test_metrics.mae",
        "final_loss",
        "final_metrics.mse",
    ]


@pytest.mark.parametrize(
    "entry,figure,value",
    [
        ({"final_loss": 0.5}, "final_loss", 0.5),
        ({"final_loss": 2}, "final_loss", 2.0),
        ({"final_loss": None}, "final_loss", None),  # a diverged run's loss
        ({"final_loss": float("inf")}, "final_loss", None),
        ({"final_loss": float("nan")}, "final_loss", None),
        ({"final_loss": True}, "final_loss", None),  # JSON true is no figure
        ({"final_loss": "0.5"}, "final_loss", None),
        ({}, "final_loss", None),
        ({"test_metrics": {"mae": 0.25}}, "test_metrics.mae", 0.25),
        ({"test_metrics": {"mae": 0.25}}, "test_metrics.mse", None),
        ({"test_metrics": None}, "test_metrics.mae", None),
        ({"final_metrics": {"mae": 0.25}}, "test_metrics.mae", None),
    ],
)
def test_the_value_of_a_figure_is_a_finite_number_or_none(entry, figure, value):
    got = figure_value(entry, figure)
    assert got == value and (value is None or type(got) is float)


def test_a_run_not_in_the_summary_yet_is_listed_but_not_counted():
    entries = {
        "a/seed=0": {"name": "a/seed=0", "status": "ok", "final_loss": 0.5, "final_val_loss": None},
        "a/seed=1": {"name": "a/seed=1", "status": "running"},
    }
    members = {"a": [("a/seed=0", 0), ("a/seed=1", 1), ("a/seed=2", 2)]}
    (group,) = group_statistics(members, entries)
    assert group["runs"] == ["a/seed=0", "a/seed=1", "a/seed=2"] and group["seeds"] == [0, 1, 2]
    assert (group["n"], group["n_diverged"], group["not_finished"]) == (1, 0, ["a/seed=1"])
    assert group["final_loss"] == describe([0.5])
    assert group["final_val_loss"] == describe([])  # the key is there, its value is not
    assert "final_metrics" not in group and "test_metrics" not in group


def test_group_statistics_keeps_the_groups_order():
    entries = {name: {"name": name, "status": "ok", "final_loss": 1.0} for name in ("x", "y")}
    groups = group_statistics({"y": [("y", None)], "x": [("x", None)]}, entries)
    assert [g["name"] for g in groups] == ["y", "x"]


def test_lower_is_better_unless_told_otherwise():
    a, b = {0: 1.0, 1: 3.0, 2: 2.0}, {0: 2.0, 1: 1.0, 2: 2.0}
    assert paired_difference(a, b)["wins"] == {"a": 1, "b": 1, "ties": 1}
    assert paired_difference(a, {0: 2.0, 1: 4.0, 2: 2.0})["wins"] == {"a": 2, "b": 0, "ties": 1}
    assert paired_difference(a, {0: 2.0, 1: 4.0, 2: 2.0}, "max")["wins"]["b"] == 2


@pytest.mark.parametrize("a,b", [([], [1.0, 2.0]), ([1.0, 2.0], []), ([], [])])
def test_welch_of_an_empty_group_has_no_difference(a, b):
    assert welch_difference(a, b) == {
        "test": "welch",
        "n": [len(a), len(b)],
        "mean_difference": None,
        "ci95": None,
        "df": None,
        "welch_p": None,
    }


def test_welch_without_spread_on_either_side_has_a_difference_but_no_test():
    got = welch_difference([1.0, 1.0], [0.25, 0.25, 0.25])
    assert got["mean_difference"] == 0.75 and got["n"] == [2, 3]
    assert got["ci95"] is None and got["df"] is None and got["welch_p"] is None


def test_a_groups_figure_is_found_where_group_statistics_put_it():
    entries = {
        "r": {
            "name": "r",
            "status": "ok",
            "final_loss": 0.5,
            "final_metrics": {"accuracy": 0.75},
            "test_metrics": {"accuracy": 0.5},
        }
    }
    (group,) = group_statistics({"g": [("r", None)]}, entries)
    assert group_figure(group, "final_loss") == describe([0.5])
    assert group_figure(group, "final_metrics.accuracy") == describe([0.75])
    assert group_figure(group, "test_metrics.accuracy") == describe([0.5])
    for missing in ("final_val_loss", "test_metrics.mae", "final_metrics.accuracy.x", "n"):
        assert group_figure(group, missing) is None  # `n` is a number, not a figure's statistics
    assert group_figure({"final_metrics": None}, "final_metrics.accuracy") is None
