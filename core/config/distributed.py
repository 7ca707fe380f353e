"""`[distributed]`: how data-parallel ranks talk (under torchrun or `--nproc`), and what such a
run cannot do, checked up front with the rest of the file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from nnrun.config.schema import RunConfig
    from nnrun.config.validate import Located


class DistributedSection(BaseModel):
    """Read only when the experiment runs on several processes; the same in every run."""

    # schema.Section's settings (this module is imported by schema, so it cannot import it back)
    model_config = ConfigDict(extra="forbid", validate_default=True, strict=True)
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="auto: nccl for device = 'cuda', gloo for the CPU"
    )
    bucket_mb: float = Field(
        25.0, gt=0, allow_inf_nan=False, description="MiB of gradients per all-reduce (as DDP)"
    )
    timeout_s: float = Field(
        60.0, gt=0, allow_inf_nan=False, description="how long a rank waits for the others"
    )


def settings(run: RunConfig) -> DistributedSection:
    """The run's `[distributed]`, its defaults when the file has none."""
    return run.distributed if run.distributed is not None else DistributedSection()


def distributed_problems(text: str, runs: list[RunConfig], nproc: int) -> list[tuple[Located, str]]:
    """What `nproc` processes (on this node) cannot run, each with its line: a solve, `[tune]`,
    a batch smaller than the world, a device the backend cannot serve, and runs that disagree on
    `[distributed]` or the device (the process group is set up once). Each with its run's name."""
    import torch

    from nnrun.config.validate import line_for
    from nnrun.experiment.distributed import resolve_backend, world_size

    world = world_size(nproc)
    problems: list[tuple[Located, str]] = []

    def add(run: RunConfig, loc: tuple[str, ...], message: str) -> None:
        problems.append(((line_for(text, loc, run.name), message), run.name))

    if not torch.distributed.is_available():
        message = "this torch has no torch.distributed: run without --nproc or torchrun"
        return [(("", message), run.name) for run in runs]
    first = runs[0]
    for run in runs:
        device = run.experiment.device
        backend = resolve_backend(settings(run).backend, device)
        if run.experiment.task == "solve":
            add(
                run,
                ("experiment", "task"),
                "task = 'solve' has no batches to split over "
                f"{world} processes: run it without --nproc or torchrun",
            )
            continue
        if run.tune is not None:
            add(
                run,
                ("tune",),
                "[tune] runs its trials in one process (the pruner decides "
                "alone): run tuning without --nproc or torchrun",
            )
        assert run.train is not None
        if run.train.batch_size < world:
            add(
                run,
                ("train", "batch_size"),
                f"[train] batch_size = {run.train.batch_size} is "
                f"smaller than the {world} processes it is split over: every process needs rows "
                f"of every batch; use batch_size >= {world} or fewer processes",
            )
        if device.startswith("mps"):
            add(
                run,
                ("experiment", "device"),
                "device = 'mps' has no distributed backend: use 'cpu' (gloo) or 'cuda' (nccl)",
            )
        elif device.startswith("cuda") and backend == "gloo":
            add(
                run,
                ("distributed", "backend"),
                "backend = 'gloo' with device = 'cuda': nnrun "
                "all-reduces CUDA gradients with nccl; use backend = 'auto' or 'nccl'",
            )
        elif device == "cpu" and backend == "nccl":
            add(
                run,
                ("distributed", "backend"),
                "backend = 'nccl' needs device = 'cuda'; the CPU uses 'gloo' (or 'auto')",
            )
        elif backend == "nccl" and not torch.distributed.is_nccl_available():
            add(run, ("distributed", "backend"), "backend = 'nccl' is not in this torch build")
        if ":" in device and nproc > 1:
            add(
                run,
                ("experiment", "device"),
                f"device = {device!r} names one GPU, but each "
                "process takes its own (cuda:LOCAL_RANK): write device = 'cuda'",
            )
        elif device == "cuda" and torch.cuda.is_available() and torch.cuda.device_count() < nproc:
            add(
                run,
                ("experiment", "device"),
                f"{nproc} processes on this node need "
                f"{nproc} GPUs; it has {torch.cuda.device_count()}",
            )
        if run is not first and (
            settings(run) != settings(first) or run.experiment.device != first.experiment.device
        ):
            add(
                run,
                ("distributed",),
                f"run {run.name!r} differs from {first.name!r} in "
                "[distributed] or [experiment] device: the processes share one setup for the "
                "whole experiment; give every run the same",
            )
    return problems
