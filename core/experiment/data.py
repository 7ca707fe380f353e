"""Datasets drawn from a target function, their seeded splits, and the trainer's mini-batches.

Every random draw comes from a CPU `torch.Generator` in float64, and only then is cast and moved,
so one seed gives bit-identical data whatever dtype and device the experiment trains on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping

import torch

Tensor = torch.Tensor


def function_dataset(
    fn: Callable[[Tensor], Tensor],
    n: int,
    low: float,
    high: float,
    noise: float,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """x uniform in [low, high) and y = fn(x) + noise·ε with ε ~ N(0, 1) drawn per point, both (n, 1).

    x is rounded to `dtype` before fn sees it (in float64), so noise-free data lies on the curve
    up to one rounding of y. The generator always advances by the same draws, noise or not.
    """
    if n < 1:
        raise ValueError(f"Invalid number of samples: {n}")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"Invalid range: [{low}, {high})")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"Invalid noise: {noise}")
    _check_cpu(generator)
    x = torch.rand(n, 1, generator=generator, dtype=torch.float64) * (high - low) + low
    eps = torch.randn(n, 1, generator=generator, dtype=torch.float64)
    # Rounding to dtype can land on `high` itself; step back to the largest value below it.
    below_high = torch.nextafter(torch.tensor(high, dtype=dtype), torch.tensor(low, dtype=dtype))
    x = x.to(dtype).clamp_(max=below_high).to(torch.float64)
    y = fn(x)
    if y.shape != x.shape:
        raise ValueError(f"the target function gave shape {tuple(y.shape)} for {tuple(x.shape)}")
    y = y + noise * eps
    return x.to(dtype=dtype, device=device), y.to(dtype=dtype, device=device)


def split(
    x: Tensor, y: Tensor, shares: Mapping[str, float], generator: torch.Generator
) -> dict[str, tuple[Tensor, Tensor]]:
    """Split (x, y) along the first dimension by one seeded permutation: {"train": ..., **shares}.

    Each named part (e.g. {"val": 0.2, "test": 0.1}) takes round(share·n) samples, at least one when
    its share is positive, from the front of the permutation in the order given, and always leaves
    at least one for "train", which gets the rest. Adding a part after the others leaves theirs as
    they were.
    """
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x and y have different numbers of samples: {n} and {y.shape[0]}")
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
    order = torch.randperm(n, generator=generator).to(x.device)
    parts, start = {}, 0
    for name, share in shares.items():
        size = min(max(math.floor(share * n + 0.5), 1 if share > 0 else 0), n - 1 - start)
        if share > 0 and size < 1:
            raise ValueError(
                f"{n} samples are too few to give {name} one and keep one for training"
            )
        parts[name] = order[start : start + size]
        start += size
    parts = {"train": order[start:], **parts}
    return {name: (x[index], y[index]) for name, index in parts.items()}


def split_dataset(
    x: Tensor, y: Tensor, val: float, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(x_train, y_train, x_val, y_val); `val` = 0 gives an empty validation set."""
    parts = split(x, y, {"val": val}, generator)
    return (*parts["train"], *parts["val"])


def minibatches(
    x: Tensor, y: Tensor, batch_size: int, shuffle: bool, generator: torch.Generator | None
) -> Iterator[tuple[Tensor, Tensor]]:
    """One epoch of (x_batch, y_batch), the last batch possibly smaller; shuffled with one
    permutation drawn from `generator`, so the order is reproducible from its seed.

    The data is permuted once per epoch and every batch is a view of it, so a batch costs two
    slices and no allocation of data, which matters at batch size 1.
    """
    n = x.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"x and y have different numbers of samples: {n} and {y.shape[0]}")
    order = _epoch_order(n, batch_size, shuffle, generator)
    if order is not None:
        order = order.to(x.device)
        x, y = x[order], y[order]
    for s in _slices(n, batch_size):
        yield x[s], y[s]


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


def _slices(n: int, batch_size: int) -> Iterator[slice]:
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _check_cpu(generator: torch.Generator) -> None:
    if generator.device.type != "cpu":
        raise ValueError(
            "data is drawn from a CPU generator, for the same data on every device; "
            f"got one on {generator.device}"
        )
