"""The base class of dataset plugins and what a dataset gives nnrun.

A dataset is built from the `[data]` table like any component: `kind` names the plugin and its
other keys are the constructor's hyperparameters. The keys every dataset shares (`split`,
`standardize`) belong to nnrun, which splits, scales and checks whatever `load` returns, so a
plugin only reads or draws its samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import torch

Task = Literal["regression", "classification"]


@dataclass(frozen=True)
class DataContext:
    """What a dataset may use while loading.

    Every random draw comes from `generator` (a seeded CPU generator), so one seed gives the same
    data on every device; floating-point samples are returned in `dtype` on the CPU, and nnrun
    moves them. Paths need no folder here: nnrun resolves the hyperparameters a dataset names in
    `Dataset.paths` against the experiment file's folder before the dataset is built.
    """

    generator: torch.Generator
    dtype: torch.dtype = torch.float32


@dataclass(frozen=True)
class LoadedData:
    """Samples and what they mean: `x` is (N, inputs) floats; `y` is (N, outputs) floats for
    regression, or (N,) int64 class indices into `classes` for classification."""

    x: torch.Tensor
    y: torch.Tensor
    inputs: tuple[str, ...]  # a name per column of x
    targets: tuple[str, ...]  # a name per column of y (one for classification)
    task: Task = "regression"
    classes: tuple[str, ...] = ()  # class names, in index order (classification only)
    notes: tuple[str, ...] = ()  # what the user should know about the loading ("skipped 3 rows")


class Dataset:
    """Loads (or draws) one dataset; built as `Cls(**hyperparameters)` from `[data]`."""

    #: Hyperparameters that are file paths: nnrun resolves each against the experiment file's
    #: folder (so the resolved config.toml names the same file wherever it is read from) and
    #: refuses anything but a regular file before the dataset is built.
    paths: ClassVar[tuple[str, ...]] = ()

    def load(self, context: DataContext) -> LoadedData:
        raise NotImplementedError

    def size_hint(self) -> tuple[int, int] | None:
        """(samples, values per sample in x and y together) when known without loading, so that
        nnrun can refuse a dataset too large for memory before drawing it; None if unknown."""
        return None
