"""The base class of dataset plugins and what a dataset gives nnrun.

A dataset is built from the `[data]` table like any component: `kind` names the plugin and its
other keys are the constructor's hyperparameters. The keys every dataset shares (`split`,
`standardize`) belong to nnrun, which splits, scales and checks whatever `load` returns, so a
plugin only reads or draws its samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

Task = Literal["regression", "classification"]


@dataclass(frozen=True)
class DataContext:
    """What a dataset may use while loading.

    `base_dir` is the experiment file's folder, against which relative paths resolve; every random
    draw comes from `generator` (a seeded CPU generator), so one seed gives the same data on every
    device; tensors are returned on the CPU and nnrun casts and moves them.
    """

    base_dir: Path
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


class Dataset:
    """Loads (or draws) one dataset; built as `Cls(**hyperparameters)` from `[data]`."""

    def load(self, context: DataContext) -> LoadedData:
        raise NotImplementedError
