"""`[tune]`: tune each configuration with a budget of trials, then re-run the best on seeds.

Optuna draws the trials (random, QMC, TPE, grid), prunes them (median, successive halving) and keeps
the study in the run directory (`tune/<configuration>.log`, Optuna's journal file). Every trial is a
run like any other, named `CONFIG/trial=N`, executed through `execute_run` with its metrics and
checkpoints; a pruned trial stops at an epoch with status `pruned`.

Reproducible and resumable: the sampler is seeded afresh for every trial from `[experiment] seed`,
the configuration and the trial's number, so what trial N draws depends only on the trials before it
(which the study holds), never on how many processes drew them. A trial interrupted by a signal stays
RUNNING in the study; `nnrun resume` continues it from its checkpoint (bit-identical on CPU) and then
draws the next one. Trials of one study run one after another, through the experiment's executor
(`--jobs` workers, Ray, SLURM): a worker reports the trial's epochs to the study through its
journal file, and the pruner decides there; the best's final seeds run all at once.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnrun.config import Experiment, RunConfig
from nnrun.config.compose import set_path
from nnrun.config.resolve import resolve_components
from nnrun.config.schema import TuneSection
from nnrun.config.tuning import Dimension, tune_space
from nnrun.experiment.reporting import Reporter
from nnrun.experiment.rundir import RunDirectory
from nnrun.experiment.train import StopFlag
from nnrun.registry import Registry

if TYPE_CHECKING:
    import optuna

    from nnrun.executor import Executor
    from nnrun.experiment.execute import Watch
    from nnrun.experiment.runner import Summary

#: Trial statuses the study is told about (an interrupted trial is continued instead).
TOLD = ("ok", "diverged", "failed", "pruned")


def run_studies(
    experiment: Experiment,
    directory: RunDirectory,
    registry: Registry,
    executor: Executor,
    reporter: Reporter,
    resume: bool,
    summary: Summary,
) -> None:
    """Tune every configuration that has a `[tune]` table, one study after another."""
    for config in experiment.runs:
        if config.tune is not None and not StopFlag.requested:
            tune_configuration(config, directory, registry, executor, reporter, resume, summary)


def tune_configuration(
    config: RunConfig,
    directory: RunDirectory,
    registry: Registry,
    executor: Executor,
    reporter: Reporter,
    resume: bool,
    summary: Summary,
) -> None:
    """Run the configuration's trials until the study holds `trials` of them, then its best on the
    final seeds; record every run in `summary` and the study's outcome in `summary.tune`.

    Every trial and final run executes through `executor`, where the experiment's other runs do
    (a Ray or SLURM worker reports a trial's epochs to the study through its journal file in the
    run directory); the trials one at a time, since each draw depends on the trials before it,
    the final seeds all at once."""
    from optuna.trial import Trial, TrialState

    tune = config.tune
    assert tune is not None
    space = tune_space(config, registry)
    with _quiet_optuna():
        study = open_study(directory, config, tune)
        while not StopFlag.requested:
            trials = study.get_trials(deepcopy=False)
            running = [t for t in trials if t.state == TrialState.RUNNING]
            if running:  # drawn before an interruption: continue it with what it drew
                study.sampler = _drawn()  # draws nothing: the trial holds its values
                trial = Trial(study, running[0]._trial_id)
                again = True
            elif len(trials) >= tune.trials:
                break
            else:
                study.sampler = _sampler(tune, space, config, len(trials))
                trial = study.ask({d.key: _distribution(d) for d in space})
                again = False
            params = {d.key: _value(d, trial.params[d.key]) for d in space}
            run = trial_run(config, f"{config.name}/trial={trial.number}", params, registry)
            entry = summary.entries.get(run.name)
            if not (again and entry is not None and entry["status"] in TOLD):
                watch = TrialWatch(directory.path, config, trial.number)
                done = _execute(executor, [run], directory, registry, reporter, again, watch)
                if not done:
                    return  # stopped before it started: `nnrun resume` continues this trial
                entry = {**done[0], "trial": trial.number, "params": params}
                entry["value"] = run_metric(directory, entry, tune.metric)
                summary.record(entry)
            if entry["status"] not in TOLD:
                return  # interrupted: `nnrun resume` continues this trial
            _tell(study, trial.number, entry)
        if StopFlag.requested:
            return
        outcome = study_outcome(study, config, tune, space, summary)
    summary.tune[config.name] = outcome
    summary.write()
    best = outcome["best"]
    if best is None or not tune.final_seeds:
        return
    group = f"{config.name}/best"
    runs = [
        trial_run(config, f"{group}/seed={seed}", best["params"], registry, seed, group)
        for seed in final_seeds(config)
    ]
    entries: dict[str, dict[str, Any] | None] = {r.name: summary.entries.get(r.name) for r in runs}
    unfinished = [
        run for run in runs if (entries[run.name] or {}).get("status") not in ("ok", "diverged")
    ]
    started = [run for run in unfinished if resume and entries[run.name] is not None]
    fresh = [run for run in unfinished if run not in started]
    for runs_alike, again in ((started, True), (fresh, False)):
        for entry in _execute(executor, runs_alike, directory, registry, reporter, again):
            entry = {**entry, "params": best["params"]}
            entry["value"] = run_metric(directory, entry, tune.metric)
            summary.record(entry)
            entries[entry["name"]] = entry
        if StopFlag.requested:
            return
    values = [entry.get("value") for entry in entries.values() if entry is not None]
    outcome["final"] = {"group": group, **group_statistics(values)}
    summary.tune[config.name] = outcome
    summary.write()


def open_study(directory: RunDirectory, config: RunConfig, tune: TuneSection) -> optuna.Study:
    """The configuration's study, created or loaded from its journal file in the run directory."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(directory.study_file(config.name))
    storage = JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    return optuna.create_study(
        storage=storage,
        study_name=config.name,
        direction="minimize" if tune.mode == "min" else "maximize",
        pruner=_pruner(tune),
        load_if_exists=True,
    )


def trial_run(
    config: RunConfig,
    name: str,
    params: dict[str, Any],
    registry: Registry,
    seed: int | None = None,
    group: str | None = None,
) -> RunConfig:
    """The configuration with the trial's values set: a plain run (no [tune]) named `name`, its
    components' defaults filled in again (a tuned component name starts from its defaults)."""
    tables = config.model_dump(exclude_none=True)
    tables.pop("tune")
    tables.pop("name")
    for key, value in params.items():
        set_path(tables, key.split("."), value)
    if seed is not None and group is not None:
        tables["group"] = {"name": group, "seed": config.experiment.seed}
        tables["experiment"]["seed"] = seed
    # The extremes were checked at load; should a combination of values still be refused, the
    # run is left unresolved and fails when built, as a failed trial.
    run, _ = resolve_components(RunConfig(name=name, **tables), registry)
    return run


def final_seeds(config: RunConfig) -> list[int]:
    """Seeds the trials did not use: the configuration's seed + 1, + 2, ..."""
    assert config.tune is not None
    return [config.experiment.seed + 1 + index for index in range(config.tune.final_seeds)]


def run_metric(directory: RunDirectory, entry: dict[str, Any], metric: str) -> float | None:
    """The tuned metric of a finished run: its value in the epoch whose weights the run ended on
    (the best epoch when early stopping restored it), or the last epoch a pruned trial reached."""
    if entry["status"] not in ("ok", "pruned"):
        return None
    epoch = entry.get("best_epoch") if entry.get("restored_best") else entry.get("epochs")
    for record in directory.read_metrics():
        if record.get("run") == entry["name"] and record.get("epoch") == epoch:
            value = record.get(metric)
            return float(value) if isinstance(value, (int, float)) else None
    return None


def study_outcome(
    study: optuna.Study,
    config: RunConfig,
    tune: TuneSection,
    space: list[Dimension],
    summary: Summary,
) -> dict[str, Any]:
    """summary.json's `tune` entry of one configuration: the best trial and the counts."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL for t in trials),
    }
    best = None
    if counts["complete"]:
        trial = study.best_trial
        name = f"{config.name}/trial={trial.number}"
        best = {
            "trial": trial.number,
            "run": name,
            "params": summary.entries[name]["params"],
            "value": trial.value,
        }
    return {
        "method": tune.method,
        "metric": tune.metric,
        "mode": tune.mode,
        "space": {d.key: {d.kind: list(d.values)} for d in space},
        "trials": counts,
        "best": best,
    }


def group_statistics(values: list[float | None]) -> dict[str, Any]:
    """The final seeds' metric: how many finished, their mean, standard deviation, min and max."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    out: dict[str, Any] = {"runs": len(values), "finished": len(finite)}
    if finite:
        out |= {
            "mean": statistics.fmean(finite),
            "std": statistics.stdev(finite) if len(finite) > 1 else 0.0,
            "min": min(finite),
            "max": max(finite),
        }
    return out


def _execute(
    executor: Executor,
    runs: list[RunConfig],
    directory: RunDirectory,
    registry: Registry,
    reporter: Reporter,
    again: bool,
    watch: TrialWatch | None = None,
) -> list[dict[str, Any]]:
    """The runs' entries, run through the executor; runs started before (`again`) continue from
    their checkpoints, their metrics after those checkpoints dropped first (they record those
    epochs again). A run a stop request kept from starting has no entry."""
    from nnrun.executor import make_tasks
    from nnrun.experiment.runner import forget_unsaved_epochs, run_tasks

    if not runs:
        return []
    if again:
        forget_unsaved_epochs(directory, runs, reporter.warn)
    tasks = make_tasks(runs, directory.path, again, reporter.shows_epochs, watch)
    return list(run_tasks(executor, tasks, directory, registry, reporter))


@dataclass(frozen=True)
class TrialWatch:
    """A trial's per-epoch watch, made where the trial executes (plain data, so it travels to a
    worker): it reports each epoch's metric to the study through the study's journal file and,
    with pruning, stops the trial the pruner gives up on (never at the last epoch)."""

    directory: Path
    config: RunConfig  # the tuned configuration
    number: int  # the trial's number in its study

    def __call__(self) -> Watch:
        from optuna.trial import Trial

        tune = self.config.tune
        assert tune is not None and self.config.train is not None
        with _quiet_optuna():
            study = open_study(RunDirectory(self.directory), self.config, tune)
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == self.number)
        trial, epochs = Trial(study, frozen._trial_id), self.config.train.epochs

        def watch(record: dict[str, Any]) -> bool:
            value = record.get(tune.metric)
            if not isinstance(value, (int, float)):
                return False  # diverged: the trial ends as such
            trial.report(float(value), record["epoch"])
            return tune.prune is not None and record["epoch"] < epochs and trial.should_prune()

        return watch


def _tell(study: optuna.Study, number: int, entry: dict[str, Any]) -> None:
    from optuna.trial import TrialState

    if entry["status"] == "ok" and entry.get("value") is not None:
        study.tell(number, entry["value"])
    elif entry["status"] == "pruned":
        study.tell(number, state=TrialState.PRUNED)
    else:  # diverged or failed: no value to compare
        study.tell(number, state=TrialState.FAIL)


def _seed(config: RunConfig, *parts: object) -> int:
    """A sampler seed from the experiment's seed, the configuration and `parts` (a trial number)."""
    text = "/".join(map(str, (config.experiment.seed, config.name, *parts)))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _sampler(
    tune: TuneSection, space: list[Dimension], config: RunConfig, number: int
) -> optuna.samplers.BaseSampler:
    """The sampler that draws trial `number`, seeded for that trial alone."""
    from optuna import samplers

    seed = _seed(config, number)
    if tune.method == "tpe":
        return samplers.TPESampler(seed=seed)
    if tune.method == "qmc":  # one scrambled sequence per configuration, indexed by the study
        return samplers.QMCSampler(
            scramble=True,
            seed=_seed(config),
            independent_sampler=samplers.RandomSampler(seed=seed),
            warn_independent_sampling=False,
            warn_asynchronous_seeding=False,
        )
    if tune.method == "grid":

        class Grid(samplers.GridSampler):
            def after_trial(self, *args: Any, **kwargs: Any) -> None:
                """The grid's own "all points seen, stop the study" is for `study.optimize`;
                nnrun asks for exactly the grid's points itself (load checks trials = points)."""

        # the seed shuffles the grid's order: one order per configuration, trial N its N-th point
        return Grid({d.key: _choices(d) for d in space}, seed=_seed(config))
    return samplers.RandomSampler(seed=seed)


def _drawn() -> optuna.samplers.BaseSampler:
    """For a trial continued after an interruption: its values are in the study already, and a
    sampler with no relative space (random) draws nothing, so no sequence advances."""
    from optuna import samplers

    return samplers.RandomSampler(seed=0)


def _pruner(tune: TuneSection) -> optuna.pruners.BasePruner:
    from optuna import pruners

    prune = tune.prune
    if prune is None:
        return pruners.NopPruner()
    if prune.method == "asha":
        return pruners.SuccessiveHalvingPruner(min_resource=max(1, prune.warmup_epochs))
    return pruners.MedianPruner(
        n_startup_trials=prune.startup_trials, n_warmup_steps=prune.warmup_epochs
    )


def _choices(dimension: Dimension) -> list[Any]:
    """A choice as Optuna holds it: the values when they are scalars, else their positions."""
    values = list(dimension.values)
    scalar = all(v is None or isinstance(v, (bool, int, float, str)) for v in values)
    return values if scalar else list(range(len(values)))


def _distribution(dimension: Dimension) -> optuna.distributions.BaseDistribution:
    from optuna import distributions

    low, high = dimension.values[0], dimension.values[-1]
    if dimension.kind == "choice":
        return distributions.CategoricalDistribution(_choices(dimension))
    if dimension.kind == "int_uniform":
        return distributions.IntDistribution(int(low), int(high))
    return distributions.FloatDistribution(float(low), float(high), log=dimension.log)


def _value(dimension: Dimension, drawn: Any) -> Any:
    """What Optuna drew, as the run's value (a choice's position back to the choice)."""
    if dimension.kind == "choice" and _choices(dimension) != list(dimension.values):
        return dimension.values[drawn]
    return drawn


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """nnrun reports the trials itself: Optuna's per-trial log lines and its warning about a step
    reported twice (a resumed trial reports the epochs since its checkpoint again) stay out."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*already reported.*")
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # QMCSampler
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)
