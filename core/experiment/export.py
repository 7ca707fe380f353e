"""Tables built from a run directory (which stays the single source of truth) and written in the
formats other tools read: `nnrun export RUN_DIR --to csv|parquet|tensorboard|mlflow`.

Two tables: *epochs*, one row per run × epoch (every per-epoch figure in metrics.jsonl, lr, seconds,
every hyperparameter), and *runs*, one row per run (status, final figures, hyperparameters). A
run's hyperparameters are its configuration's resolved tables flattened to dotted keys
(`optimizer.lr`), with a tuning trial's sampled `params` (or its study's best, for the re-runs
on fresh seeds) laid over them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from nnrun.errors import ConfigError
from nnrun.experiment.rundir import RunDirectory
from nnrun.experiment.safefiles import write_atomic

FORMATS = ("csv", "parquet", "tensorboard", "mlflow")
#: The optional extra each format needs, named in the error when it is missing.
EXTRAS = {"parquet": ("pyarrow", "parquet"), "tensorboard": ("tensorboard", "tensorboard")}
_SEED = re.compile(r"(?:^|/)seed=(-?\d+)(?:/|$)")
#: Tables of a run's configuration that say how nnrun reports or tunes, not how it trains.
_NOT_HYPERPARAMETERS = ("name", "report", "tune")


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as one level of dotted keys: {"optimizer": {"lr": 0.1}} -> {"optimizer.lr": 0.1}."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _configuration(run: str, names: Iterable[str]) -> str | None:
    """The configuration a run belongs to: the longest config name that is the run's name or a
    prefix of it up to a `/` (`adam/seed=3` and `adam/trial=2` belong to `adam`)."""
    found = [n for n in names if run == n or run.startswith(f"{n}/")]
    return max(found, key=len) if found else None


def run_hyperparameters(
    summary: dict[str, Any], config: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each run's hyperparameters (dotted keys), by run name."""
    configs = {c["name"]: c for c in config.get("runs", []) if isinstance(c, dict) and "name" in c}
    tune = summary.get("tune") or {}
    out: dict[str, dict[str, Any]] = {}
    for entry in summary["runs"]:
        name = entry["name"]
        owner = _configuration(name, configs)
        base = configs.get(owner, {}) if owner else {}
        kept = {k: v for k, v in base.items() if k not in _NOT_HYPERPARAMETERS}
        values = {k: v for k, v in flatten(kept).items() if k != "experiment.name"}
        best = (tune.get(owner) or {}).get("best") or {} if owner else {}
        if owner and name.startswith(f"{owner}/best/"):
            values.update(best.get("params") or {})
        values.update(entry.get("params") or {})
        out[name] = values
    return out


def run_groups(summary: dict[str, Any]) -> dict[str, str]:
    """The group (configuration over its seeds) of each run that has one."""
    return {run: g["name"] for g in summary.get("groups") or [] for run in g.get("runs", [])}


def seed_of(run: str) -> int | None:
    match = _SEED.search(run)
    return int(match.group(1)) if match else None


def varied(hyperparameters: dict[str, dict[str, Any]]) -> list[str]:
    """The hyperparameters whose values differ between runs, in first-seen order."""
    keys = list(dict.fromkeys(k for values in hyperparameters.values() for k in values))
    rows = list(hyperparameters.values())
    return [k for k in keys if len({json.dumps(r.get(k), sort_keys=True) for r in rows}) > 1]


def _figures(entry: dict[str, Any]) -> dict[str, Any]:
    """A summary entry's final figures: its numbers, and the numbers of any dict of them
    (`final_metrics`, `test_metrics`) as dotted keys."""
    skip = {"threads", "trial", "value"}
    figures: dict[str, Any] = {}
    for key, value in entry.items():
        if key in skip or key == "params":
            continue
        if isinstance(value, dict):
            figures.update({k: v for k, v in flatten(value, f"{key}.").items() if _is_number(v)})
        elif _is_number(value):
            figures[key] = value
    return figures


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Tables:
    """The epochs and runs tables of one run directory, as lists of rows (dicts), read once."""

    def __init__(self, run_dir: Path):
        directory = RunDirectory(run_dir)
        self.path = Path(run_dir)
        self.summary = directory.verify()
        self.config = directory.read_config()
        self.metrics = directory.read_metrics()
        self.hyperparameters = run_hyperparameters(self.summary, self.config)
        self.groups = run_groups(self.summary)

        self.trials = {r["name"]: r.get("trial") for r in self.summary["runs"]}

    def identity(self, run: str) -> dict[str, Any]:
        row = {"run": run, "group": self.groups.get(run, run), "seed": seed_of(run)}
        if self.summary.get("tune"):
            row["trial"] = self.trials.get(run)
        return row

    def epochs(self) -> list[dict[str, Any]]:
        rows = []
        for record in self.metrics:
            run = record["run"]
            row = self.identity(run)
            row.update({k: v for k, v in record.items() if k != "run" and _is_number(v)})
            row.update(_prefixed(self.hyperparameters.get(run, {})))
            rows.append(row)
        return rows

    def runs(self) -> list[dict[str, Any]]:
        rows = []
        for entry in self.summary["runs"]:
            run = entry["name"]
            row = self.identity(run)
            row["status"] = entry["status"]
            row.update(_figures(entry))
            if "error" in entry:
                row["error"] = str(entry["error"])
            row.update(_prefixed(self.hyperparameters.get(run, {})))
            rows.append(row)
        return rows


def _prefixed(hyperparameters: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as table cells: a list or table becomes its JSON text (one cell, one type)."""
    return {
        k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in hyperparameters.items()
    }


def columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))


def _column_values(rows: list[dict[str, Any]], key: str) -> list[Any]:
    """One column with one type: numbers mixed with floats become floats, anything else mixed
    with text becomes text."""
    values = [row.get(key) for row in rows]
    present = [v for v in values if v is not None]
    if (
        present
        and all(_is_number(v) for v in present)
        and any(isinstance(v, float) for v in present)
    ):
        return [None if v is None else float(v) for v in values]
    if (
        present
        and any(isinstance(v, str) for v in present)
        and not all(isinstance(v, str) for v in present)
    ):
        return [None if v is None else str(v) for v in values]
    return values


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"this export needs the optional package {module}: pip install 'nnrun[{extra}]'"
        ) from None


def parquet_writer(rows: list[dict[str, Any]]) -> Callable[[IO[bytes]], object]:
    pa = _require("pyarrow", "parquet")
    pq = _require("pyarrow.parquet", "parquet")
    table = pa.table({key: _column_values(rows, key) for key in columns(rows)})
    return lambda stream: pq.write_table(table, stream)


def _writes(data: bytes) -> Callable[[IO[bytes]], object]:
    return lambda stream: stream.write(data)


def default_out(run_dir: Path, to: str) -> Path:
    """Beside the run directory, never inside it (--force deletes only nnrun's own files there)."""
    run_dir = Path(run_dir).resolve()
    if to == "mlflow":
        return run_dir.parent / "mlflow.db"
    return run_dir.parent / f"{run_dir.name}-{to}"


def export(run_dir: Path, to: str, out: Path | None = None, uri: str | None = None) -> Path | str:
    """Write `run_dir`'s tables as `to`; return where they went (a folder, or an MLflow URI)."""
    if to not in FORMATS:
        raise ConfigError(f"--to {to}: expected one of {', '.join(FORMATS)}")
    tables = Tables(run_dir)
    if to == "mlflow":
        from nnrun.experiment.export_mlflow import export_mlflow

        return export_mlflow(tables, uri or f"sqlite:///{out or default_out(run_dir, to)}")
    target = Path(out) if out is not None else default_out(run_dir, to)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--out {target}: cannot create it ({error.strerror or error})") from None
    if to == "tensorboard":
        from nnrun.experiment.export_tensorboard import export_tensorboard

        export_tensorboard(tables, target)
        return target
    for name, rows in (("epochs", tables.epochs()), ("runs", tables.runs())):
        if to == "csv":
            write_atomic(target / f"{name}.csv", _writes(csv_bytes(rows)))
        else:
            write_atomic(target / f"{name}.parquet", parquet_writer(rows))
    return target
