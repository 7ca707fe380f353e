"""MLflow from a run directory: one MLflow experiment, one MLflow run per nnrun run with its
hyperparameters as params, every per-epoch figure as a metric history (step = epoch), tags
(status, group, seed) and the run directory's files as artifacts, into any tracking URI
(default a SQLite file: MLflow's file store is deprecated)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nnrun.errors import ConfigError
from nnrun.experiment.rundir import WRITTEN
from nnrun.experiment.safefiles import is_plain_file
from nnrun.names import slug

#: MLflow's longest param value; a longer one (a long list) is cut, not refused.
_PARAM_LENGTH = 6000
_BATCH = 1000  # log_batch takes at most 1000 metrics per call


def _mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ConfigError(
            "exporting to MLflow needs the optional package mlflow: pip install 'nnrun[mlflow]'"
        ) from None
    return mlflow


def export_mlflow(tables: Any, uri: str) -> str:
    """Log `tables` (an `export.Tables`) into the tracking server at `uri`; return the URI."""
    mlflow = _mlflow()
    from mlflow.entities import Metric, Param, RunTag

    client = mlflow.MlflowClient(tracking_uri=uri)
    name = str(tables.summary.get("experiment") or tables.path.name)
    source = str(tables.path.resolve())
    found = client.get_experiment_by_name(name)
    if found is None:
        artifacts = None
        if uri.startswith("sqlite:///"):  # beside the database, not ./mlruns in the cwd
            artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve()
        experiment_id = client.create_experiment(
            name, artifact_location=artifacts.as_uri() if artifacts else None
        )
    else:
        experiment_id = found.experiment_id
        done = client.search_runs(
            [experiment_id], filter_string=f"tags.`nnrun.run_dir` = '{source}'", max_results=1
        )
        if done:
            raise ConfigError(
                f"{tables.path}: already exported to {uri} (MLflow experiment {name!r}); "
                f"delete those runs first or give another --uri"
            )
    by_run: dict[str, list[dict[str, Any]]] = {}
    for record in tables.metrics:
        by_run.setdefault(record["run"], []).append(record)
    shared = [tables.path / n for n in sorted(WRITTEN) if is_plain_file(tables.path / n)]
    for row in tables.runs():
        run_name = row["run"]
        tags = {
            "status": row["status"],
            "group": row["group"],
            "seed": "" if row["seed"] is None else str(row["seed"]),
            "nnrun.run_dir": source,
        }
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        params = [
            Param(key, str(value)[:_PARAM_LENGTH])
            for key, value in tables.hyperparameters[run_name].items()
        ]
        metrics = [
            Metric(key, float(value), now, record["epoch"])
            for record in by_run.get(run_name, [])
            for key, value in record.items()
            if key not in ("run", "epoch") and _is_number(value)
        ]
        finals = [
            Metric(key, float(value), now, 0)
            for key, value in row.items()
            if key.startswith(("final_", "test_")) and _is_number(value)
        ]
        client.log_batch(run_id, params=params, tags=[RunTag("mlflow.source.name", source)])
        everything = metrics + finals
        for start in range(0, len(everything), _BATCH):
            client.log_batch(run_id, metrics=everything[start : start + _BATCH])
        for file in shared:
            client.log_artifact(run_id, str(file), "run_directory")
        checkpoints = tables.path / "checkpoints" / slug(run_name)
        if checkpoints.is_dir() and not checkpoints.is_symlink():
            client.log_artifacts(run_id, str(checkpoints), "checkpoints")
        client.set_terminated(run_id, "FINISHED" if row["status"] == "ok" else "FAILED")
    return uri


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
