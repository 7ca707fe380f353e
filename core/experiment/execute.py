"""Execute one run, train or solve, recording its metrics and checkpoints as it goes."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nnrun.config.schema import RunConfig, TrainSection
from nnrun.errors import ConfigError
from nnrun.experiment import distributed
from nnrun.experiment.assemble import make_data, make_model, make_solver, shuffle_generator
from nnrun.experiment.data import Data
from nnrun.experiment.distributed import DataParallel
from nnrun.experiment.reporting import Reporter, SilentReporter
from nnrun.experiment.rundir import RunDirectory
from nnrun.experiment.train import StopFlag, Trainer, TrainSettings
from nnrun.factory import build
from nnrun.registry import Registry

#: Shown each epoch's record; True stops the run there with status `pruned` (a tuning trial).
Watch = Callable[[dict[str, Any]], bool]


def execute_run(
    run: RunConfig,
    out: Path,
    registry: Registry,
    reporter: Reporter,
    resume: bool,
    watch: Watch | None = None,
) -> dict[str, Any]:
    """Run one run and return its summary entry; an exception marks it failed instead of escaping."""
    directory = RunDirectory(out)
    threads, previous = run_threads(run), torch.get_num_threads()
    torch.set_num_threads(threads)  # results are bit-identical for the same count, not across
    try:
        if run.experiment.task == "solve":
            entry = _solve(run, directory, registry, reporter)
        else:
            entry = _train(run, directory, registry, reporter, resume, watch)
        return {**entry, "threads": threads}
    except ConfigError:
        raise  # bad input found only once the run started: report it as such (exit status 2)
    except Exception as error:
        directory.log_failure(run.name, traceback.format_exc())
        if distributed.active() is not None:
            raise  # the other ranks are in this run's collectives: end them all
        return {
            "name": run.name,
            "task": run.experiment.task,
            "status": "failed",
            "error": f"{type(error).__name__}: {error}",
        }
    finally:
        torch.set_num_threads(previous)


def execute_run_in_worker(
    run: RunConfig,
    out: Path,
    resume: bool,
    epoch_lines: bool,
    watch: Callable[[], Watch] | None = None,
) -> dict[str, Any]:
    """Entry point of a worker process (`--jobs`): load the plugins there, then run. With
    `epoch_lines`, the worker prints its per-epoch lines to stderr (never progress bars, which
    several processes would draw over one another); the parent reports each finished run."""
    from nnrun.experiment.reporting import ConsoleReporter, worker_console
    from nnrun.loading import load_registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the parent already warned about broken plugins
        registry = load_registry()
    reporter = (
        ConsoleReporter(worker_console(), status_lines=False) if epoch_lines else SilentReporter()
    )
    return execute_run(run, out, registry, reporter, resume, watch() if watch else None)


def build_trainer(
    run: RunConfig, registry: Registry, parallel: DataParallel | None = None
) -> tuple[Trainer, Data]:
    """The run's data, model, optimizer, scheduler, loss and metrics in a `Trainer`: also what
    the other ranks of a data-parallel run train with (`parallel`)."""
    data = make_data(run, registry)
    model = make_model(run, registry)
    optimizer = build(registry, "optimizers", run.optimizer, model.parameters())
    scheduler = build(registry, "schedulers", run.scheduler, optimizer) if run.scheduler else None
    loss = build(registry, "losses", run.loss)
    assert run.train is not None  # a train run has [train] (RunConfig checks)
    metrics = {spec.name: build(registry, "metrics", spec) for spec in run.train.metrics}
    trainer = Trainer(
        model,
        loss,
        optimizer,
        scheduler,
        train_settings(run.train),
        data.train,
        data.val,
        shuffle_generator(run),
        stop=StopFlag if parallel is None else parallel.stop,
        metrics=metrics,
        parallel=parallel,
    )
    return trainer, data


def _train(
    run: RunConfig,
    directory: RunDirectory,
    registry: Registry,
    reporter: Reporter,
    resume: bool,
    watch: Watch | None = None,
) -> dict[str, Any]:
    parallel = distributed.active()
    trainer, data = build_trainer(
        run if parallel is None else parallel.on_this_rank(run), registry, parallel
    )
    model, settings = trainer.model, trainer.settings
    saved = None
    if resume:
        saved = directory.load_last_checkpoint(run.name)
        if saved is not None:
            trainer.load_state_dict(saved)
    if parallel is not None:  # the other ranks train this run from the same state
        parallel.announce(run, saved)
    reporter.run_started(run, trainer.state.epoch, trainer.steps_per_epoch)
    live = None
    if run.report.tensorboard:
        from nnrun.experiment.live_tensorboard import LiveScalars

        live = LiveScalars(directory.path, run.name, trainer.state.epoch)

    def on_epoch(record: dict[str, Any]) -> None:
        record = {"run": run.name, **_finite(record)}
        directory.append_metrics(record)
        if live is not None:
            live.epoch(record)
        reporter.epoch(run, record)
        if watch is not None and trainer.state.status == "running" and watch(record):
            trainer.state.status = "pruned"  # the loop stops after this epoch

    def checkpoint() -> None:
        state = trainer.state
        name = f"epoch{state.epoch:04d}" + (f"-step{state.step:06d}" if state.step else "")
        directory.sync_metrics()  # the lines up to a checkpoint are on disk with it
        directory.save_checkpoint(run.name, name, trainer.state_dict())

    try:
        if trainer.state.status == "pruned":  # resumed from a pruned trial's last checkpoint
            status = "pruned"
        else:
            shows_progress = type(reporter).progress is not Reporter.progress  # not under -q
            status = trainer.fit(
                on_epoch,
                (lambda progress: reporter.progress(run, progress)) if shows_progress else None,
                checkpoint,
            )
    finally:
        if live is not None:
            live.close()
    checkpoint()
    history = [r for r in directory.read_metrics() if r.get("run") == run.name and "epoch" in r]
    state = trainer.state
    entry: dict[str, Any] = {
        "name": run.name,
        "task": "train",
        "status": status,
        "epochs": state.epoch,
        "seconds": round(sum(r.get("seconds") or 0.0 for r in history), 3),
    }
    if status != "interrupted":  # the final weights: the best epoch's when restored
        entry |= _final_scores(trainer, data)
    if status == "ok":
        directory.save_model(run.name, model_file(run, model, data))
    if settings.early_stopping:
        entry["stopped_early"] = state.stopped_early
        entry["best_epoch"] = state.best_epoch
        entry["restored_best"] = state.restored_best
    final_epoch = state.best_epoch if state.restored_best else state.epoch
    final = [r for r in history if r["epoch"] == final_epoch]
    if final and "probes" in final[-1]:
        entry["probes"] = final[-1]["probes"]
    return entry


def _final_scores(trainer: Trainer, data: Any) -> dict[str, Any]:
    """The losses and metrics of the final weights: on the training and validation splits, and
    once, at the end, on the test split. `final_metrics` are on `metrics_split`, the validation
    split (the training split when there is none), like the per-epoch metrics."""
    model = trainer.model
    train_pred = model.forward(data.train[0])
    scores: dict[str, Any] = {"final_loss": trainer.loss.forward(train_pred, data.train[1]).item()}
    scored = (train_pred, data.train[1])
    if data.val is not None:
        scored = (model.forward(data.val[0]), data.val[1])
        scores["final_val_loss"] = trainer.loss.forward(*scored).item()
    if trainer.metrics:
        scores["metrics_split"] = trainer.metrics_split
        scores["final_metrics"] = trainer.score(*scored)
    if data.test is not None:
        test_pred = model.forward(data.test[0])
        scores["test_loss"] = trainer.loss.forward(test_pred, data.test[1]).item()
        if trainer.metrics:
            scores["test_metrics"] = trainer.score(test_pred, data.test[1])
    return _finite(scores)


def model_file(run: RunConfig, model: Any, data: Any) -> dict[str, Any]:
    """What `nnrun predict` needs to rebuild the network and read its inputs: plain data and
    tensors only, so it loads with `torch.load(weights_only=True)`."""
    assert run.model is not None
    standardization = data.standardization
    return {
        "format": MODEL_FORMAT,
        "run": run.name,
        "task": data.task,
        "layers": list(run.model.layers),
        "activation": run.model.activation.to_dict(),
        "output_activation": run.model.output_activation.to_dict(),
        "dtype": run.experiment.dtype,
        "weights": [w.cpu() for w in model.state_dict()],
        "inputs": list(data.inputs),
        "targets": list(data.targets),
        "classes": list(data.classes),
        "standardization": None if standardization is None else standardization.to_dict(),
        # predict reads its CSV the way the training file was read
        "delimiter": str((run.data.params if run.data else {}).get("delimiter", ",")),
    }


#: Marks a model file nnrun wrote, and its layout's version.
MODEL_FORMAT = "nnrun-model-1"


def train_settings(section: TrainSection) -> TrainSettings:
    """The training loop's plain settings from the validated `[train]` table."""
    names = {f.name for f in dataclasses.fields(TrainSettings)}
    values = {name: getattr(section, name) for name in names if hasattr(section, name)}
    stopping = section.early_stopping
    values["early_stopping"] = None if stopping is None else stopping.patience
    if stopping is not None:
        values |= {"watch": stopping.metric, "mode": stopping.mode, "min_delta": stopping.min_delta}
    return TrainSettings(**{**values, "probes": tuple(values["probes"])})


#: Work per training step (batch size × parameters, the multiply-adds of one forward pass) below
#: which one torch thread is used: measured with benchmarks/threads.py, where a second thread
#: made steps of every size up to this one (the largest measured) 2-80x slower on a busy 2-core
#: machine (README, Performance).
ONE_THREAD_BELOW = 1_000_000_000
_TORCH_THREADS = torch.get_num_threads()  # torch's own default, before any run changes it


def run_threads(run: RunConfig) -> int:
    """`[experiment] threads`, or the default: 1 for small networks, torch's default above."""
    if run.experiment.threads is not None:
        return run.experiment.threads
    if run.experiment.task == "solve":
        return 1
    assert run.model is not None and run.train is not None  # a train run has both
    widths = run.model.layers
    params = sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(widths))
    return 1 if run.train.batch_size * params < ONE_THREAD_BELOW else _TORCH_THREADS


def _solve(
    run: RunConfig, directory: RunDirectory, registry: Registry, reporter: Reporter
) -> dict[str, Any]:
    solver, optimizer = make_solver(run, registry)
    reporter.run_started(run, 0, 0)
    started = time.perf_counter()
    result = solver.solve(optimizer, should_stop=lambda: StopFlag.requested)
    seconds = time.perf_counter() - started
    for index, descent in enumerate(result.descents):
        directory.append_metrics(
            _finite(
                {
                    "run": run.name,
                    "descent": index,
                    "start": descent.start,
                    "end": descent.end,
                    "iterations": descent.iterations,
                    "converged": descent.converged,
                    "diverged": descent.diverged,
                    "reason": descent.reason,
                    "residuals": descent.residuals,
                }
            )
        )
    directory.sync_metrics()
    entry = {
        "name": run.name,
        "task": "solve",
        "status": result.status,  # ok | diverged | interrupted
        "roots": _finite(result.roots),  # verified roots only; [] and converged: no real roots
        "iterations": result.iterations,
        "converged": result.converged,
        "seconds": round(seconds, 3),
    }
    if result.reasons:
        entry["reason"] = "; ".join(result.reasons)
    return entry


def _finite_or_none(value: float) -> float | None:
    """JSON has no NaN or infinity: a diverged loss is recorded as null (and the status says why)."""
    return value if math.isfinite(value) else None


def _finite(record: Any) -> Any:
    if isinstance(record, float):
        return _finite_or_none(record)
    if isinstance(record, dict):
        return {k: _finite(v) for k, v in record.items()}
    if isinstance(record, list):
        return [_finite(v) for v in record]
    return record
