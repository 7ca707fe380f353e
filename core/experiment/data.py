"""Data drawn from target functions, seeded (optionally stratified) splits, standardization, the
`Data` a run trains on, and the trainer's mini-batches.

Every random draw comes from a CPU `torch.Generator` in float64, and only then is cast and moved,
so one seed gives bit-identical data whatever dtype and device the experiment trains on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nnrun.dataset import Task

Tensor = torch.Tensor


def function_dataset(
    targets: Sequence[Callable[[Tensor], Tensor]],
    n: int,
    ranges: Sequence[tuple[float, float]],
    noise: float,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """x (n, inputs) uniform in the box of `ranges` (one (low, high) per input) and
    y (n, outputs) = target_j(x) + noise·ε with ε ~ N(0, 1) drawn per point and output.

    Each target takes x (n, inputs) in float64 and gives one column (n,). x is rounded to `dtype`
    before the targets see it, so noise-free data lies on them up to one rounding of y. The
    generator always advances by the same draws, noise or not. One input and one output draw
    exactly what the one-dimensional generator always drew.
    """
    if n < 1:
        raise ValueError(f"Invalid number of samples: {n}")
    if not targets:
        raise ValueError("give at least one target function")
    for low, high in ranges:
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"Invalid range: [{low}, {high})")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"Invalid noise: {noise}")
    _check_cpu(generator)
    x = torch.rand(n, len(ranges), generator=generator, dtype=torch.float64)
    eps = torch.randn(n, len(targets), generator=generator, dtype=torch.float64)
    for j, (low, high) in enumerate(ranges):
        column = x[:, j] * (high - low) + low
        # Rounding to dtype can land on `high` itself; step back to the largest value below it.
        below = torch.nextafter(torch.tensor(high, dtype=dtype), torch.tensor(low, dtype=dtype))
        x[:, j] = column.to(dtype).clamp_(max=below).to(torch.float64)
    columns = [target(x) for target in targets]
    for column in columns:
        if column.shape != (n,):
            raise ValueError(f"a target function gave shape {tuple(column.shape)} for {(n,)}")
    y = torch.stack(columns, dim=1) + noise * eps
    return x.to(dtype), y.to(dtype)


def split_indices(
    n: int,
    shares: Mapping[str, float],
    generator: torch.Generator,
    labels: Tensor | None = None,
) -> dict[str, Tensor]:
    """Indices of each part of n samples by one seeded permutation: {"train": ..., **shares}.

    Each named part (e.g. {"val": 0.2, "test": 0.1}) takes round(share·n) samples, at least one when
    its share is positive, from the front of the permutation in the order given, and always leaves
    at least one for "train", which gets the rest. Adding a part after the others leaves theirs as
    they were. With class `labels` (N,) the split is stratified: each part takes round(share·n_c)
    of each class c (so each class's share is within half a sample of the requested one), never
    the last sample of a class, and the parts keep the permutation's order.
    """
    if n < 1:
        raise ValueError("cannot split an empty dataset")
    if "train" in shares:
        raise ValueError('"train" gets what the other shares leave; do not give it a share')
    for name, share in shares.items():
        if not (0 <= share < 1):
            raise ValueError(f"Invalid {name} share: {share}")
    if sum(shares.values()) >= 1:
        raise ValueError(f"the shares {dict(shares)} leave nothing for training")
    _check_cpu(generator)
    order = torch.randperm(n, generator=generator)
    if labels is None:
        parts, start = {}, 0
        for name, share in shares.items():
            size = min(_share_of(share, n, at_least_one=True), n - 1 - start)
            if share > 0 and size < 1:
                raise ValueError(
                    f"{n} samples are too few to give {name} one and keep one for training"
                )
            parts[name] = order[start : start + size]
            start += size
        return {"train": order[start:], **parts}
    return _stratified(order, shares, labels.cpu())


def _share_of(share: float, n: int, at_least_one: bool) -> int:
    size = math.floor(share * n + 0.5)
    return max(size, 1) if at_least_one and share > 0 else size


def _stratified(order: Tensor, shares: Mapping[str, float], labels: Tensor) -> dict[str, Tensor]:
    """The parts of `_split_indices` drawn class by class from the one permutation `order`."""
    # a stable sort by label groups each class, each group still in the permutation's order
    by_class = order[torch.sort(labels[order], stable=True).indices]
    counts = torch.bincount(labels, minlength=1).tolist()
    chosen: dict[str, list[Tensor]] = {name: [] for name in shares}
    rest: list[Tensor] = []
    start = 0
    for count in counts:
        members, taken = by_class[start : start + count], 0
        for name, share in shares.items():
            size = min(_share_of(share, count, at_least_one=False), count - 1 - taken)
            size = max(size, 0)
            chosen[name].append(members[taken : taken + size])
            taken += size
        rest.append(members[taken:])
        start += count
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    parts: dict[str, Tensor] = {}
    for name, pieces in {"train": rest, **chosen}.items():
        index = torch.cat(pieces)
        if len(index) == 0 and shares.get(name, 1) > 0:
            raise ValueError(
                f"{len(order)} samples in {len(counts)} classes are too few to give {name} one "
                f"sample of a class and keep one of it for training"
            )
        parts[name] = index[torch.argsort(rank[index])]
    return parts


def split(
    x: Tensor,
    y: Tensor,
    shares: Mapping[str, float],
    generator: torch.Generator,
    stratify: bool = False,
) -> dict[str, tuple[Tensor, Tensor]]:
    """(x, y) split along the first dimension by `split_indices` (stratified by the class
    indices y when `stratify`), each part on the data's device."""
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x and y have different numbers of samples: {n} and {y.shape[0]}")
    parts = split_indices(n, shares, generator, y if stratify else None)
    return {name: (x[i.to(x.device)], y[i.to(y.device)]) for name, i in parts.items()}


@dataclass(frozen=True)
class Standardization:
    """Per-input mean and standard deviation of the training inputs: `apply(x)` is
    (x − mean) / std. Computed on the training split only, so that no statistic of the
    validation or test data leaks into training; saved with the model for prediction."""

    mean: Tensor  # (inputs,) float64
    std: Tensor  # (inputs,) float64; 1 for a constant input, which then only loses its mean

    @classmethod
    def fit(cls, x: Tensor) -> Standardization:
        """The population statistics (divide by N, as sklearn's StandardScaler) of x (N, inputs)."""
        values = x.detach().to(device="cpu", dtype=torch.float64)
        mean = values.mean(dim=0)
        std = values.std(dim=0, correction=0)
        return cls(mean, torch.where(std > 0, std, torch.ones_like(std)))

    def apply(self, x: Tensor) -> Tensor:
        if x.shape[-1] != len(self.mean):
            raise ValueError(
                f"standardization of {len(self.mean)} inputs given x of shape {tuple(x.shape)}"
            )
        mean, std = (t.to(dtype=x.dtype, device=x.device) for t in (self.mean, self.std))
        return (x - mean) / std

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Sequence[float]]) -> Standardization:
        mean, std = (torch.tensor(data[k], dtype=torch.float64) for k in ("mean", "std"))
        if mean.dim() != 1 or mean.shape != std.shape or not bool((std > 0).all()):
            raise ValueError("a standardization needs equally long mean and positive std lists")
        return cls(mean, std)


@dataclass(frozen=True)
class Data:
    """A run's data, split, scaled and on the run's device: what training and prediction use."""

    train: tuple[Tensor, Tensor]
    val: tuple[Tensor, Tensor] | None
    test: tuple[Tensor, Tensor] | None = None
    task: Task = "regression"
    inputs: tuple[str, ...] = ("x",)
    targets: tuple[str, ...] = ("y",)
    classes: tuple[str, ...] = ()
    standardization: Standardization | None = None
    kind: str = "function"
    notes: tuple[str, ...] = ()  # what loading reported, e.g. bad rows skipped

    def metadata(self) -> dict[str, Any]:
        """Plain JSON: what the data is and how it was split (for the run directory)."""
        sizes = {
            name: (len(part[0]) if part is not None else 0)
            for name, part in (("train", self.train), ("val", self.val), ("test", self.test))
        }
        return {
            "kind": self.kind,
            "task": self.task,
            "samples": sizes,
            "inputs": list(self.inputs),
            "targets": list(self.targets),
            "classes": list(self.classes),
            "standardization": (
                self.standardization.to_dict() if self.standardization is not None else None
            ),
            "notes": list(self.notes),
        }


#: Batches made per `Tensor.split` call: a bounded number of views alive at once on a big dataset.
SPLIT_CHUNK = 1024


def minibatches(
    x: Tensor, y: Tensor, batch_size: int, shuffle: bool, generator: torch.Generator | None
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of (x_batch, y_batch), the last batch possibly smaller; shuffled with one
    permutation drawn from `generator`, so the order is reproducible from its seed.

    The data is permuted once per epoch and every batch is a view of it, made by `Tensor.split`
    over chunks of `SPLIT_CHUNK` batches: no allocation of data and one C++ call per chunk instead
    of two Python slices per batch, which matters at batch size 1 (benchmarks/profile_step.py).
    """
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x and y have different numbers of samples: {n} and {y.shape[0]}")
    order = _epoch_order(n, batch_size, shuffle, generator)
    if order is not None:
        order = order.to(x.device)
        x, y = x[order], y[order]
    rows = SPLIT_CHUNK * batch_size
    for start in range(0, n, rows):
        yield from zip(
            x[start : start + rows].split(batch_size), y[start : start + rows].split(batch_size)
        )


def _epoch_order(
    n: int, batch_size: int, shuffle: bool, generator: torch.Generator | None
) -> Tensor | None:
    if n < 0:
        raise ValueError(f"Invalid number of samples: {n}")
    if batch_size < 1:
        raise ValueError(f"Invalid batch size: {batch_size}")
    if not shuffle:
        return None
    if generator is None:
        raise ValueError("shuffling needs a torch.Generator, so that the order is reproducible")
    _check_cpu(generator)
    return torch.randperm(n, generator=generator)


def _check_cpu(generator: torch.Generator) -> None:
    if generator.device.type != "cpu":
        raise ValueError(
            "data is drawn from a CPU generator, for the same data on every device; "
            f"got one on {generator.device}"
        )
