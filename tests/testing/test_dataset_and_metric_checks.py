"""`check_dataset` and `check_metric` pass correct components and catch broken ones."""

from __future__ import annotations

import pytest
import torch

import nnrun
from nnrun.testing import check_dataset, check_metric


class Line(nnrun.Dataset):
    def __init__(self, n: int = 16):
        self.n = n

    def load(self, context):
        x = torch.rand(self.n, 1, generator=context.generator, dtype=torch.float64)
        return nnrun.LoadedData(x=x, y=2 * x + 1, inputs=("x",), targets=("y",))


class Labels(nnrun.Dataset):
    def load(self, context):
        x = torch.randn(10, 2, generator=context.generator)
        y = (x[:, 0] > 0).long()
        return nnrun.LoadedData(x, y, ("a", "b"), ("label",), "classification", ("no", "yes"))


class Unseeded(Line):
    def load(self, context):
        x = torch.rand(self.n, 1)  # the global RNG, not context.generator
        return nnrun.LoadedData(x=x, y=x, inputs=("x",), targets=("y",))


class FlatTargets(Line):
    def load(self, context):
        data = super().load(context)
        return nnrun.LoadedData(data.x, data.y.view(-1), data.inputs, data.targets)


class WithNaN(Line):
    def load(self, context):
        data = super().load(context)
        data.x[0, 0] = float("nan")
        return data


class LabelsOutOfRange(Labels):
    def load(self, context):
        data = super().load(context)
        return nnrun.LoadedData(
            data.x, data.y + 1, data.inputs, data.targets, data.task, data.classes
        )


def test_passes_correct_datasets():
    check_dataset(Line, n=8)
    check_dataset(Labels)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (Unseeded, "two loads with generators seeded 0 gave different x"),
        (FlatTargets, r"gave y \(16,\), expected \(16, 1\)"),
        (WithNaN, "gave 1 non-finite values in x and y"),
        (LabelsOutOfRange, r"gave class indices outside 0\.\.1"),
    ],
)
def test_catches_a_broken_dataset(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_dataset(cls)


class MAE(nnrun.Metric):
    mode = "min"
    tasks = ("regression",)

    def compute(self, pred, target):
        return float((pred - target).abs().mean())


class Accuracy(nnrun.Metric):
    tasks = ("classification",)

    def compute(self, pred, target):
        return float((pred.argmax(dim=-1) == target).double().mean())


class ReturnsATensor(MAE):
    def compute(self, pred, target):
        return (pred - target).abs().mean()


class BadMode(MAE):
    mode = "lower"


class Doubles(MAE):
    def compute(self, pred, target):
        pred.mul_(2)  # scribbles over the caller's predictions
        return super().compute(pred, target)


class LogOfError(MAE):
    def compute(self, pred, target):
        return float(torch.log((pred - target).abs().min() * 0))


def test_passes_correct_metrics():
    check_metric(MAE)
    check_metric(Accuracy)


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (ReturnsATensor, r"compute returned Tensor \[regression, pred \(1, 1\)\], not a float"),
        (BadMode, "mode is 'lower'"),
        (Doubles, "compute modified its argument 'pred' in place"),
        (LogOfError, "compute returned -inf"),
    ],
)
def test_catches_a_broken_metric(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_metric(cls)
