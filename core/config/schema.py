"""The experiment file's schema: one pydantic model per table, unknown keys forbidden everywhere.

Component tables (`[optimizer]`, `[loss]`, `activation = ...`) are open: their `name` picks a plugin
and the remaining keys are that plugin's hyperparameters, checked against its constructor later
(see `nnrun.config.resolve`), because only the registry knows what a plugin accepts.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nnrun.config.distributed import DistributedSection
from nnrun.errors import suggest
from nnrun.names import name_problem

Positive = Field(ge=1)


class Section(BaseModel):
    """Strict: TOML has real types, so `epochs = "3"` or `shuffle = 1` is a mistake to report,
    not a value to coerce (an int still passes where a float is expected)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True)


class ComponentSpec(BaseModel):
    """`name` plus the component's hyperparameters; a bare string means just the name."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.params}


class ExperimentSection(Section):
    name: str = Field(min_length=1)
    seed: int = Field(ge=0, lt=2**63)
    task: Literal["train", "solve"] = "train"
    device: str = "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    threads: int | None = Field(None, ge=1, description="torch threads; default: by model size")
    max_runs: int = Field(10_000, ge=1, description="the most runs a sweep may compose")
    requires: list[str] = Field([], description="PEP 508 requirements on installed distributions")
    seeds: list[int] | None = Field(None, description="repeat every configuration once per seed")
    repeats: int | None = Field(None, ge=1, description="repeat with seeds seed, seed+1, ...")

    @field_validator("requires")
    @classmethod
    def _requires(cls, value: list[str]) -> list[str]:
        from nnrun.config.requires import parse_requirement

        for text in value:
            parse_requirement(text)  # raises ValueError, which pydantic reports with the line
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("seeds needs at least one seed, e.g. seeds = [0, 1, 2]")
        if not all(0 <= seed < 2**63 for seed in value):
            raise ValueError("every seed must be in [0, 2**63)")
        repeated = sorted({seed for seed in value if value.count(seed) > 1})
        if repeated:
            raise ValueError(f"each seed once: {', '.join(map(str, repeated))} is repeated")
        return value

    @model_validator(mode="after")
    def _seeds_or_repeats(self) -> ExperimentSection:
        if self.seeds is not None and self.repeats is not None:
            raise ValueError(
                "seeds and repeats exclude each other: give the seeds, or how many to derive "
                "from seed (seed, seed + 1, ...)"
            )
        return self

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        problem = name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        kind = value.split(":", 1)[0]
        if kind not in ("cpu", "cuda", "mps") or (
            ":" in value and not value[len(kind) + 1 :].isdigit()
        ):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {value!r}")
        return value


class SplitSection(Section):
    """Held-out shares of the data (seeded; stratified by class for classification); the rest is
    training data."""

    val: float = Field(0.0, ge=0.0, lt=1.0)
    test: float = Field(0.0, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _leaves_training_data(self) -> SplitSection:
        if self.val + self.test >= 1:
            raise ValueError(
                f"val = {self.val} and test = {self.test} leave nothing for training: "
                f"their sum must be less than 1"
            )
        return self

    def shares(self) -> dict[str, float]:
        """The held-out parts in the order they are drawn (val first, so adding test keeps val)."""
        return {name: share for name, share in (("val", self.val), ("test", self.test)) if share}


class DataSection(Section):
    """`kind` picks the dataset plugin; `split`, `standardize` and `reseed` are nnrun's, shared by every
    kind; every other key is the dataset's hyperparameter, checked against its constructor like
    any component's (see `nnrun.config.resolve`), because only the registry knows what it takes."""

    model_config = ConfigDict(extra="allow", validate_default=True, strict=True)
    kind: str = Field("function", min_length=1)
    split: SplitSection = SplitSection()
    standardize: bool = Field(False, description="scale inputs by the training split's statistics")
    reseed: bool = Field(False, description="with seeds: every seed draws its own data")

    @property
    def params(self) -> dict[str, Any]:
        """The dataset's hyperparameters."""
        return dict(self.model_extra or {})

    def spec(self) -> dict[str, Any]:
        """The dataset as a component spec, for the registry: its name and hyperparameters."""
        return {"name": self.kind, **self.params}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            **self.params,
            "split": self.split.model_dump(),
            "standardize": self.standardize,
            "reseed": self.reseed,
        }


class ModelSection(Section):
    layers: list[int] = Field(min_length=2)
    activation: ComponentSpec = ComponentSpec(name="sigmoid")
    output_activation: ComponentSpec = ComponentSpec(name="identity")
    init: ComponentSpec = ComponentSpec(name="torch_default")

    @field_validator("layers")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if any(width < 1 for width in value):
            raise ValueError(f"every layer width must be at least 1, got {value}")
        return value


class EarlyStopping(Section):
    """`early_stopping = { patience = 10, metric = "accuracy", mode = "max" }`: stop once the watched
    figure on the validation split has not improved by more than `min_delta` for `patience` epochs."""

    patience: int = Positive
    metric: str = Field("val_loss", min_length=1, description="val_loss or a [train] metric")
    mode: Literal["min", "max"] | None = Field(None, description="default: the metric's own")
    min_delta: float = Field(0.0, ge=0.0, allow_inf_nan=False)


class TrainSection(Section):
    epochs: int = Positive
    batch_size: int = Field(32, ge=1)
    probes: list[float] = Field([], description="inputs whose prediction is logged every epoch")
    shuffle: bool = False
    metrics: list[ComponentSpec] = Field(
        [], description="computed every epoch and on the test split"
    )
    early_stopping: EarlyStopping | None = Field(None, description="patience, or a table")
    restore_best: bool = Field(True, description="end on the best validation epoch's weights")
    grad_clip: float | None = Field(
        None, gt=0.0, allow_inf_nan=False, description="max global gradient norm"
    )
    log_every: int = Field(1, ge=1, description="epochs between plain progress lines")
    checkpoint_every: int | None = Field(None, ge=1, description="epochs between checkpoints")

    @field_validator("probes")
    @classmethod
    def _probes(cls, value: list[float]) -> list[float]:
        if not all(math.isfinite(probe) for probe in value):
            raise ValueError("every probe must be a finite number")
        repeated = sorted({probe for probe in value if value.count(probe) > 1})
        if repeated:
            raise ValueError(f"each probe once: {', '.join(map(repr, repeated))} is repeated")
        return value

    @field_validator("early_stopping", mode="before")
    @classmethod
    def _patience(cls, value: Any) -> Any:
        """A bare integer is the patience of today's early stopping on the validation loss."""
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError("Input should be greater than or equal to 1")
            return {"patience": value}
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics_once(cls, value: list[ComponentSpec]) -> list[ComponentSpec]:
        names = [spec.name for spec in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"each metric once: {', '.join(map(repr, repeated))} is repeated")
        return value

    @field_validator("early_stopping")
    @classmethod
    def _watched_metric_is_computed(
        cls, value: EarlyStopping | None, info: ValidationInfo
    ) -> EarlyStopping | None:
        if "metrics" not in info.data:
            return value  # the metrics themselves are wrong: that is the problem to report
        names = [spec.name for spec in info.data["metrics"]]
        if value is not None and value.metric != "val_loss" and value.metric not in names:
            listed = ", ".join(repr(n) for n in names)
            raise ValueError(
                f"metric = {value.metric!r}{suggest(value.metric, [*names, 'val_loss'])} is not "
                f"among [train] metrics = [{listed}]: add it there, or watch 'val_loss'"
            )
        return value


class SolverSpec(ComponentSpec):
    """A solver's table: its hyperparameters, and optionally the optimizer that drives it."""

    optimizer: ComponentSpec | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.optimizer is not None:
            out["optimizer"] = self.optimizer.to_dict()
        return out


class ReportSection(Section):
    """How the figures summarise a run directory."""

    band: Literal["minmax", "ci95"] = Field(
        "minmax",
        description="around a group's median loss: seeds' min to max, or the mean's 95% CI",
    )
    tensorboard: bool = Field(
        False,
        description="write TensorBoard event files in tensorboard/<run>/ every epoch (live)",
    )


#: The distributions a `[tune] space` entry may draw from: { kind = [low, high] } or { choice = [...] }.
SPACE_KINDS = ("log_uniform", "uniform", "int_uniform", "choice")


def space_problem(key: str, entry: Any) -> str | None:
    """What is wrong with one search-space entry (`key` = { log_uniform = [1e-4, 1e-1] }), or None.
    Shared by `[tune] space` and an optimizer's `search_space` class attribute."""
    if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in SPACE_KINDS:
        return (
            f"{key!r} needs exactly one of {', '.join(SPACE_KINDS)}, "
            f"e.g. {{ log_uniform = [1e-4, 1e-1] }} or {{ choice = [16, 32] }}"
        )
    kind, values = next(iter(entry.items()))
    if not isinstance(values, list) or not values:
        return f"{key!r}: {kind} takes a non-empty list"
    if kind == "choice":
        repeated = [v for i, v in enumerate(values) if v in values[:i]]
        return f"{key!r}: each choice once: {repeated[0]!r} is repeated" if repeated else None
    numbers = len(values) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )
    if not numbers or not values[0] < values[1]:
        return f"{key!r}: {kind} takes [low, high] with finite numbers, low < high, got {values}"
    if kind == "log_uniform" and values[0] <= 0:
        return f"{key!r}: log_uniform needs low > 0 (a log scale has no 0), got {values}"
    if kind == "int_uniform" and not all(isinstance(v, int) for v in values):
        return f"{key!r}: int_uniform takes two integers, got {values}"
    return None


class PruneSection(Section):
    """Stop trials that are clearly worse than the others at the same epoch (Optuna's pruners)."""

    method: Literal["median", "asha"] = "median"
    warmup_epochs: int = Field(
        0, ge=0, description="epochs a trial runs before it may be pruned (at the last of them)"
    )
    startup_trials: int = Field(
        5, ge=0, description="median: trials that finish before any pruning"
    )


class TuneSection(Section):
    """Tune each configuration with a budget of trials (Optuna), then re-run the best on seeds."""

    method: Literal["grid", "random", "qmc", "tpe"] = "random"
    trials: int = Field(ge=1, le=10_000)
    metric: str = Field("val_loss", min_length=1)
    mode: Literal["min", "max"] | None = Field(
        None, description="default: the metric's own (min for losses, the metric plugin's mode)"
    )
    space: str | dict[str, dict[str, list[Any]]] = "default"
    final_seeds: int = Field(
        0, ge=0, le=1_000, description="re-run the best trial on this many seeds"
    )
    prune: PruneSection | None = None

    @field_validator("space")
    @classmethod
    def _space(
        cls, value: str | dict[str, dict[str, list[Any]]]
    ) -> str | dict[str, dict[str, list[Any]]]:
        if isinstance(value, str):
            if value != "default":
                raise ValueError(
                    'space is "default" (each optimizer\'s own search_space) or a table of dotted '
                    'keys, e.g. { "optimizer.lr" = { log_uniform = [1e-4, 1e-1] } }'
                )
            return value
        if not value:
            raise ValueError("space needs at least one key")
        for key, entry in value.items():
            if len(key.split(".")) < 2 or not all(key.split(".")):
                raise ValueError(f'space key {key!r} is a dotted path, e.g. "optimizer.lr"')
            problem = space_problem(key, entry)
            if problem:
                raise ValueError(problem)
        return value


class RunGroup(Section):
    """Set by composition, never by the file: the configuration a seeded run repeats, and that
    configuration's own seed (which draws the data unless [data] reseed)."""

    name: str = Field(min_length=1)
    seed: int = Field(ge=0, lt=2**63)


class RunConfig(Section):
    """One fully resolved run: everything the trainer or solver needs, defaults filled in."""

    name: str = Field(min_length=1)
    experiment: ExperimentSection
    data: DataSection | None = None
    model: ModelSection | None = None
    loss: ComponentSpec = ComponentSpec(name="mse")
    optimizer: ComponentSpec | None = None
    scheduler: ComponentSpec | None = None
    train: TrainSection | None = None
    solver: SolverSpec | None = None
    report: ReportSection = ReportSection()
    tune: TuneSection | None = None
    distributed: DistributedSection | None = None  # read under torchrun / --nproc only
    group: RunGroup | None = None  # with [experiment] seeds or repeats, from `compose`

    @model_validator(mode="after")
    def _tables_for_task(self) -> RunConfig:
        train_tables = {
            "data": self.data,
            "model": self.model,
            "optimizer": self.optimizer,
            "train": self.train,
        }
        if self.experiment.task == "train":
            missing = [f"[{k}]" for k, v in train_tables.items() if v is None]
            if missing:
                raise ValueError(f"a train experiment needs {', '.join(missing)}")
            if self.solver is not None:
                raise ValueError("[solver] is only used when [experiment] task = 'solve'")
            assert self.train is not None and self.data is not None  # none is missing (above)
            if self.train.early_stopping and self.data.split.val <= 0:
                raise ValueError(
                    f"[train] early_stopping watches the validation "
                    f"{'loss' if self.train.early_stopping.metric == 'val_loss' else 'split'}: "
                    "add [data] split = { val = 0.1 } (or another share)"
                )
        else:
            if self.solver is None:
                raise ValueError("a solve experiment needs a [solver] table")
            unused = [f"[{k}]" for k, v in train_tables.items() if v is not None]
            if unused or self.scheduler is not None:
                unused += ["[scheduler]"] if self.scheduler is not None else []
                raise ValueError(f"{', '.join(unused)} not used when task = 'solve'")
        return self

    @model_validator(mode="after")
    def _tune_fits(self) -> RunConfig:
        if self.tune is None:
            return self
        if self.experiment.task != "train":
            raise ValueError("[tune] tunes training runs: it needs [experiment] task = 'train'")
        if self.group is not None:
            raise ValueError(
                "[tune] with [experiment] seeds or repeats: the trials share the configuration's "
                "seed, and [tune] final_seeds re-runs the best trial on seeds; drop seeds/repeats"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data for config.toml (and for comparing a resume against the saved config)."""
        out = _plain(self)
        out.pop("group", None)  # composition's, not the file's: `Experiment.to_dict` folds it
        return out


def _plain(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in type(model).model_fields:
        value = getattr(model, key)
        if value is None:
            continue
        if isinstance(value, (ComponentSpec, DataSection)):
            value = value.to_dict()
        elif isinstance(value, BaseModel):
            value = _plain(value)
        elif isinstance(value, (list, tuple)):
            value = [v.to_dict() if isinstance(v, ComponentSpec) else v for v in value]
        out[key] = value
    return out


#: Top-level tables that a file (or a [[runs]] entry) may hold, besides `runs` and `sweep`.
TABLES = [name for name in RunConfig.model_fields if name not in ("name", "group")]


#: (kind, key path) of every place a run can name a component.
COMPONENT_SLOTS: list[tuple[str, tuple[str, ...]]] = [
    ("activations", ("model", "activation")),
    ("activations", ("model", "output_activation")),
    ("initializers", ("model", "init")),
    ("losses", ("loss",)),
    ("optimizers", ("optimizer",)),
    ("schedulers", ("scheduler",)),
    ("solvers", ("solver",)),
    ("optimizers", ("solver", "optimizer")),
]

#: (kind, key path) of every list of components a run can name, e.g. `[train] metrics`.
COMPONENT_LISTS: list[tuple[str, tuple[str, ...]]] = [
    ("metrics", ("train", "metrics")),
]
