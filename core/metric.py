"""The base class of metric plugins: a figure computed from a model's outputs and the targets.

`[train] metrics` names them; nnrun computes each one every epoch on the validation split and once
at the end on the test split, and early stopping may watch one.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from nnrun.dataset import Task


class Metric:
    """`compute(pred, target)`: `pred` is the network's output (N, outputs), logits for
    classification; `target` is what the dataset gave (class indices (N,) or floats (N, outputs)).
    """

    #: Whether a larger value is better ("max", like accuracy) or a smaller one ("min", like mae).
    mode: ClassVar[Literal["min", "max"]] = "max"
    #: The tasks the metric makes sense for; naming it for another task is a configuration error.
    tasks: ClassVar[tuple[Task, ...]] = ("regression", "classification")

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        raise NotImplementedError


def class_logits(pred: torch.Tensor) -> torch.Tensor:
    """(N, C) logits; a single logit x per sample becomes the two-class logits (0, x)."""
    if pred.dim() != 2:
        raise ValueError(f"classification metrics take logits (N, C), got {tuple(pred.shape)}")
    if pred.shape[1] == 1:
        return torch.cat([torch.zeros_like(pred), pred], dim=1)
    return pred


def predicted_classes(pred: torch.Tensor) -> torch.Tensor:
    """The class each sample is given: the largest logit (the first of equal ones), so a one-output
    network predicts class 1 exactly where its logit is above 0."""
    return class_logits(pred).argmax(dim=1)
