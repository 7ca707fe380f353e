"""Built-in metrics: figures of merit computed from a network's outputs and the targets.

`pred` is the network's output (N, outputs): logits for classification, where a one-output
network (trained with `bce_with_logits`) is a two-class classifier whose logit x stands for the
logits (0, x), so class 1 is predicted where x > 0. Classification targets are class indices (N,);
regression targets are floats (N, outputs). Every figure is computed in float64 and equals its
scikit-learn counterpart (tests/plugins/test_metrics.py).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

import nnrun
from nnrun.dataset import Task
from nnrun.hookspecs import Register
from nnrun.metric import Metric, class_logits, predicted_classes


def _check_classes(pred: torch.Tensor, target: torch.Tensor) -> None:
    if target.is_floating_point() or target.shape != pred.shape[:1]:
        raise ValueError(
            f"classification metrics take class indices (N,) of an integer dtype for logits "
            f"{tuple(pred.shape)}; got target {tuple(target.shape)} of {target.dtype}"
        )


class _Classification(Metric):
    mode: ClassVar[Literal["min", "max"]] = "max"
    tasks: ClassVar[tuple[Task, ...]] = ("classification",)


class Accuracy(_Classification):
    """The fraction of samples whose predicted class is the target, in [0, 1]."""

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        _check_classes(pred, target)
        return (predicted_classes(pred) == target).double().mean().item()


class F1Macro(_Classification):
    """The unweighted mean over classes of F1 = 2·TP / (2·TP + FP + FN), over the classes that occur
    in the targets or the predictions (a class with neither has no F1), a class without any true
    or predicted sample scoring 0: `sklearn.metrics.f1_score(average="macro")`."""

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        _check_classes(pred, target)
        predicted = predicted_classes(pred)
        classes = max(class_logits(pred).shape[1], int(target.max().item()) + 1)
        tp = torch.bincount(target[predicted == target], minlength=classes).double()
        support = torch.bincount(target, minlength=classes).double()  # TP + FN
        chosen = torch.bincount(predicted, minlength=classes).double()  # TP + FP
        present = (support + chosen) > 0
        f1 = 2 * tp[present] / (support[present] + chosen[present])
        return f1.mean().item()


class TopK(_Classification):
    """The fraction of samples whose target is among the k largest logits, in [0, 1]; 1 when k is at
    least the number of classes (`sklearn.metrics.top_k_accuracy_score`)."""

    def __init__(self, k: int = 5):
        if k < 1:
            raise ValueError(f"Invalid k: {k}; k must be at least 1")
        self.k = k

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        _check_classes(pred, target)
        logits = class_logits(pred)
        if self.k >= logits.shape[1]:
            return 1.0
        # a target tied with the k-th largest logit counts, as sklearn counts it
        kth = logits.topk(self.k, dim=1).values[:, -1]
        hit = logits.gather(1, target.unsqueeze(1)).squeeze(1) >= kth
        return hit.double().mean().item()


def _check_regression(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or not target.is_floating_point():
        raise ValueError(
            f"regression metrics take float targets shaped like the prediction "
            f"{tuple(pred.shape)}; got {tuple(target.shape)} of {target.dtype}"
        )


class _Regression(Metric):
    mode: ClassVar[Literal["min", "max"]] = "min"
    tasks: ClassVar[tuple[Task, ...]] = ("regression",)


class MeanSquaredError(_Regression):
    """mean((pred − target)²) over every sample and output."""

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        _check_regression(pred, target)
        return (pred.double() - target.double()).square().mean().item()


class MeanAbsoluteError(_Regression):
    """mean(|pred − target|) over every sample and output."""

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        _check_regression(pred, target)
        return (pred.double() - target.double()).abs().mean().item()


class R2(_Regression):
    """The coefficient of determination 1 − Σ(target − pred)² / Σ(target − mean(target))², per
    output, averaged over the outputs; 1 is a perfect fit. An output whose targets are all equal
    scores 1 if predicted exactly, else 0 (`sklearn.metrics.r2_score`)."""

    mode: ClassVar[Literal["min", "max"]] = "max"

    def compute(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        _check_regression(pred, target)
        p, t = pred.double().reshape(len(pred), -1), target.double().reshape(len(target), -1)
        residual = (t - p).square().sum(dim=0)
        total = (t - t.mean(dim=0)).square().sum(dim=0)
        r2 = torch.where(
            total > 0,
            1 - residual / torch.where(total > 0, total, 1.0),
            (residual == 0).double(),
        )
        return r2.mean().item()


@nnrun.hookimpl
def register_metrics(register: Register) -> None:
    register("accuracy", Accuracy)
    register("f1_macro", F1Macro)
    register("top_k", TopK)
    register("mse", MeanSquaredError)
    register("mae", MeanAbsoluteError)
    register("r2", R2)
