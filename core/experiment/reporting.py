"""What the user sees while an experiment runs (on stderr) and the results table (on stdout)."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

STATUS_STYLE = {
    "ok": "green",
    "diverged": "yellow",
    "failed": "red",
    "interrupted": "magenta",
    "pruned": "cyan",
    "pending": "dim",
    "not converged": "yellow",
}


#: C0 controls but tab and newline, DEL, and C1: what would let a name move the cursor or clear
#: the terminal (ESC starts every ANSI sequence, and 0x9b is a one-byte CSI).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` safe to print on a terminal: each control character is shown as an escape (\\x1b),
    so a run name, a path or an error quoting the user's file cannot drive the terminal."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def shown(text: str) -> str:
    """User text in rich output: no control characters, no markup."""
    return escape(printable(text))


class Reporter:
    """Receives the runner's events; this base class ignores them all (quiet mode, workers)."""

    shows_epochs = False  # whether `--jobs` workers should print their per-epoch lines

    def experiment_started(self, experiment: Any, out: Path, skipped: int) -> None: ...
    def run_started(self, run: Any, epoch: int, steps_per_epoch: int) -> None: ...
    def progress(self, run: Any, progress: Any) -> None: ...
    def epoch(self, run: Any, record: dict[str, Any]) -> None: ...
    def run_finished(self, entry: dict[str, Any]) -> None: ...
    def experiment_finished(self, summary: dict[str, Any], out: Path) -> None: ...

    def warn(self, message: str) -> None:
        print(f"warning: {printable(message)}", file=sys.stderr)


SilentReporter = Reporter


class QuietReporter(Reporter):
    """`-q` and `--json`: no progress and no epoch lines, but where the run directory is: kept in
    `out` (for --json's `run_dir`) and, with `announce`, one line on stderr."""

    def __init__(self, announce: bool):
        self.announce = announce
        self.out: Path | None = None

    def experiment_started(self, experiment: Any, out: Path, skipped: int) -> None:
        self.out = out
        if self.announce:
            print(f"nnrun: run directory: {out}", file=sys.stderr)


class ConsoleReporter(Reporter):
    """A progress bar per run on a terminal; plain lines (every `log_every` epochs) otherwise."""

    shows_epochs = True

    def __init__(self, console: Console | None = None, status_lines: bool = True):
        """`status_lines=False` leaves out the line per finished run (a worker's parent prints it)."""
        self.console = console or Console(stderr=True)
        self.status_lines = status_lines
        self.bar: Progress | None = None
        self.task: Any = None
        self.held: tuple[Any, dict[str, Any]] | None = None  # an epoch line skipped by log_every

    def experiment_started(self, experiment: Any, out: Path, skipped: int) -> None:
        done = f" ({skipped} already finished)" if skipped else ""
        self.console.print(
            shown(
                f"nnrun: {experiment.name}: {len(experiment.runs)} run(s){done}, "
                f"seed {experiment.seed} -> {out}"
            ),
            soft_wrap=True,  # a path stays whole, to copy from a log
        )

    def run_started(self, run: Any, epoch: int, steps_per_epoch: int) -> None:
        if run.experiment.task != "train" or not self.console.is_terminal:
            return
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            TextColumn("step {task.fields[step]}/{task.fields[steps]}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[speed]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        total = run.train.epochs * steps_per_epoch
        self.task = self.bar.add_task(
            run.name,
            total=total,
            completed=epoch * steps_per_epoch,
            epoch=epoch,
            epochs=run.train.epochs,
            step=0,
            steps=steps_per_epoch,
            loss="-",
            speed="",
        )
        self.bar.start()

    def progress(self, run: Any, progress: Any) -> None:
        if self.bar is None:
            return
        done = (progress.epoch - 1) * progress.steps + progress.step
        self.bar.update(
            self.task,
            completed=done,
            epoch=progress.epoch,
            step=progress.step,
            loss=f"{progress.loss:.4g}",
        )
        speed = self.bar.tasks[0].speed
        if speed:
            self.bar.update(self.task, speed=f"{speed:,.0f} steps/s")

    def epoch(self, run: Any, record: dict[str, Any]) -> None:
        self.held = None
        if (
            self.bar is None
            and record["epoch"] % run.train.log_every
            and record["epoch"] != run.train.epochs
        ):
            self.held = (run, record)  # shown if it turns out to be the run's last epoch
            return
        line = epoch_line(run.name, run.train.epochs, record)
        # soft_wrap: one epoch is one line in a log file, not wrapped at 80 columns
        (self.bar.console if self.bar else self.console).print(
            shown(line), highlight=False, soft_wrap=True
        )

    def run_finished(self, entry: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if self.held is not None:  # stopped early, off the log_every grid: show where it ended
            run, record = self.held
            self.held = None
            self.console.print(
                shown(epoch_line(run.name, run.train.epochs, record)),
                highlight=False,
                soft_wrap=True,
            )
        if not self.status_lines:
            return
        style = STATUS_STYLE.get(entry["status"], "")
        detail = f": {entry['error']}" if entry.get("error") else ""
        self.console.print(
            f"[{style}]{entry['status']}[/] {shown(entry['name'] + detail)}",
            highlight=False,
            soft_wrap=True,
        )

    def warn(self, message: str) -> None:
        # soft_wrap: a warning is one line, whatever the width, to read in a log and to grep
        self.console.print(f"[yellow]warning:[/] {shown(message)}", highlight=False, soft_wrap=True)


def worker_console() -> Console:
    """Plain lines on stderr for a `--jobs` worker, whatever the terminal."""
    return Console(stderr=True, force_terminal=False, no_color=True)


def stdout_console() -> Console:
    """Results go to stdout; piped into a file they keep full width instead of wrapping at 80."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def epoch_line(name: str, epochs: int, record: dict[str, Any]) -> str:
    parts = [
        f"{name}  epoch {record['epoch']}/{epochs}",
        f"train_loss {_num(record.get('train_loss'))}",
    ]
    if "val_loss" in record:
        parts.append(f"val_loss {_num(record['val_loss'])}")
    parts += [f"{key} {_num(record[key])}" for key in metric_keys(record)]
    parts += [f"f({x})={_num(y)}" for x, y in (record.get("probes") or {}).items()]
    return "  ".join(parts)


def metric_keys(record: Mapping[str, Any]) -> list[str]:
    """The metrics in an epoch's record (`val_accuracy`, `train_r2`), in the order recorded."""
    losses = ("train_loss", "val_loss", "mean_batch_loss")
    return [k for k in record if k.startswith(("val_", "train_")) and k not in losses]


def _metric_columns(runs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(header, summary key, metric) for every metric any run has, final ones before test ones."""
    columns: list[tuple[str, str, str]] = []
    for key, label in (("final_metrics", "final"), ("test_metrics", "test")):
        names = dict.fromkeys(name for r in runs for name in r.get(key) or {})
        columns += [(f"{label} {name}", key, name) for name in names]
    return columns


def results_table(summary: dict[str, Any], title: str | None = None) -> Table:
    """One row per run: status, final losses and metrics (train) or roots (solve), time."""
    runs = summary["runs"]
    solve = any(r.get("task") == "solve" for r in runs)
    train = any(r.get("task", "train") == "train" for r in runs)
    table = Table(title=shown(title or summary.get("experiment") or ""))
    table.add_column("run")
    table.add_column("status")
    validated = any("final_val_loss" in r for r in runs)
    tested = any("test_loss" in r for r in runs)
    metric_columns = _metric_columns(runs)
    if train:
        columns = ["final train loss"] + (["final val loss"] if validated else [])
        columns += (["test loss"] if tested else []) + [c[0] for c in metric_columns] + ["epochs"]
        for column in columns:
            table.add_column(column, justify="right")
    if solve:
        for column in ("roots", "iterations", "converged"):
            table.add_column(column, justify="right")
    table.add_column("time (s)", justify="right")
    for run in runs:
        # a run name is the user's text, not rich markup: "[baseline]" must show as written
        row = [shown(run["name"]), status_cell(run)]
        if train:
            is_train = run.get("task", "train") == "train"
            row.append(_num(run.get("final_loss")) if is_train else "")
            if validated:
                row.append(_num(run.get("final_val_loss")) if is_train else "")
            if tested:
                row.append(_num(run.get("test_loss")) if is_train else "")
            for _, key, name in metric_columns:
                row.append(_num((run.get(key) or {}).get(name)) if is_train else "")
            row.append(str(run.get("epochs", "")) if is_train else "")
        if solve:
            is_solve = run.get("task") == "solve"
            roots = ", ".join(repr(r) for r in run.get("roots") or [])
            roots = roots or ("none" if run.get("converged") else "-")  # none: no real roots
            row += [
                roots if is_solve else "",
                str(run.get("iterations", "")) if is_solve else "",
                str(run.get("converged", "")) if is_solve else "",
            ]
        row.append(_num(run.get("seconds"), 3) if run.get("seconds") is not None else "")
        table.add_row(*row)
    return table


def tune_table(summary: dict[str, Any]) -> Table | None:
    """One row per tuned configuration: its trials, the best one's values and metric, and the
    best re-run on the final seeds (mean ± standard deviation, min to max); None without [tune]."""
    studies = summary.get("tune") or {}
    if not studies:
        return None
    first = next(iter(studies.values()))
    table = Table(title=f"tuning: {shown(first['metric'])} ({first['mode']})")
    for column in ("configuration", "trials (ok/pruned/failed)", "best trial", "best values"):
        table.add_column(column)
    for column in ("best", "final seeds: mean ± std", "min to max"):
        table.add_column(column, justify="right")
    for name, study in studies.items():
        trials, best, final = study["trials"], study.get("best"), study.get("final") or {}
        counts = f"{trials['complete']}/{trials['pruned']}/{trials['failed']}"
        values = ", ".join(f"{k}={_num(v, 3)}" for k, v in (best or {}).get("params", {}).items())
        spread = f"{_num(final['mean'], 4)} ± {_num(final['std'], 2)}" if "mean" in final else "-"
        extremes = f"{_num(final['min'], 4)} to {_num(final['max'], 4)}" if "min" in final else "-"
        table.add_row(
            shown(name),
            counts,
            str(best["trial"]) if best else "-",
            shown(values) or "-",
            _num(best["value"]) if best else "-",
            spread,
            extremes,
        )
    return table


def status_cell(run: dict[str, Any]) -> str:
    """The status, with what a reader needs to trust the numbers beside it: where early stopping
    ended and which epoch's weights the final losses are from; a solve that found not every root."""
    status = run["status"]
    text = status
    if status == "ok" and run.get("stopped_early"):
        kept = "" if run.get("restored_best") else ", not restored"
        text = f"ok (early stop @ {run.get('epochs')}, best {run.get('best_epoch')}{kept})"
    elif status == "ok" and run.get("restored_best"):  # all epochs ran, an earlier one was best
        text = f"ok (best {run.get('best_epoch')} of {run.get('epochs')})"
    elif status == "ok" and run.get("task") == "solve" and not run.get("converged", True):
        status = text = "not converged"
    elif status == "pruned":  # a tuning trial the pruner stopped
        text = f"pruned @ {run.get('epochs')}"
    return f"[{STATUS_STYLE.get(status, '')}]{shown(text)}[/]"


def _num(value: Any, digits: int = 6) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


#: Column titles of the final figures in the group table.
_FIGURE_TITLES = {"final_loss": "final train loss", "final_val_loss": "final val loss"}


def has_groups(summary: dict[str, Any]) -> bool:
    """Whether some configuration ran over several seeds: then the group table is the default."""
    return any(len(group.get("runs", [])) > 1 for group in summary.get("groups") or [])


def group_table(summary: dict[str, Any], title: str | None = None) -> Table:
    """One row per group (a configuration over its seeds): the runs that ended ok out of all, and
    for each final figure the mean ± the half-width of its 95% interval, and the median."""
    from nnrun.experiment.statistics import figure_names, group_figure

    groups = summary.get("groups") or []
    figures = figure_names(run for run in summary["runs"] if run.get("status") == "ok")
    table = Table(title=shown(title or summary.get("experiment") or ""))
    table.add_column("group")
    table.add_column("ok / runs", justify="right")
    for figure in figures:
        label = _FIGURE_TITLES.get(figure, figure)
        table.add_column(f"{label} (mean ± 95% CI)", justify="right")
        table.add_column("median", justify="right")
    for group in groups:
        ok = f"{group['n']} / {len(group['runs'])}"
        if group.get("n_diverged"):
            ok += f" ({group['n_diverged']} diverged)"
        style = "green" if group["n"] == len(group["runs"]) else "yellow"
        row = [shown(group["name"]), f"[{style}]{ok}[/]"]
        for figure in figures:
            found = group_figure(group, figure) or {}
            row += [mean_and_half_width(found), _num(found.get("median"), 4)]
        table.add_row(*row)
    return table


def mean_and_half_width(figure: dict[str, Any]) -> str:
    """`mean ± h`, h half the width of the 95% interval; the mean alone for one value."""
    mean, ci95 = figure.get("mean"), figure.get("ci95")
    if mean is None:
        return "-"
    if ci95 is None:
        return _num(mean, 4)
    return f"{mean:.4g} ± {(ci95[1] - ci95[0]) / 2:.2g}"
