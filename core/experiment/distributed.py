"""Data-parallel training over processes started by torchrun: shard each batch, all-reduce the
hand-written gradients in buckets, keep the ranks in step.

Every rank holds the whole dataset, the same weights and the same optimizer state (replicated,
never sharded). For each global batch, rank r takes a contiguous share of its rows, computes the
mean loss and its gradient on them, and scales both by rows_r / rows; one SUM all-reduce per
bucket then gives every rank the mean gradient of the whole batch, the batch loss and whether any
rank was asked to stop. The reduced values are the same bits on every rank, so the optimizer step
and the epoch-end forward pass over the full data (done on every rank: no broadcast to wait for)
agree bitwise, and early stopping and divergence decide alike everywhere.

Rank 0 runs the normal runner and writes the run directory; the other ranks `follow`: rank 0
announces each run (its resolved config and the checkpoint it resumes from) over a control
group, and they train it alongside without writing or printing anything.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch

from nnrun.experiment.train import StopFlag

if TYPE_CHECKING:
    from nnrun.config.distributed import DistributedSection
    from nnrun.config.schema import RunConfig
    from nnrun.parameter import Parameter
    from nnrun.registry import Registry

#: Exit status of a rank that stopped because another one was lost (the launcher looks past it).
EXIT_PEER_LOST = 3
#: Set by `nnrun --nproc` for its ranks: the launcher reports a lost rank, rank 0 stays quiet.
LAUNCHER_ENV = "NNRUN_LAUNCHER"
#: How long the other ranks wait for rank 0 between runs (it writes plots and reports there).
CONTROL_TIMEOUT = timedelta(days=1)


class PeerLost(RuntimeError):
    """A collective failed: another rank died, hung past `timeout_s`, or left the group."""


@dataclass(frozen=True)
class World:
    """Where this process stands among torchrun's: its rank, the number of ranks, and those
    on this node (each takes the GPU `cuda:local_rank`)."""

    rank: int
    size: int
    local_rank: int
    local_size: int


def launched() -> World | None:
    """This process's place when torchrun started it with more than one rank, else None."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    return World(
        int(os.environ["RANK"]),
        size,
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("LOCAL_WORLD_SIZE", str(size))),
    )


def world_size(nproc: int) -> int:
    """The number of ranks `nproc` processes on this node belong to: torchrun's world when it
    started this process (several nodes), else `nproc`."""
    world = launched()
    return world.size if world is not None else nproc


class AgreedStop(StopFlag):
    """The trainer's stop flag under data parallelism: the value the ranks agreed on at the last
    all-reduce, so that every rank stops after the same step (a signal that reaches one rank
    between two steps is counted at the next)."""

    requested = False


class DataParallel:
    """One process's share of a data-parallel run: `shard` and `all_reduce` are the trainer's
    seam; `announce`, `follow` and `finish` keep the ranks on the same runs."""

    def __init__(self, world: World, bucket_mb: float, group: Any, control: Any):
        self.world = world
        self.bucket_bytes = max(1, int(bucket_mb * 2**20))
        self.group, self.control = group, control
        self.stop = AgreedStop()
        self.weight = 1.0  # this rank's share of the current batch's rows
        self._layout: tuple[int, list[tuple[int, int]]] | None = None  # (params, buckets)
        self.calls = 0  # all-reduce calls so far (the benchmark reports calls and bytes per step)
        self.bytes = 0

    @property
    def rank(self) -> int:
        return self.world.rank

    @classmethod
    def start(cls, world: World, settings: DistributedSection, device: str) -> DataParallel:
        """Join torchrun's process group (its env:// rendezvous) with the configured backend
        and timeout, plus a gloo control group with a long timeout for waits between runs."""
        import torch.distributed as dist

        backend = resolve_backend(settings.backend, device)
        if backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(backend, timeout=timedelta(seconds=settings.timeout_s))
        control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
        return cls(world, settings.bucket_mb, dist.group.WORLD, control)

    def close(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    def on_this_rank(self, run: RunConfig) -> RunConfig:
        """`run` with `device = "cuda"` made this rank's own GPU, cuda:LOCAL_RANK."""
        if run.experiment.device != "cuda":
            return run
        experiment = run.experiment.model_copy(update={"device": f"cuda:{self.world.local_rank}"})
        return run.model_copy(update={"experiment": experiment})

    # -- the trainer's seam ------------------------------------------------------------------

    def shard(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's contiguous share of a batch: rows split as evenly as they go (the first
        rows % size ranks take one more). Remembers its share of the rows for `all_reduce`."""
        rows, size, rank = x.shape[0], self.world.size, self.world.rank
        base, extra = divmod(rows, size)
        start = rank * base + min(rank, extra)
        count = base + (rank < extra)
        self.weight = count / rows if rows else 0.0
        return x[start : start + count], y[start : start + count]

    def all_reduce(self, params: Sequence[Parameter], loss: torch.Tensor) -> torch.Tensor:
        """Replace every gradient by the batch's mean gradient over all ranks and return the
        batch's loss, with one SUM all-reduce per bucket of at most `bucket_mb` (the loss and
        the stop flag ride in the last bucket). Each rank's share is weighted by its rows, so
        uneven shards still give the mean over the whole batch."""
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p.data) for p in params]
        buckets = self._buckets(params)
        flats, handles = [], []
        try:
            for index, (first, end) in enumerate(buckets):
                pieces = [g.reshape(-1) for g in grads[first:end]]
                last = index == len(buckets) - 1
                if last:
                    stop = 1.0 if StopFlag.requested or self.stop.requested else 0.0
                    pieces += [loss.reshape(1).to(grads[0].dtype), grads[0].new_full((1,), stop)]
                flat = torch.cat(pieces)
                scaled = flat[:-1] if last else flat
                if self.weight == 0:  # an empty shard: its mean loss is NaN, and counts nothing
                    scaled.zero_()
                elif self.weight != 1:
                    scaled.mul_(self.weight)
                flats.append(flat)
                handles.append(dist.all_reduce(flat, group=self.group, async_op=True))
            for handle in handles:
                handle.wait()
        except RuntimeError as error:  # DistBackendError and gloo's errors are RuntimeErrors
            raise PeerLost(lost_message(error)) from error
        self.calls += len(flats)
        self.bytes += sum(f.numel() * f.element_size() for f in flats)
        views = iter(v for flat, (a, b) in zip(flats, buckets) for v in _split(flat, grads[a:b]))
        for param, grad in zip(params, grads):
            param.grad = next(views).view_as(grad)
        if flats[-1][-1].item() > 0:
            self.stop.requested = StopFlag.requested = True  # every rank stops here
        return flats[-1][-2]

    def _buckets(self, params: Sequence[Parameter]) -> list[tuple[int, int]]:
        """Consecutive parameters grouped into buckets of at most `bucket_bytes` (a parameter
        larger than that is a bucket of its own), as (first, end) indices; computed once."""
        if self._layout is None or self._layout[0] != len(params):
            buckets, first, size = [], 0, 0
            for index, param in enumerate(params):
                nbytes = param.data.numel() * param.data.element_size()
                if index > first and size + nbytes > self.bucket_bytes:
                    buckets.append((first, index))
                    first, size = index, 0
                size += nbytes
            buckets.append((first, len(params)))
            self._layout = (len(params), buckets)
        return self._layout[1]

    # -- keeping the ranks on the same runs ---------------------------------------------------

    def announce(self, run: RunConfig, checkpoint: dict[str, Any] | None) -> None:
        """Rank 0: tell the other ranks which run to train and from which state, then wait
        until they are ready to take the first step."""
        self._broadcast((run, checkpoint))
        self._barrier()

    def follow(self, registry: Registry) -> None:
        """Ranks other than 0: train each run rank 0 announces, writing nothing, until it says
        the experiment is over."""
        from nnrun.experiment.execute import build_trainer, run_threads

        while (message := self._broadcast(None)) is not None:
            run, checkpoint = message
            torch.set_num_threads(run_threads(run))  # the same summation order as rank 0
            trainer, _ = build_trainer(self.on_this_rank(run), registry, self)
            if checkpoint is not None:
                trainer.load_state_dict(checkpoint)
            self._barrier()
            if trainer.state.status == "running":
                trainer.fit()

    def finish(self) -> None:
        """Rank 0, after the last run (finished or stopped at an agreed step): release the
        others."""
        self._broadcast(None)

    def _broadcast(self, message: Any) -> Any:
        import torch.distributed as dist

        box = [message]
        try:
            dist.broadcast_object_list(box, src=0, group=self.control)
        except RuntimeError as error:
            raise PeerLost(lost_message(error)) from error
        return box[0]

    def _barrier(self) -> None:
        import torch.distributed as dist

        try:
            dist.barrier(group=self.control)
        except RuntimeError as error:
            raise PeerLost(lost_message(error)) from error


def _split(flat: torch.Tensor, grads: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return flat[: sum(g.numel() for g in grads)].split([g.numel() for g in grads])


def resolve_backend(backend: str, device: str) -> str:
    """`auto`: nccl for CUDA, gloo for the CPU."""
    if backend != "auto":
        return backend
    return "nccl" if device.startswith("cuda") else "gloo"


def lost_message(error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"lost contact with another rank during data-parallel training ({first}). "
        "The run directory keeps what was checkpointed: continue with nnrun resume DIR "
        "(any --nproc)"
    )


#: The data-parallel context of this process while an experiment runs under torchrun (rank 0).
_active: DataParallel | None = None


def active() -> DataParallel | None:
    """The `DataParallel` this process trains with, None outside torchrun."""
    return _active


@contextmanager
def activated(parallel: DataParallel) -> Iterator[DataParallel]:
    """Make `parallel` the one the runs of this process train with (the runner stays unaware)."""
    global _active
    _active = parallel
    try:
        yield parallel
    finally:
        _active = None


def launch(nproc: int, args: Sequence[str]) -> int:
    """`nnrun ... --nproc N`: start N ranks of `python -m nnrun ARGS` with torchrun's elastic
    agent on this node (a free port, no restarts) and return the exit status. A rank that dies
    is reported here in one line; an error rank 0 reported itself is not repeated."""
    import sys
    import uuid

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ[LAUNCHER_ENV] = "1"
    cores = os.cpu_count() or 1
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "nnrun", *args)
    except ChildFailedError as error:
        code, message = failure_report(error.failures)
        if message:
            print(f"Error: {message}", file=sys.stderr)
        return code
    return 0


def failure_report(failures: dict[int, Any]) -> tuple[int, str | None]:
    """The exit status and the one line to print for the ranks that failed: nothing more when
    rank 0 ended on its own error (bad input 2, a failed run 1, interrupted 130), which it
    printed; else the rank that died first, and how."""
    ordered = sorted(failures.items(), key=lambda item: (item[1].timestamp, item[0]))
    # the agent records the SIGTERM it stops the others with: a consequence, like EXIT_PEER_LOST
    consequences = (EXIT_PEER_LOST, -signal.SIGTERM)
    causes = [(rank, f) for rank, f in ordered if f.exitcode not in consequences]
    causes = causes or [(rank, f) for rank, f in ordered if f.exitcode != EXIT_PEER_LOST]
    rank0 = failures.get(0)
    if rank0 is not None and rank0.exitcode > 0 and rank0.exitcode != EXIT_PEER_LOST:
        return rank0.exitcode, None
    if not causes:
        return 1, "the ranks lost contact with one another (a network or timeout problem)"
    rank, failure = causes[0]
    if failure.exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-failure.exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-failure.exitcode}"
    else:
        how = f"exited with status {failure.exitcode}"
    return 1, (
        f"rank {rank} (pid {failure.pid}) {how}; the other ranks were stopped. The run directory "
        "keeps what was checkpointed: continue with nnrun resume DIR (any --nproc)"
    )
