"""The figures of an experiment: loss curves, the fitted functions, the solver's descents, and
the trials of a `[tune]` study.

Figures are built with `matplotlib.figure.Figure` and never through pyplot, so plotting needs no
display, keeps no global state and is safe in threads and worker processes. Each `*_figure` function
returns the figure for inspection; each `plot_*` function writes it as a PNG, atomically, so a crash
never leaves half a file where a plot was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nnrun.experiment.reporting import metric_keys
from nnrun.solver import Descent

SIZE = (8, 5)  # inches
DPI = 100
#: matplotlib's tab20 palette: distinct colours for up to 20 runs before any repeats.
_COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
]  # fmt: skip
#: The largest value drawn on a log axis.
_LARGEST = 1e250
#: Beyond this many legend entries the legend moves outside the axes, right of the plot.
_LEGEND_INSIDE = 8


def loss_figure(histories: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure:
    """Train loss per epoch (solid) and validation loss (dashed, same colour) for every run; when
    the runs record metrics, a second panel below shows each one per epoch (linear scale)."""
    fig, ax = _axes("Loss per epoch", "epoch", "loss")
    for i, (run, history) in enumerate(histories.items()):
        color = _COLORS[i % len(_COLORS)]
        epochs = [row["epoch"] for row in history]
        train = [row.get("train_loss") for row in history]
        _line(ax, epochs, train, f"{run} train", color=color)
        val = [row.get("val_loss") for row in history]
        if any(v is not None for v in val):
            _line(ax, epochs, val, f"{run} val", color=color, linestyle="--")
    _finish(fig, ax)
    keys = list(
        dict.fromkeys(
            k for history in histories.values() for row in history for k in metric_keys(row)
        )
    )
    if keys:
        _metric_panel(fig, ax, histories, keys)
    return fig


def _metric_panel(
    fig: Figure,
    loss_ax: Axes,
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    keys: list[str],
) -> None:
    """Each run's metrics per epoch under the loss, one line style per metric, the run's colour."""
    fig.set_size_inches(fig.get_size_inches()[0], fig.get_size_inches()[1] * 1.8)
    grid = fig.add_gridspec(2, 1)
    loss_ax.set_subplotspec(grid[0])
    ax = fig.add_subplot(grid[1], sharex=loss_ax)
    ax.set(title="Metrics per epoch", xlabel="epoch", ylabel="metric")
    ax.grid(True, alpha=0.3)
    styles = ["-", "--", ":", "-."]
    for i, (run, history) in enumerate(histories.items()):
        for j, key in enumerate(keys):
            points = [(row["epoch"], row[key]) for row in history if row.get(key) is not None]
            finite = [(e, v) for e, v in points if math.isfinite(v)]
            if finite:
                ax.plot(
                    [e for e, _ in finite],
                    [v for _, v in finite],
                    color=_COLORS[i % len(_COLORS)],
                    linestyle=styles[j % len(styles)],
                    marker="o" if len(finite) < 2 else None,
                    label=f"{run} {key}",
                )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_lines():
        _legend(fig, ax)


def confusion_figure(
    matrices: Mapping[str, tuple[torch.Tensor, Sequence[str], str]],
) -> Figure:
    """One row per run: the confusion matrix of counts (rows: true class, columns: predicted) and
    the same matrix with each row divided by its count, so each class's recall is on the diagonal.
    `matrices` maps a run to (counts (C, C), class names, the split counted)."""
    rows = max(len(matrices), 1)
    size = max((len(classes) for _, classes, _ in matrices.values()), default=2)
    side = min(max(4.0, 0.45 * size + 2), 12.0)
    fig = Figure(figsize=(2 * side + 1, side * rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    for (run, (counts, classes, split)), (left, right) in zip(matrices.items(), axes):
        counts = counts.to(torch.float64).cpu()
        totals = counts.sum(dim=1, keepdim=True)
        normalised = torch.where(totals > 0, counts / totals.clamp(min=1), torch.zeros_like(counts))
        total = int(counts.sum().item())
        for ax, values, kind, text in (
            (left, counts, "counts", lambda v: f"{int(v)}"),
            (right, normalised, "normalised by true class", lambda v: f"{v:.2f}"),
        ):
            image = ax.imshow(values.numpy(), cmap="Blues", vmin=0)
            fig.colorbar(image, ax=ax, shrink=0.8)
            ax.set_title(f"{run}: {kind}\n{split} split ({total} samples)", fontsize="medium")
            ax.set(xlabel="predicted class", ylabel="true class")
            ticks = range(len(classes))
            ax.set_xticks(ticks, labels=list(classes), rotation=45 if size > 4 else 0)
            ax.set_yticks(ticks, labels=list(classes))
            if size <= 20:  # numbers in the cells while they fit
                high = float(values.max()) or 1.0
                for r in ticks:
                    for c in ticks:
                        v = float(values[r, c])
                        color = "white" if v > 0.6 * high else "black"
                        ax.text(
                            c, r, text(v), ha="center", va="center", color=color, fontsize="small"
                        )
    return fig


def group_loss_figure(
    groups: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]], band: str = "minmax"
) -> Figure:
    """Per group (its runs' histories), the median train loss per epoch (solid; validation
    dashed) in a band between the seeds' minimum and maximum at that epoch, or with
    `band="ci95"` the 95% t-interval of their mean. An epoch counts the runs that reached it
    with a finite loss; the label says how many runs the group has."""
    title = "Loss per epoch: median over seeds, " + (
        "95% CI of the mean" if band == "ci95" else "min–max band"
    )
    fig, ax = _axes(title, "epoch", "loss")
    extremes: list[float] = []
    for i, (group, histories) in enumerate(groups.items()):
        color = _COLORS[i % len(_COLORS)]
        for key, style, alpha in (("train_loss", "-", 0.2), ("val_loss", "--", 0.1)):
            epochs, median, low, high = _band(histories, key, band)
            if not epochs:
                continue
            label = f"{group} {'train' if key == 'train_loss' else 'val'} (n={len(histories)})"
            _line(ax, epochs, median, label, color=color, linestyle=style)
            ax.fill_between(epochs, low, high, color=color, alpha=alpha, linewidth=0)
            extremes += [v for v in (*low, *high) if math.isfinite(v) and 0 < v <= _LARGEST]
    _finish(fig, ax)
    if extremes and ax.get_yscale() == "log":  # the band may reach past the medians
        bottom, top = ax.get_ylim()
        low_decade = math.floor(math.log10(min(extremes)))
        ax.set_ylim(
            min(bottom, 10.0**low_decade), max(top, 10.0 ** math.ceil(math.log10(max(extremes))))
        )
    return fig


def _band(
    histories: Sequence[Sequence[Mapping[str, Any]]], key: str, band: str
) -> tuple[list[int], list[float], list[float], list[float]]:
    """Per epoch: the median of `key` over the runs and the band's low and high edges."""
    from nnrun.experiment.statistics import describe

    by_epoch: dict[int, list[float]] = {}
    for history in histories:
        for row in history:
            value = row.get(key)
            if value is not None and math.isfinite(value):
                by_epoch.setdefault(row["epoch"], []).append(float(value))
    epochs, median, low, high = [], [], [], []
    for epoch in sorted(by_epoch):
        stats = describe(by_epoch[epoch])
        epochs.append(epoch)
        median.append(stats["median"])
        if band == "ci95":
            ci95 = stats["ci95"] or [stats["mean"], stats["mean"]]
            low.append(ci95[0])
            high.append(ci95[1])
        else:
            low.append(stats["min"])
            high.append(stats["max"])
    return epochs, median, low, high


def plot_group_losses(
    groups: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
    path: str | Path,
    band: str = "minmax",
) -> Path:
    return save_figure(group_loss_figure(groups, band), path)


def fit_figure(
    x: torch.Tensor,
    y: torch.Tensor,
    target_fn: Callable[[torch.Tensor], torch.Tensor] | None,
    predictions: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
) -> Figure:
    """The data as points, the noise-free target as a line, and each run's prediction as a line.

    The y-range is set by the data and target, so a run that diverged cannot flatten the rest.
    """
    fig, ax = _axes("Fit", "x", "y")
    xs, ys = _flat(x), _flat(y)
    ax.scatter(xs, ys, s=6, color="0.4", alpha=0.3, linewidths=0, label=f"data (n={len(xs)})")
    everywhere = [*xs, *(v for px, _ in predictions.values() for v in _flat(px))]
    finite_x = [v for v in everywhere if math.isfinite(v)] or [0.0, 1.0]
    low, high = min(finite_x), max(finite_x)
    shown = list(ys)
    if target_fn is not None:
        grid = torch.linspace(low, high, 400, dtype=torch.float64).unsqueeze(1)
        target = _flat(target_fn(grid))
        ax.plot(_flat(grid), target, color="black", linewidth=1.5, label="target")
        shown += target
    for i, (run, (px, py)) in enumerate(predictions.items()):
        pairs = sorted(zip(_flat(px), _flat(py)))  # a line through unsorted x zigzags
        color = _COLORS[i % len(_COLORS)]
        ax.plot([p for p, _ in pairs], [q for _, q in pairs], color=color, label=run)
    finite = [v for v in shown if math.isfinite(v)]
    if finite:
        margin = 0.25 * (max(finite) - min(finite)) or 1.0
        ax.set_ylim(min(finite) - margin, max(finite) + margin)
    _legend(fig, ax)
    return fig


def descent_figure(descents: Mapping[str, Sequence[Descent]]) -> Figure:
    """|f(x)| after each iteration, one line per (run, start), ending in ● if it converged, else ×."""
    fig, ax = _axes("Descent from each start", "iteration", "|f(x)|")
    every = [(run, descent) for run, runs_descents in descents.items() for descent in runs_descents]
    for i, (run, descent) in enumerate(every):
        color = _COLORS[i % len(_COLORS)]
        steps = range(1, len(descent.residuals) + 1)
        mark = "" if descent.converged else ", diverged" if descent.diverged else ", not converged"
        label = f"{run}: x₀ = {_number(descent.start, 'g')} → {_number(descent.end, '.6g')}{mark}"
        points = _line(ax, steps, descent.residuals, label, color=color)
        if points:
            marker = "o" if descent.converged else "x"
            ax.plot(*points[-1], marker=marker, color=color, linestyle="none")
    _finish(fig, ax)
    return fig


def tune_figure(
    trials: Mapping[str, Sequence[Mapping[str, Any]]],
    space: Mapping[str, tuple[str, Sequence[Any]]],
    metric: str,
) -> Figure:
    """The tuned metric against each tuned hyperparameter (one panel per key), a colour per
    configuration; hollow markers are pruned trials at the epoch they stopped. `trials` are the
    summary entries of each configuration's trials (with `params` and `value`), `space` maps each
    key to its distribution's kind and values: a log-uniform key gets a log axis, a choice one tick
    per choice."""
    keys = list(space)
    columns = min(3, len(keys)) or 1
    rows = math.ceil(len(keys) / columns) or 1
    fig = Figure(figsize=(4.2 * columns + 2, 3.6 * rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    values = [
        float(t["value"])
        for runs in trials.values()
        for t in runs
        if isinstance(t.get("value"), (int, float)) and math.isfinite(t["value"])
    ]
    log_y = bool(values) and min(values) > 0
    for ax, key in zip(axes, keys):
        kind, options = space[key]
        ax.set(xlabel=key, ylabel=f"{metric}{' (log scale)' if log_y else ''}")
        ax.grid(True, alpha=0.3)
        labels = [_choice_label(o) for o in options]
        for i, (config, runs) in enumerate(trials.items()):
            color = _COLORS[i % len(_COLORS)]
            for pruned in (False, True):
                shown = [
                    t
                    for t in runs
                    if (t.get("status") == "pruned") == pruned
                    and key in (t.get("params") or {})
                    and isinstance(t.get("value"), (int, float))
                    and math.isfinite(t["value"])
                ]
                xs = [
                    labels.index(_choice_label(t["params"][key]))
                    if kind == "choice"
                    else t["params"][key]
                    for t in shown
                ]
                label = None if ax is not axes[0] else f"{config}{' (pruned)' if pruned else ''}"
                face = "none" if pruned else color
                if shown:
                    ax.scatter(xs, [t["value"] for t in shown], s=24, edgecolors=color,
                               facecolors=face, label=label)  # fmt: skip
        if kind == "log_uniform":
            ax.set_xscale("log")
        if kind == "choice":
            ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize="small")
            ax.set_xlim(-0.5, len(labels) - 0.5)
        if log_y:
            ax.set_yscale("log")
    for ax in axes[len(keys) :]:
        ax.set_visible(False)
    fig.suptitle(f"{metric} of each trial against the tuned hyperparameters")
    if axes[0].get_legend_handles_labels()[1]:
        fig.legend(loc="outside right upper", fontsize="small")
    return fig


def _choice_label(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def plot_tune(
    trials: Mapping[str, Sequence[Mapping[str, Any]]],
    space: Mapping[str, tuple[str, Sequence[Any]]],
    metric: str,
    path: str | Path,
) -> Path:
    return save_figure(tune_figure(trials, space, metric), path)


def plot_losses(histories: Mapping[str, Sequence[Mapping[str, Any]]], path: str | Path) -> Path:
    return save_figure(loss_figure(histories), path)


def plot_fit(
    x: torch.Tensor,
    y: torch.Tensor,
    target_fn: Callable[[torch.Tensor], torch.Tensor] | None,
    predictions: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
    path: str | Path,
) -> Path:
    return save_figure(fit_figure(x, y, target_fn, predictions), path)


def plot_confusion(
    matrices: Mapping[str, tuple[torch.Tensor, Sequence[str], str]], path: str | Path
) -> Path:
    return save_figure(confusion_figure(matrices), path)


def plot_descent(descents: Mapping[str, Sequence[Descent]], path: str | Path) -> Path:
    return save_figure(descent_figure(descents), path)


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as a PNG at `path`, atomically (the run directory's one write helper)."""
    from nnrun.experiment.safefiles import write_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda stream: fig.savefig(stream, format="png", dpi=DPI))
    return path


def _axes(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Axes]:
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(True, alpha=0.3)
    return fig, ax


def _line(
    ax: Axes, xs: Iterable[float], values: Iterable[float | None], label: str, **style: Any
) -> list[tuple[float, float]]:
    """Plot, joined, the points a log axis can show; the label counts the others. None is no value.

    Above `_LARGEST` (a descent on its way to overflow) matplotlib's log ticks overflow, so such
    values are counted, not drawn."""
    given = [(x, v) for x, v in zip(xs, values) if v is not None]
    points = [(x, float(v)) for x, v in given if math.isfinite(v) and 0 < v <= _LARGEST]
    if len(points) < len(given):
        hidden = len(given) - len(points)
        label += f" ({hidden} value{'s' * (hidden != 1)} ≤ 0, > 1e250 or non-finite not shown)"
    if len(points) < 2:
        style.setdefault("marker", "o")  # a lone point draws no line
    ax.plot([x for x, _ in points], [v for _, v in points], label=label, **style)
    return points


def _finish(fig: Figure, ax: Axes) -> None:
    """Log scale when there is a point to show (a linear axis otherwise); integer steps on x."""
    shown = [float(y) for line in ax.get_lines() for y in np.ravel(line.get_ydata())]
    if shown:
        ax.set_yscale("log")
        ax.set_ylabel(f"{ax.get_ylabel()} (log scale)")
        # whole decades, at most a few hundred: matplotlib's log ticks overflow beyond 1e308
        low, high = math.floor(math.log10(min(shown))), math.ceil(math.log10(max(shown)))
        ax.set_ylim(10.0**low, 10.0 ** max(high, low + 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_lines():
        _legend(fig, ax)


def _legend(fig: Figure, ax: Axes) -> None:
    """Inside the axes while it is short; to the right of the plot, out of the data's way, when
    a sweep makes it long."""
    entries = len(ax.get_legend_handles_labels()[1])
    if entries <= _LEGEND_INSIDE:
        ax.legend(loc="best", fontsize="small")
        return
    fig.set_size_inches(SIZE[0] + 4, max(SIZE[1], 0.2 * entries))  # the layout makes room
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", borderaxespad=0)


def _number(value: float | None, spec: str) -> str:
    """A start or end for a label; None is what JSON keeps of a non-finite one (a diverged end)."""
    return "±inf" if value is None else format(value, spec)


def _flat(t: torch.Tensor) -> list[float]:
    return t.detach().to("cpu", torch.float64).reshape(-1).tolist()
