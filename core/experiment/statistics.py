"""Statistics over repeated seeds: a group's summary of each final figure, and two groups'
difference, paired by seed (t-interval, wins, Wilcoxon signed-rank) or not (Welch's t).

Only runs with status "ok" enter the numbers; a diverged run is counted and listed, never averaged
(its losses are null). The formulas are in the README ("Groups and their statistics").
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: The final figures of a run entry that are numbers, and the entry's tables of them (metrics).
FIGURES = ("final_loss", "final_val_loss")
FIGURE_TABLES = ("final_metrics", "test_metrics")


def t_quantile(n: int) -> float:
    """t₀.₉₇₅ with n − 1 degrees of freedom: the factor of a 95% interval of a mean of n values."""
    from scipy import stats

    return float(stats.t.ppf(0.975, n - 1))


def describe(values: Sequence[float]) -> dict[str, Any]:
    """mean, std (sample, ddof 1), median, min, max and ci95 = mean ± t₀.₉₇₅,ₙ₋₁·std/√n of
    `values`; std and ci95 are None for fewer than two values, everything for none."""
    n = len(values)
    if n == 0:
        return dict.fromkeys(("mean", "std", "median", "min", "max", "ci95"))
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if n >= 2 else None
    ci95 = None
    if std is not None:
        half = t_quantile(n) * std / math.sqrt(n)
        ci95 = [mean - half, mean + half]
    return {
        "mean": mean,
        "std": std,
        "median": float(statistics.median(values)),
        "min": float(min(values)),
        "max": float(max(values)),
        "ci95": ci95,
    }


def figure_names(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every numeric final figure the entries hold: `final_loss`, `final_val_loss`, and each
    metric as `final_metrics.NAME` / `test_metrics.NAME`, in the order first met."""
    names: dict[str, None] = {}
    for entry in entries:
        for key in FIGURES:
            if key in entry:
                names[key] = None
        for table in FIGURE_TABLES:
            for metric in entry.get(table) or {}:
                names[f"{table}.{metric}"] = None
    return list(names)


def figure_value(entry: Mapping[str, Any], figure: str) -> float | None:
    """The entry's value of `figure` (a name from `figure_names`), None when it has none."""
    table, _, metric = figure.partition(".")
    value = (entry.get(table) or {}).get(metric) if metric else entry.get(figure)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def group_statistics(
    members: Mapping[str, Sequence[tuple[str, int | None]]],
    entries: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """summary.json's `groups`: for each group (its name → its runs' (name, seed)), the runs,
    their seeds, `n` (runs with status ok), the diverged runs, the runs not finished or failed,
    and `describe` of each final figure over the ok runs, laid out as in a run entry
    (`final_loss`, `final_val_loss`, `final_metrics` {name: ...}, `test_metrics` {name: ...})."""
    out = []
    for name, runs in members.items():
        group_entries = [entries[run] for run, _ in runs if run in entries]
        ok = [e for e in group_entries if e.get("status") == "ok"]
        diverged = [e["name"] for e in group_entries if e.get("status") == "diverged"]
        group: dict[str, Any] = {
            "name": name,
            "runs": [run for run, _ in runs],
            "seeds": [seed for _, seed in runs],
            "n": len(ok),
            "n_diverged": len(diverged),
            "diverged": diverged,
            "not_finished": [
                e["name"] for e in group_entries if e.get("status") not in ("ok", "diverged")
            ],
        }
        for figure in figure_names(ok):
            values = [v for v in (figure_value(e, figure) for e in ok) if v is not None]
            table, _, metric = figure.partition(".")
            if metric:
                group.setdefault(table, {})[metric] = describe(values)
            else:
                group[figure] = describe(values)
        out.append(group)
    return out


def group_figure(group: Mapping[str, Any], figure: str) -> dict[str, Any] | None:
    """The statistics of `figure` in a group from `group_statistics`, None when it has none."""
    table, _, metric = figure.partition(".")
    found = (group.get(table) or {}).get(metric) if metric else group.get(figure)
    return found if isinstance(found, dict) else None


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], mode: str = "min"
) -> dict[str, Any]:
    """a − b on the seeds both have (seed → value): the mean difference with its 95% t-interval
    (None for one seed), how many seeds each wins (`mode` "min": lower is better, "max": higher)
    and ties, and the two-sided Wilcoxon signed-rank p-value.

    Wilcoxon uses zero_method="pratt": a seed on which both are equal keeps its place in the
    ranking (Pratt 1959) instead of being dropped before ranking ("wilcox"), so equal seeds are
    evidence too; p is None when every difference is zero (nothing to rank)."""
    from scipy import stats

    seeds = sorted(set(a) & set(b))
    differences = [a[seed] - b[seed] for seed in seeds]
    better = (lambda d: d < 0) if mode == "min" else (lambda d: d > 0)
    described = describe(differences)
    p = None
    if any(d != 0 for d in differences):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns that n is small for the normal tail
            p = float(stats.wilcoxon(differences, zero_method="pratt").pvalue)
    return {
        "test": "paired",
        "seeds": seeds,
        "n": len(seeds),
        "mean_difference": described["mean"],
        "ci95": described["ci95"],
        "wins": {
            "a": sum(better(d) for d in differences),
            "b": sum(better(-d) for d in differences),
            "ties": sum(d == 0 for d in differences),
        },
        "wilcoxon_p": p,
    }


def welch_difference(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """mean(a) − mean(b) for unpaired groups: the Welch–Satterthwaite degrees of freedom, the 95%
    interval of the difference and the two-sided p-value of Welch's t-test; None where a group
    has fewer than two values or both have no spread."""
    from scipy import stats

    out: dict[str, Any] = {"test": "welch", "n": [len(a), len(b)], "mean_difference": None}
    out.update(ci95=None, df=None, welch_p=None)
    if not a or not b:
        return out
    difference = statistics.fmean(a) - statistics.fmean(b)
    out["mean_difference"] = difference
    if len(a) < 2 or len(b) < 2:
        return out
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return out
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.975, df)) * math.sqrt(va + vb)
    t = difference / math.sqrt(va + vb)
    out.update(
        ci95=[difference - half, difference + half],
        df=df,
        welch_p=float(2 * stats.t.sf(abs(t), df)),
    )
    return out
