"""`nnrun compare`: the groups of one or several run directories, and every pair of them compared
on one final figure: paired by seed where they share seeds, Welch's t where they share none."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from nnrun.errors import ConfigError, suggest
from nnrun.experiment.statistics import (
    FIGURES,
    figure_names,
    figure_value,
    group_statistics,
    paired_difference,
    welch_difference,
)


def load_groups(run_dirs: Sequence[Path]) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Every group of every directory (names prefixed `DIR: ` when there are several) and every
    run entry by its (prefixed) name. A summary from before groups existed gives one group per run."""
    from nnrun.experiment.rundir import RunDirectory

    groups: list[dict[str, Any]] = []
    entries: dict[str, dict[str, Any]] = {}
    for path in run_dirs:
        summary = RunDirectory(path).verify()
        prefix = f"{path}: " if len(run_dirs) > 1 else ""
        here = {run["name"]: run for run in summary["runs"]}
        found = summary.get("groups") or group_statistics(
            {name: [(name, None)] for name in here}, here
        )
        for group in found:
            groups.append(
                {
                    **group,
                    "name": prefix + group["name"],
                    "runs": [prefix + r for r in group["runs"]],
                }
            )
        entries.update(
            {prefix + name: {**run, "name": prefix + name} for name, run in here.items()}
        )
    return groups, entries


def resolve_metric(metric: str | None, entries: dict[str, dict[str, Any]]) -> str:
    """The figure to compare: `metric` as given (`final_loss`, `final_val_loss`,
    `final_metrics.NAME`, `test_metrics.NAME`, or a bare metric NAME: its test figure if the runs
    have one, else its final one), by default the final validation loss, else the train loss."""
    available = figure_names(entries.values())
    if metric is None:
        return "final_val_loss" if "final_val_loss" in available else "final_loss"
    if metric in available:
        return metric
    for table in ("test_metrics", "final_metrics"):
        if f"{table}.{metric}" in available:
            return f"{table}.{metric}"
    bare = [name.partition(".")[2] for name in available if "." in name]
    raise ConfigError(
        f"--metric {metric!r}: no run has it{suggest(metric, available + bare)}; "
        f"the runs have {', '.join(available) or 'no final figures'}"
    )


def metric_mode(figure: str) -> str:
    """ "min" when lower is better (losses, and a metric plugin whose `mode` says so), else "max"."""
    if figure in FIGURES:
        return "min"
    from nnrun.loading import load_registry

    name = figure.partition(".")[2]
    metrics = load_registry().metrics
    return str(getattr(metrics[name], "mode", "max")) if name in metrics else "max"


def compare_groups(
    run_dirs: Sequence[Path], metric: str | None = None, mode: str | None = None
) -> dict[str, Any]:
    """Everything `nnrun compare` shows: the figure compared and which way is better, each
    group's statistics of it, and for each pair of groups (a, b) the difference a − b."""
    groups, entries = load_groups(run_dirs)
    figure = resolve_metric(metric, entries)
    mode = mode or metric_mode(figure)
    values: dict[str, dict[str, float]] = {}  # group -> run -> value, ok runs only
    seeds: dict[str, dict[int, float]] = {}
    for group in groups:
        values[group["name"]], seeds[group["name"]] = {}, {}
        for run, seed in zip(group["runs"], group.get("seeds") or [None] * len(group["runs"])):
            entry = entries.get(run, {})
            value = figure_value(entry, figure) if entry.get("status") == "ok" else None
            if value is not None:
                values[group["name"]][run] = value
                if seed is not None:
                    seeds[group["name"]][seed] = value
    pairs = []
    for a, b in itertools.combinations(groups, 2):
        shared = set(seeds[a["name"]]) & set(seeds[b["name"]])
        if shared:
            difference = paired_difference(seeds[a["name"]], seeds[b["name"]], mode)
        else:
            difference = welch_difference(
                list(values[a["name"]].values()), list(values[b["name"]].values())
            )
        pairs.append({"a": a["name"], "b": b["name"], **difference})
    from nnrun.experiment.statistics import describe

    return {
        "metric": figure,
        "mode": mode,
        "groups": [
            {
                "name": group["name"],
                "runs": group["runs"],
                "n": len(values[group["name"]]),
                **describe(list(values[group["name"]].values())),
            }
            for group in groups
        ],
        "pairs": pairs,
    }


def pairs_table(comparison: dict[str, Any]) -> Table:
    """One row per pair of groups: the difference a − b with its 95% interval, and the test."""
    from nnrun.experiment.reporting import _num, shown

    better = "lower" if comparison["mode"] == "min" else "higher"
    table = Table(title=shown(f"{comparison['metric']}: a − b ({better} is better)"))
    for column in ("a", "b", "seeds", "a − b (mean)", "95% CI", "wins a / b / ties", "p"):
        table.add_column(column, justify="left" if column in ("a", "b") else "right")
    for pair in comparison["pairs"]:
        ci95 = pair.get("ci95")
        interval = f"[{ci95[0]:.4g}, {ci95[1]:.4g}]" if ci95 else "-"
        if pair["test"] == "paired":
            wins = pair["wins"]
            counts = f"{wins['a']} / {wins['b']} / {wins['ties']}"
            p = f"{_num(pair['wilcoxon_p'], 3)} (Wilcoxon)"
            seeds = f"{pair['n']} paired"
        else:
            counts = "-"
            p = f"{_num(pair['welch_p'], 3)} (Welch)"
            seeds = f"{pair['n'][0]} vs {pair['n'][1]}, unpaired"
        table.add_row(
            shown(pair["a"]),
            shown(pair["b"]),
            seeds,
            _num(pair["mean_difference"], 4),
            interval,
            counts,
            p,
        )
    return table
