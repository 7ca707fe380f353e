"""What nnrun holds a dataset plugin's `load` to, before splitting it (`assemble.checked`)."""

from __future__ import annotations

import math

import pytest
import torch

from nnrun.dataset import LoadedData
from nnrun.experiment.assemble import checked

X = torch.zeros(4, 2)


@pytest.mark.parametrize(
    "data, message",
    [
        (LoadedData(torch.zeros(4), torch.zeros(4, 1), ("x",), ("y",)), r"x must be floats shaped"),
        (LoadedData(X.long(), torch.zeros(4, 1), ("a", "b"), ("y",)), r"x must be floats"),
        (LoadedData(X[:0], torch.zeros(0, 1), ("a", "b"), ("y",)), r"no samples"),
        (LoadedData(X, torch.zeros(4, 1), ("a",), ("y",)), r"1 input names for 2 columns"),
        (LoadedData(X, torch.zeros(4), ("a", "b"), ("y",)), r"regression targets must be floats"),
        (LoadedData(X, torch.zeros(4, 2), ("a", "b"), ("y",)), r"1 target names for 2 columns"),
        (
            LoadedData(X, torch.zeros(4, 1), ("a", "b"), ("c",), "classification", ("u", "v")),
            r"int64 class indices shaped \(4,\)",
        ),
        (
            LoadedData(
                X, torch.tensor([0, 1, 2, 1]), ("a", "b"), ("c",), "classification", ("u", "v")
            ),
            r"class indices run from 0 to 2, but there are 2 classes",
        ),
        (
            LoadedData(X, torch.tensor([0, 1, 0, 1]), ("a", "b"), ("c",), "classification"),
            r"must name its classes",
        ),
        (LoadedData(X, torch.zeros(4, 1), ("a", "b"), ("y",), "ranking"), r"task must be"),  # type: ignore[arg-type]
    ],
)
def test_a_dataset_that_breaks_the_contract_is_refused(data, message):
    with pytest.raises(ValueError, match=message):
        checked(data)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_samples_are_refused_naming_the_first(bad):
    x = torch.zeros(5, 2)
    x[3, 1] = bad
    with pytest.raises(ValueError, match=rf"x is not finite in sample 3: \[0\.0, {bad}\]"):
        checked(LoadedData(x, torch.zeros(5, 1), ("a", "b"), ("y",)))
    y = torch.zeros(5, 1)
    y[2, 0] = bad
    with pytest.raises(ValueError, match="y is not finite in sample 2"):
        checked(LoadedData(torch.zeros(5, 2), y, ("a", "b"), ("y",)))


def test_good_data_passes_as_it_is():
    data = LoadedData(
        X, torch.tensor([1, 0, 1, 1]), ("a", "b"), ("c",), "classification", ("u", "v")
    )
    assert checked(data) is data
