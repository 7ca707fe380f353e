"""Group statistics and group differences against scipy.stats and numpy on hand-made values.

Tolerance: rel 1e-12. Both sides compute in float64 from the same few values; only the order of
the sums differs, a few ulps at most."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from nnrun.experiment.statistics import (
    describe,
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
    assert set(describe([]).values()) == {None}


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
    ],
)
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
