"""Experiment files: read, compose (runs, sweeps, overrides), validate, resolve against plugins.

What resolves components and checks the fit imports torch; it is imported by `load_experiment`,
so that reading a run directory's config (`nnrun show`, `compare`) does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnrun.config.compose import Override, compose, read_source
from nnrun.config.report import report_problems
from nnrun.config.requires import WHERE, requirement_problems
from nnrun.config.schema import ComponentSpec, RunConfig
from nnrun.config.validate import Located, line_for, validate_run
from nnrun.errors import ConfigError
from nnrun.registry import Registry


@dataclass
class Experiment:
    """A validated experiment: its name, seed and fully resolved runs."""

    name: str
    seed: int
    path: Path
    runs: list[RunConfig]
    overrides: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what loading the data reported (skipped rows)
    #: Where the runs execute: the `[executor]` spec, its defaults filled in (`nnrun.executor`).
    executor: dict[str, Any] = field(default_factory=lambda: {"name": "local", "jobs": 1})

    def to_dict(self) -> dict[str, Any]:
        """The resolved experiment as TOML-ready data; loading it again gives the same runs.
        The runs of a group (one configuration over several seeds) are written once, as their
        configuration with its seeds, so the file reads as it was written and composes again."""
        first = self.runs[0].experiment.model_dump()
        runs: list[dict[str, Any]] = []
        written: set[str] = set()
        for run in self.runs:
            tables = run.to_dict()
            if run.group is None:
                runs.append({"name": run.name, **tables})
            elif run.group.name not in written:
                written.add(run.group.name)
                tables["name"], tables["experiment"]["seed"] = run.group.name, run.group.seed
                runs.append(tables)
        experiment = {**first, "name": self.name, "seed": self.seed}
        return {"experiment": experiment, "executor": dict(self.executor), "runs": runs}


#: The most problems one error message lists.
MAX_PROBLEMS = 20


def load_experiment(
    path: str | Path,
    overrides: Iterable[str] = (),
    registry: Registry | None = None,
    seed: int | None = None,
    executor: str | None = None,
    nproc: int | None = None,
) -> Experiment:
    """Read and validate an experiment file in one pass: every run against the schema, every
    component against its plugin's constructor, every run as a whole (device, data, loss, memory).
    Raise one `ConfigError` listing every problem found, each with the file and line.

    `seed` is used when the file sets none (a resume passes the seed drawn the first time);
    `executor` is `--executor`'s name, over the file's `[executor] name`. `nproc` > 1
    (`--nproc`, torchrun's processes on this node) also refuses what data-parallel training
    cannot do.
    """
    from nnrun.config.executor import executor_spec
    from nnrun.config.fit import available_memory, check_fit, data_notes
    from nnrun.config.resolve import component_problems, resolve_components
    from nnrun.config.tuning import tune_problems, with_tune_mode
    from nnrun.loading import load_registry

    path = Path(path)
    overrides = list(overrides)
    parsed = [Override.parse(text) for text in overrides]
    text = read_source(path)
    try:
        experiment, composed = compose(path, parsed, seed, text)
    except ConfigError as error:
        raise ConfigError(_with_overrides(str(error), overrides)) from None
    registry = registry if registry is not None else load_registry()
    memory = available_memory()
    runs: list[RunConfig] = []
    found: dict[Located, list[str]] = {}
    for name, tables in composed:
        run, problems = validate_run(text, name, tables)
        unmet = requirement_problems(run.experiment.requires) if run is not None else []
        if unmet:  # the root cause of any unknown component: say only that
            located = [(WHERE, message) for message in unmet]
        elif run is None:
            located = component_problems(tables, registry, path.parent)
        else:
            run, located = resolve_components(run, registry, path.parent)
            if not located:
                located = check_fit(run, registry, memory)
            if not located:
                problems += tune_problems(text, run, registry) + report_problems(text, run)
                run = with_tune_mode(run, registry)
        problems += [(line_for(text, loc, name), message) for loc, message in located]
        for problem in problems:
            found.setdefault(problem, []).append(name)
        if run is not None and not problems:
            runs.append(run)
    spec, executor_problems = executor_spec(text, parsed, registry, executor)
    for problem in executor_problems:  # the experiment's as a whole: no run's label
        found.setdefault(problem, []).extend(name for name, _ in composed)
    if not found and runs and nproc is not None and nproc > 1:
        from nnrun.config.distributed import distributed_problems

        for problem, name in distributed_problems(text, runs, nproc):
            found.setdefault(problem, []).append(name)
        if spec is not None and spec["name"] != "local":
            where = line_for(text, ("executor", "name"))
            message = (
                f"--nproc {nproc} trains each run on {nproc} processes here, and executor "
                f"{spec['name']!r} sends whole runs elsewhere: use one or the other"
            )
            found.setdefault((where, message), []).extend(name for name, _ in composed)
    if found:
        raise ConfigError(_with_overrides(_report(path, found, len(composed)), overrides))
    notes = data_notes(runs, registry)
    assert spec is not None  # no problem was found
    return Experiment(
        str(experiment["name"]), int(experiment["seed"]), path, runs, overrides, notes, spec
    )


def _report(path: Path, found: dict[Located, list[str]], runs: int) -> str:
    """One line for one problem; else a header and one "  - " line per problem (at most 20)."""
    lines = [
        f"{path}{line}: {_label(names, runs)}{message}" for (line, message), names in found.items()
    ]
    if len(lines) == 1:
        return lines[0]
    shown = lines[:MAX_PROBLEMS]
    more = f" (the first {MAX_PROBLEMS} shown)" if len(lines) > MAX_PROBLEMS else ""
    return f"{path}: {len(lines)} problems{more}:\n" + "\n".join(f"  - {line}" for line in shown)


def _label(names: list[str], runs: int) -> str:
    """Which runs a problem is in, unless it is in all of them."""
    if len(names) == runs:
        return ""
    if len(names) == 1:
        return f"run {names[0]!r}: "
    listed = ", ".join(map(repr, names[:3]))
    return f"runs {listed}{f' and {len(names) - 3} more' if len(names) > 3 else ''}: "


def _with_overrides(message: str, overrides: list[str]) -> str:
    """The mistake may be in an override rather than in the file: say which were given."""
    if not overrides or message.startswith("override "):
        return message
    return f"{message} (with the overrides {' '.join(overrides)})"


__all__ = ["ComponentSpec", "Experiment", "Override", "RunConfig", "load_experiment"]
