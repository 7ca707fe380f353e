"""The training loop: hand-written forward and backward, any optimizer, resumable mid-epoch.

Everything the loop depends on (weights, optimizer and scheduler state, the shuffling generator,
where in the epoch it stopped, the running loss, the best weights so far) is in `state_dict()`, so
a run interrupted and resumed produces bit-identical numbers on CPU to one that never stopped.

Each epoch records two losses: `train_loss`, the loss of the weights at the epoch's end over the
whole training set (what the results table's final train loss and loss.png show), and
`mean_batch_loss`, the mean of the batch losses during the epoch, taken while the weights moved.
The metrics (`val_accuracy`, ...) are computed from the same forward pass as the validation loss
(`train_accuracy` from the training loss's when there is no validation split).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import torch

from nnrun.components import Loss
from nnrun.experiment.data import minibatches
from nnrun.metric import Metric
from nnrun.model import MLP
from nnrun.optimizer import Optimizer
from nnrun.scheduler import Scheduler

if TYPE_CHECKING:
    from nnrun.experiment.distributed import DataParallel


class StopFlag:
    """Set by a signal handler; the loop checks it after every step."""

    requested = False


@dataclass
class Progress:
    """What a progress display needs, handed out every few steps."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float


@dataclass(frozen=True)
class TrainSettings:
    """What the loop needs from `[train]`, as plain values (execute.py builds it from the config)."""

    epochs: int
    batch_size: int = 32
    probes: tuple[float, ...] = ()
    shuffle: bool = False
    early_stopping: int | None = None  # patience in epochs
    watch: str = "val_loss"  # what early stopping watches: val_loss or a metric's name
    mode: Literal["min", "max"] | None = None  # None: the watched metric's own (val_loss: min)
    min_delta: float = 0.0  # an improvement is by more than this
    restore_best: bool = True  # with early_stopping: end on the best validation epoch's weights
    grad_clip: float | None = None
    checkpoint_every: int | None = None


@dataclass
class TrainState:
    """Position in training plus the early-stopping bookkeeping."""

    epoch: int = 0  # epochs completed
    step: int = 0  # batches completed in the current epoch
    loss_sum: float = 0.0  # sum of this epoch's batch losses so far
    best_val: float = math.inf  # the best value of the watched figure (-inf first for "max")
    best_epoch: int = 0  # the epoch of best_val (0: none yet)
    bad_epochs: int = 0
    epoch_seconds: float = 0.0
    status: str = "running"  # running | ok | diverged | interrupted | pruned (a tuning trial)
    stopped_early: bool = False
    restored_best: bool = False  # the model holds best_epoch's weights, not the last epoch's
    order_generator: list[int] = field(
        default_factory=list
    )  # shuffle generator state at epoch start


class Trainer:
    def __init__(
        self,
        model: MLP,
        loss: Loss,
        optimizer: Optimizer,
        scheduler: Scheduler | None,
        settings: TrainSettings,
        train_data: tuple[torch.Tensor, torch.Tensor],
        val_data: tuple[torch.Tensor, torch.Tensor] | None,
        generator: torch.Generator,
        stop: type[StopFlag] | StopFlag = StopFlag,
        metrics: Mapping[str, Metric] | None = None,
        parallel: DataParallel | None = None,
    ):
        """`parallel` (torchrun): each step trains on this rank's shard of the batch and
        all-reduces the gradients before clipping and the optimizer step."""
        self.parallel = parallel
        self.model, self.loss, self.optimizer, self.scheduler = model, loss, optimizer, scheduler
        self.settings = settings
        self.x, self.y = train_data
        self.val = val_data if val_data is not None and len(val_data[0]) else None
        self.metrics = dict(metrics or {})
        self.metrics_split = "val" if self.val is not None else "train"
        watch = settings.watch
        if watch != "val_loss" and watch not in self.metrics:
            raise ValueError(f"early stopping watches {watch!r}, which is not among the metrics")
        self.mode = settings.mode or (self.metrics[watch].mode if watch != "val_loss" else "min")
        self.generator = generator
        self.stop = stop
        self.probes = torch.tensor(settings.probes, dtype=self.x.dtype, device=self.x.device)[
            :, None
        ]
        self.state = TrainState(best_val=math.inf if self.mode == "min" else -math.inf)
        self.best_weights: list[torch.Tensor] | None = None  # the model at state.best_epoch
        self.steps_per_epoch = math.ceil(len(self.x) / settings.batch_size)

    def fit(
        self,
        on_epoch: Callable[[dict[str, Any]], None] = lambda record: None,
        on_progress: Callable[[Progress], None] | None = None,
        on_checkpoint: Callable[[], None] | None = None,
    ) -> str:
        """Train until the last epoch, divergence, early stop or a stop request; return the status.

        `on_checkpoint` is called every `checkpoint_every` epochs before the last; the caller
        writes the final (or interrupted) state once training returns."""
        settings, state = self.settings, self.state
        model, loss, optimizer = self.model, self.loss, self.optimizer
        progress_every = max(1, self.steps_per_epoch // 50)
        while state.epoch < settings.epochs:
            started = time.perf_counter()
            loss_sum = torch.zeros((), dtype=torch.float64, device=self.x.device)
            loss_sum.add_(state.loss_sum)
            for xb, yb in self._epoch_batches():
                pred = model.forward(xb)
                batch_loss, grad = loss.forward_backward(pred, yb)
                model.backward(grad)
                if self.parallel is not None:  # the whole batch's mean gradient and loss
                    batch_loss = self.parallel.all_reduce(optimizer.params, batch_loss)
                loss_sum += batch_loss
                if settings.grad_clip is not None:
                    clip_grad_norm(optimizer.params, settings.grad_clip)
                optimizer.step()
                state.step += 1
                if on_progress is not None and state.step % progress_every == 0:
                    on_progress(
                        Progress(
                            state.epoch + 1,
                            settings.epochs,
                            state.step,
                            self.steps_per_epoch,
                            batch_loss.item(),
                        )
                    )
                if self.stop.requested and state.step < self.steps_per_epoch:
                    state.loss_sum = loss_sum.item()
                    state.epoch_seconds += time.perf_counter() - started
                    state.status = "interrupted"
                    return state.status
            state.epoch_seconds += time.perf_counter() - started
            record = self._end_epoch(loss_sum.item() / self.steps_per_epoch)
            on_epoch(record)
            if state.status != "running":
                break
            last = state.epoch == settings.epochs  # the caller checkpoints the end itself
            if (
                on_checkpoint is not None
                and not last
                and (settings.checkpoint_every and state.epoch % settings.checkpoint_every == 0)
            ):
                on_checkpoint()
            if self.stop.requested:
                state.status = "interrupted"
                return state.status
        if state.status == "running":
            state.status = "ok"
        best = self.best_weights
        if state.status == "ok" and settings.restore_best and best is not None:
            self._restore(best)
        return state.status

    def _restore(self, best: list[torch.Tensor]) -> None:
        """End on the best validation epoch's weights (early stopping's `restore_best`)."""
        if self.state.best_epoch != self.state.epoch:
            self.model.load_state_dict(best)
            self.state.restored_best = True

    def _epoch_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's batches from where it stands. The shuffling generator's state at the
        epoch's start is kept, so a resume mid-epoch draws the same order and skips what it did."""
        if self.settings.shuffle:
            if self.state.step == 0:
                self.state.order_generator = self.generator.get_state().tolist()
            else:
                self.generator.set_state(
                    torch.tensor(self.state.order_generator, dtype=torch.uint8)
                )
        epoch = minibatches(
            self.x, self.y, self.settings.batch_size, self.settings.shuffle, self.generator
        )
        batches = itertools.islice(epoch, self.state.step, None)
        return batches if self.parallel is None else itertools.starmap(self.parallel.shard, batches)

    def _end_epoch(self, mean_batch_loss: float) -> dict[str, Any]:
        state, settings = self.state, self.settings
        state.epoch += 1
        train_pred = self.model.forward(self.x)  # one forward pass over the training set
        train_loss = self.loss.forward(train_pred, self.y).item()
        record: dict[str, Any] = {
            "epoch": state.epoch,
            "train_loss": train_loss,
            "mean_batch_loss": mean_batch_loss,
        }
        val_loss = None
        scored = (train_pred, self.y)
        if self.val is not None:
            scored = (self.model.forward(self.val[0]), self.val[1])
            val_loss = self.loss.forward(*scored).item()
            record["val_loss"] = val_loss
        for name, value in self.score(*scored).items():
            record[f"{self.metrics_split}_{name}"] = value
        record["lr"] = self.optimizer.hyperparameters.get("lr")
        if len(self.probes):
            predictions = self.model.forward(self.probes)[:, 0].tolist()
            record["probes"] = {probe_key(p): v for p, v in zip(settings.probes, predictions)}
        record["seconds"] = state.epoch_seconds
        state.step, state.loss_sum, state.epoch_seconds = 0, 0.0, 0.0
        losses = (train_loss, mean_batch_loss, val_loss if val_loss is not None else 0.0)
        if not all(map(math.isfinite, losses)):
            state.status = "diverged"
            return record
        if self.scheduler is not None:
            self.scheduler.step(val_loss if val_loss is not None else train_loss)
        if settings.early_stopping and val_loss is not None:
            watched = val_loss if settings.watch == "val_loss" else record[f"val_{settings.watch}"]
            if self._improves(watched):
                state.best_val, state.best_epoch, state.bad_epochs = watched, state.epoch, 0
                if settings.restore_best:
                    self.best_weights = self.model.state_dict()
            else:
                state.bad_epochs += 1
                if state.bad_epochs >= settings.early_stopping:
                    state.status, state.stopped_early = "ok", True
        return record

    def _improves(self, value: float) -> bool:
        """Whether the watched figure beats the best so far by more than `min_delta` (NaN never)."""
        best, delta = self.state.best_val, self.settings.min_delta
        return value < best - delta if self.mode == "min" else value > best + delta

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """The loss over a whole dataset, in one forward pass."""
        return self.loss.forward(self.model.forward(x), y).item()

    def score(self, pred: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Every metric of the predictions `pred` for targets `y`, by name."""
        return {name: metric.compute(pred, y) for name, metric in self.metrics.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "generator": self.generator.get_state(),
            "trainer": vars(self.state).copy(),
            "best_model": self.best_weights,
        }

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scheduler is not None and checkpoint["scheduler"] is not None:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.generator.set_state(checkpoint["generator"])
        self.state = TrainState(**checkpoint["trainer"])
        best = checkpoint.get("best_model")
        params = self.model.parameters()
        # on the model's device, whatever map_location the checkpoint was loaded with
        self.best_weights = (
            None
            if best is None
            else [w.to(p.data.device) for w, p in zip(best, params, strict=True)]
        )
        if self.state.status == "interrupted":
            self.state.status = "running"


def probe_key(probe: float) -> str:
    """The key of a probe in the metrics: the shortest text that reads back as the same float, so
    0.1 and 0.1000001 stay apart (`f"{p:g}"` printed both as 0.1)."""
    return repr(float(probe))


def clip_grad_norm(params: list, max_norm: float) -> torch.Tensor:
    """Scale all gradients so their global L2 norm is at most `max_norm` (torch's clip_grad_norm_).
    Returns the norm before clipping as a 0-d tensor on the gradients' device, like torch's: the
    loop calls it every step, and reading it back would wait for the GPU each time."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    coefficient = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for grad in grads:
        grad.mul_(coefficient)
    return total
