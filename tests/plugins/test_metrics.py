"""The built-in metrics against values worked out by hand and against scikit-learn's.

Hand-computed cases are exact fractions, compared to 1e-15; scikit-learn computes the same sums in
float64 in another order, compared to rtol 1e-12.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import nnrun
from nnrun.hyperparameters import hyperparameters

EXACT = {"rel": 0, "abs": 1e-15}


@pytest.fixture(scope="module")
def metrics():
    with warnings.catch_warnings():  # another plugin's load failure is not this file's concern
        warnings.simplefilter("ignore", nnrun.PluginLoadWarning)
        return nnrun.load_registry().metrics


def logits_for(classes: list[int], count: int) -> torch.Tensor:
    """Logits (N, count) whose largest entry is at `classes[i]` in row i."""
    logits = torch.zeros(len(classes), count, dtype=torch.float64)
    logits[torch.arange(len(classes)), torch.tensor(classes)] = 1.0
    return logits


T = torch.tensor


def test_every_builtin_is_registered_with_its_mode_and_tasks(metrics):
    table = {name: (metrics[name].mode, metrics[name].tasks) for name in metrics}
    assert table == {
        "accuracy": ("max", ("classification",)),
        "f1_macro": ("max", ("classification",)),
        "top_k": ("max", ("classification",)),
        "mse": ("min", ("regression",)),
        "mae": ("min", ("regression",)),
        "r2": ("max", ("regression",)),
    }
    assert all(issubclass(metrics[name], nnrun.Metric) for name in metrics)
    assert {h.name: h.default for h in hyperparameters(metrics["top_k"], "metrics")} == {"k": 5}


# (metric, hyperparameters, logits, targets, the value worked out by hand)
TARGET = [0, 0, 1, 1, 2, 2]
PREDICTED = [0, 1, 1, 1, 0, 2]  # right: 0, 2, 3, 5
CLASSIFICATION = {
    "accuracy: 4 of 6": ("accuracy", {}, logits_for(PREDICTED, 3), T(TARGET), 4 / 6),
    # class 0: TP 1, FP 1, FN 1 -> 1/2; class 1: TP 2, FP 1, FN 0 -> 4/5; class 2: TP 1, FN 1 -> 2/3
    "f1_macro: three classes": (
        "f1_macro",
        {},
        logits_for(PREDICTED, 3),
        T(TARGET),
        (1 / 2 + 4 / 5 + 2 / 3) / 3,
    ),
    # class 3 has a logit but no sample and no prediction: left out, as sklearn leaves it
    "f1_macro: a class that never occurs": (
        "f1_macro",
        {},
        logits_for(PREDICTED, 4),
        T(TARGET),
        (1 / 2 + 4 / 5 + 2 / 3) / 3,
    ),
    # class 2 is predicted but never the target: F1 0 (TP 0, FP 1); class 0: TP 1, FP 1, FN 1
    # -> 1/2; class 1: TP 1, FN 1 -> 2/3
    "f1_macro: a class predicted but never true": (
        "f1_macro",
        {},
        logits_for([0, 2, 1, 0], 3),
        T([0, 0, 1, 1]),
        (1 / 2 + 2 / 3 + 0) / 3,
    ),
    "accuracy: one logit, thresholded at 0": (
        "accuracy",
        {},
        T([[2.0], [-1.0], [0.0], [0.5]], dtype=torch.float64),
        T([1, 0, 1, 0]),
        2 / 4,  # 0.0 is not above 0: class 0
    ),
    # rows' logits, ranks of the target: 1st, 2nd, 3rd, 2nd
    "top_k k=2": (
        "top_k",
        {"k": 2},
        T([[3.0, 2, 1], [3.0, 2, 1], [3.0, 2, 1], [1.0, 3, 2]], dtype=torch.float64),
        T([0, 1, 2, 2]),
        3 / 4,
    ),
    "top_k k=1 is accuracy": (
        "top_k",
        {"k": 1},
        logits_for(PREDICTED, 3),
        T(TARGET),
        4 / 6,
    ),
    "top_k k at least the classes": (
        "top_k",
        {"k": 3},
        logits_for(PREDICTED, 3),
        T(TARGET),
        1.0,
    ),
}
REGRESSION = {
    # differences 1, -2, 0, 3
    "mse": ("mse", T([[1.0], [0.0], [2.0], [3.0]]), T([[0.0], [2.0], [2.0], [0.0]]), 14 / 4),
    "mae": ("mae", T([[1.0], [0.0], [2.0], [3.0]]), T([[0.0], [2.0], [2.0], [0.0]]), 6 / 4),
    # targets 0, 2, 2, 0: mean 1, total 4; residual 14
    "r2": ("r2", T([[1.0], [0.0], [2.0], [3.0]]), T([[0.0], [2.0], [2.0], [0.0]]), 1 - 14 / 4),
    # output 1: residual 1, total 2 -> 1/2; output 2 constant and hit exactly -> 1
    "r2, two outputs, one constant": (
        "r2",
        T([[0.0, 5.0], [1.0, 5.0], [3.0, 5.0]]),
        T([[0.0, 5.0], [1.0, 5.0], [2.0, 5.0]]),
        ((1 - 1 / 2) + 1) / 2,
    ),
    "r2, constant target missed": ("r2", T([[1.0], [2.0]]), T([[1.0], [1.0]]), 0.0),
    "mse, two outputs": ("mse", T([[1.0, 2.0]]), T([[0.0, 0.0]]), 5 / 2),
}


@pytest.mark.parametrize("case", CLASSIFICATION.values(), ids=CLASSIFICATION)
def test_classification_metric_equals_the_hand_computed_value(metrics, case):
    name, params, logits, target, expected = case
    assert metrics[name](**params).compute(logits, target) == pytest.approx(expected, **EXACT)


@pytest.mark.parametrize("case", REGRESSION.values(), ids=REGRESSION)
def test_regression_metric_equals_the_hand_computed_value(metrics, case):
    name, pred, target, expected = case
    assert metrics[name]().compute(pred, target) == pytest.approx(expected, **EXACT)


def test_float32_inputs_are_summed_in_float64(metrics):
    n = 1_000_001  # a float32 running sum of this many 0.1s drifts in the fourth digit
    pred, target = torch.full((n, 1), 0.1), torch.zeros(n, 1)
    assert metrics["mae"]().compute(pred, target) == pytest.approx(float(torch.tensor(0.1)), 1e-12)


@pytest.mark.parametrize(
    ("name", "pred", "target"),
    [
        ("accuracy", torch.zeros(4, 3), torch.zeros(4)),  # float targets
        ("accuracy", torch.zeros(4, 3), torch.zeros(3, dtype=torch.long)),
        ("f1_macro", torch.zeros(4), torch.zeros(4, dtype=torch.long)),  # logits without classes
        ("mse", torch.zeros(4, 1), torch.zeros(4)),  # would broadcast to (4, 4)
        ("r2", torch.zeros(4, 1), torch.zeros(4, 1, dtype=torch.long)),
    ],
)
def test_targets_of_the_wrong_kind_are_an_error(metrics, name, pred, target):
    with pytest.raises(ValueError, match="take"):
        metrics[name]().compute(pred, target)


def test_top_k_rejects_k_below_one(metrics):
    with pytest.raises(ValueError, match="Invalid k: 0"):
        metrics["top_k"](k=0)


# --- against scikit-learn, on random data -----------------------------------------------------


def _random_classification(seed: int, n: int, classes: int):
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(classes, (n,), generator=generator)
    logits = torch.randn(n, classes, generator=generator, dtype=torch.float64)
    logits[torch.arange(n), target] += 1.0  # better than chance, so every figure is in between
    return logits, target


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("classes", [2, 3, 10])
def test_classification_metrics_equal_sklearn(metrics, seed, classes):
    skm = pytest.importorskip("sklearn.metrics")
    logits, target = _random_classification(seed, 50, classes)
    predicted = logits.argmax(dim=1).numpy()
    y = target.numpy()
    tolerance = {"rel": 1e-12, "abs": 0}
    assert metrics["accuracy"]().compute(logits, target) == pytest.approx(
        skm.accuracy_score(y, predicted), **tolerance
    )
    assert metrics["f1_macro"]().compute(logits, target) == pytest.approx(
        skm.f1_score(y, predicted, average="macro"), **tolerance
    )
    # sklearn scores two classes by one score per sample: the difference of the logits
    scores = (logits[:, 1] - logits[:, 0]) if classes == 2 else logits
    for k in (1, 2, 5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns that k >= classes scores 1
            expected = skm.top_k_accuracy_score(y, scores.numpy(), k=k, labels=range(classes))
        assert metrics["top_k"](k=k).compute(logits, target) == pytest.approx(
            expected, **tolerance
        ), k


@pytest.mark.parametrize("seed", range(5))
def test_one_logit_metrics_equal_sklearn_on_the_thresholded_logit(metrics, seed):
    skm = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(seed)
    logit = torch.randn(40, 1, generator=generator, dtype=torch.float64)
    target = torch.randint(2, (40,), generator=generator)
    predicted = (logit[:, 0] > 0).long().numpy()
    assert metrics["accuracy"]().compute(logit, target) == pytest.approx(
        skm.accuracy_score(target.numpy(), predicted), rel=1e-12
    )
    assert metrics["f1_macro"]().compute(logit, target) == pytest.approx(
        skm.f1_score(target.numpy(), predicted, average="macro"), rel=1e-12
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("outputs", [1, 3])
def test_regression_metrics_equal_sklearn(metrics, seed, outputs):
    skm = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(seed)
    target = torch.randn(30, outputs, generator=generator, dtype=torch.float64)
    pred = target + 0.5 * torch.randn(30, outputs, generator=generator, dtype=torch.float64)
    for name, reference in [
        ("mse", skm.mean_squared_error),
        ("mae", skm.mean_absolute_error),
        ("r2", skm.r2_score),
    ]:
        expected = reference(target.numpy(), pred.numpy())
        assert metrics[name]().compute(pred, target) == pytest.approx(expected, rel=1e-12), name
