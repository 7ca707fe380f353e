"""TensorBoard event files from a run directory: one folder per run (its name made safe by `slug`),
every per-epoch figure as a scalar at step = epoch, and the run's hyperparameters with its final
figures through TensorBoard's hparams plugin, so `tensorboard --logdir OUT` compares the runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnrun.errors import ConfigError
from nnrun.names import slug


def summary_writer(log_dir: Path, purge_step: int | None = None) -> Any:
    """torch's SummaryWriter, or an error naming the extra when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "writing TensorBoard event files needs the optional package tensorboard: "
            "pip install 'nnrun[tensorboard]'"
        ) from None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def scalars(writer: Any, record: dict[str, Any]) -> None:
    """One metrics.jsonl record's numbers as scalars at its epoch."""
    for key, value in record.items():
        if key not in ("run", "epoch") and _is_number(value):
            writer.add_scalar(key, value, global_step=record["epoch"])


def hparam_value(value: Any) -> int | float | str | bool:
    """What the hparams plugin accepts: numbers, text and booleans; anything else as its text."""
    return value if isinstance(value, int | float | str | bool) else str(value)


def export_tensorboard(tables: Any, target: Path) -> None:
    """Write `tables` (an `export.Tables`) as event files under `target`."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for record in tables.metrics:
        by_run.setdefault(record["run"], []).append(record)
    for row in tables.runs():
        run = row["run"]
        writer = summary_writer(target / slug(run))
        try:
            for record in by_run.get(run, []):
                scalars(writer, record)
            hparams = {k: hparam_value(v) for k, v in tables.hyperparameters[run].items()}
            hparams.update(group=row["group"], status=row["status"])
            finals = {
                f"hparams/{k}": v
                for k, v in row.items()
                if k.startswith(("final_", "test_")) and _is_number(v)
            }
            writer.add_hparams(hparams, finals, run_name=".")
        finally:
            writer.close()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
