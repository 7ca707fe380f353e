"""The built-in losses against torch.nn.functional (values) and its autograd (gradients).

Tolerances, float64: rtol 1e-12 on values and 1e-10 on gradients (the same formulas up to the
order of operations and of the mean's summation), atol 1e-15 (a few ulps of the O(1) terms that
cancel where a gradient crosses zero). float32: torch.testing's defaults (rtol 1.3e-6, atol 1e-5).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import nnrun
from nnrun.hyperparameters import hyperparameters
from nnrun.testing import check_loss

FLOAT64 = {"rtol": 1e-12, "atol": 1e-15}
FLOAT64_GRAD = {"rtol": 1e-10, "atol": 1e-15}


def _regression(shape, generator):
    return torch.randn(shape, generator=generator, dtype=torch.float64)


def _binary(shape, generator):
    return torch.rand(shape, generator=generator, dtype=torch.float64).round()


def _classes(shape, generator):
    return torch.randint(shape[-1], shape[:-1], generator=generator)


def _probabilities(shape, generator):
    return torch.softmax(torch.randn(shape, generator=generator, dtype=torch.float64), dim=-1)


def _unnormalized(shape, generator):  # torch accepts rows that do not sum to 1
    return 2 * torch.rand(shape, generator=generator, dtype=torch.float64)


# name, hyperparameters, the torch reference, a target maker, the kit's target kind
CASES = [
    ("mse", {}, F.mse_loss, _regression, "regression"),
    ("mae", {}, F.l1_loss, _regression, "regression"),
    ("huber", {}, F.huber_loss, _regression, "regression"),
    (
        "huber",
        {"delta": 0.5},
        lambda p, t: F.huber_loss(p, t, delta=0.5),
        _regression,
        "regression",
    ),
    ("bce_with_logits", {}, F.binary_cross_entropy_with_logits, _binary, "binary"),
    ("cross_entropy", {}, F.cross_entropy, _classes, "classes"),
    ("cross_entropy", {}, F.cross_entropy, _probabilities, "probabilities"),
    ("cross_entropy", {}, F.cross_entropy, _unnormalized, "probabilities"),
]
IDS = [f"{name}{params or ''}-{target.__name__[1:]}" for name, params, _, target, _ in CASES]
PARAMETRIZE = pytest.mark.parametrize(
    ("name", "params", "reference", "target", "kind"), CASES, ids=IDS
)


@pytest.fixture(scope="module")
def losses():
    with warnings.catch_warnings():  # another plugin's load failure is not this file's concern
        warnings.simplefilter("ignore", nnrun.PluginLoadWarning)
        return nnrun.load_registry().losses


def _preds(kind: str) -> list[torch.Tensor]:
    """Logits or predictions of several shapes, some saturated at ±100 and ±1000."""
    generator = torch.Generator().manual_seed(0)
    shapes = (
        [(1, 1), (3, 5), (8, 2)]
        if kind in ("classes", "probabilities")
        else [(7,), (3, 5), (2, 3, 4)]
    )
    preds = [3 * torch.randn(shape, generator=generator, dtype=torch.float64) for shape in shapes]
    extreme = torch.tensor(
        [[1000.0, -1000.0, 0.0], [100.0, -100.0, 100.0], [-1000.0, -1000.0, -1000.0]]
    )
    return [*preds, extreme.to(torch.float64)]


def _torch_grad(reference, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    leaf = pred.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(reference(leaf, target), leaf)
    return grad


def test_every_builtin_is_registered_through_the_entry_point(losses):
    assert set(losses) == {"mse", "mae", "huber", "bce_with_logits", "cross_entropy"}
    assert all(issubclass(losses[name], nnrun.Loss) for name in losses)


@PARAMETRIZE
def test_value_and_gradient_match_torch_in_float64(losses, name, params, reference, target, kind):
    loss = losses[name](**params)
    generator = torch.Generator().manual_seed(1)
    for pred in _preds(kind):
        t = target(pred.shape, generator)
        value = loss.forward(pred, t)
        assert value.shape == () and value.dtype == torch.float64
        torch.testing.assert_close(value, reference(pred, t), **FLOAT64)
        torch.testing.assert_close(
            loss.backward(pred, t), _torch_grad(reference, pred, t), **FLOAT64_GRAD
        )


@PARAMETRIZE
def test_float32_matches_torch_and_stays_finite(losses, name, params, reference, target, kind):
    loss = losses[name](**params)
    generator = torch.Generator().manual_seed(2)
    for pred in _preds(kind):
        t = target(pred.shape, generator)
        pred, t = pred.float(), (t.float() if t.is_floating_point() else t)
        value, grad = loss.forward(pred, t), loss.backward(pred, t)
        assert value.dtype == grad.dtype == torch.float32
        assert torch.isfinite(value) and torch.isfinite(grad).all()
        torch.testing.assert_close(value, reference(pred, t))
        torch.testing.assert_close(grad, _torch_grad(reference, pred, t))


# Kinks: |d| at d = 0 and Huber at |d| = δ (d = pred − target, all exactly representable).
KINKS = [
    ("mae", {}, F.l1_loss),
    ("huber", {}, F.huber_loss),
    ("huber", {"delta": 0.5}, lambda p, t: F.huber_loss(p, t, delta=0.5)),
]


@pytest.mark.parametrize(("name", "params", "reference"), KINKS)
def test_gradient_at_kinks_is_torchs(losses, name, params, reference):
    delta = params.get("delta", 1.0)
    target = torch.tensor([0.0, 1.0, 2.0, -3.0, 0.25], dtype=torch.float64)
    pred = target + torch.tensor([0.0, delta, -delta, 0.0, 2 * delta], dtype=torch.float64)
    assert torch.equal(
        (pred - target).abs()[1:3], torch.tensor([delta, delta], dtype=torch.float64)
    )
    grad = losses[name](**params).backward(pred, target)
    torch.testing.assert_close(grad, _torch_grad(reference, pred, target), rtol=0, atol=0)
    assert grad[0] == 0 and grad[3] == 0  # sign(0) = 0 for mae; d = 0 for huber


def test_mae_gradient_at_zero_difference_is_zero(losses):
    pred = torch.zeros(4, dtype=torch.float64)
    assert torch.equal(
        losses["mae"]().backward(pred, pred.clone()), torch.zeros(4, dtype=torch.float64)
    )


def test_bce_with_logits_is_stable_for_logits_of_a_thousand(losses):
    logits = torch.tensor([1000.0, -1000.0, 1000.0, -1000.0])
    targets = torch.tensor([1.0, 0.0, 0.0, 1.0])
    loss = losses["bce_with_logits"]()
    torch.testing.assert_close(loss.forward(logits, targets), torch.tensor(500.0))
    torch.testing.assert_close(
        loss.backward(logits, targets), torch.tensor([0.0, 0.0, 0.25, -0.25])
    )


def test_cross_entropy_accepts_an_unbatched_sample(losses):
    logits = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    index, probabilities = torch.tensor(2), torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    loss = losses["cross_entropy"]()
    for target in (index, probabilities):
        torch.testing.assert_close(
            loss.forward(logits, target), F.cross_entropy(logits, target), **FLOAT64
        )
        expected = _torch_grad(F.cross_entropy, logits, target)
        torch.testing.assert_close(loss.backward(logits, target), expected, **FLOAT64_GRAD)


@pytest.mark.parametrize(
    ("name", "pred_shape", "target"),
    [
        ("mse", (4, 1), torch.zeros(4)),  # would broadcast to (4, 4)
        ("mae", (3,), torch.zeros(4)),
        ("huber", (2, 2), torch.zeros(4)),
        ("bce_with_logits", (4, 1), torch.zeros(4)),
        (
            "cross_entropy",
            (2, 3, 4),
            torch.zeros(2, 4, dtype=torch.long),
        ),  # torch: classes on dim 1
        ("cross_entropy", (2, 3), torch.zeros(3, dtype=torch.long)),
        ("cross_entropy", (2, 3), torch.zeros(2, 4)),
    ],
)
def test_mismatched_target_shape_is_an_error_not_a_broadcast(losses, name, pred_shape, target):
    with pytest.raises(ValueError, match="target"):
        losses[name]().forward(torch.zeros(pred_shape), target)


@pytest.mark.parametrize("delta", [0.0, -1.0, float("nan"), float("inf")])
def test_huber_rejects_a_non_positive_or_non_finite_delta(losses, delta):
    with pytest.raises(ValueError, match=f"Invalid delta: {delta}; delta must be positive"):
        losses["huber"](delta=delta)


def test_hyperparameters_are_the_constructors_keywords_with_defaults(losses):
    listed = {
        name: {h.name: h.default for h in hyperparameters(losses[name], "losses")}
        for name in losses
    }
    assert listed == {
        "mse": {},
        "mae": {},
        "huber": {"delta": 1.0},
        "bce_with_logits": {},
        "cross_entropy": {},
    }


# The kit makes its own targets: one run per loss and kind of target.
KIT_CASES = list(
    dict.fromkeys((name, tuple(params.items()), kind) for name, params, _, _, kind in CASES)
)
KIT = pytest.mark.parametrize(
    ("name", "params", "kind"), KIT_CASES, ids=[f"{n}{dict(p) or ''}-{k}" for n, p, k in KIT_CASES]
)


@KIT
def test_conformance_kit_passes(losses, name, params, kind):
    check_loss(losses[name], kind, extremes=(-1000.0, -100.0, 100.0, 1000.0), **dict(params))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@KIT
def test_conformance_kit_passes_on_cuda(losses, name, params, kind):
    check_loss(losses[name], kind, device="cuda", extremes=(-1000.0, 1000.0), **dict(params))


def _indices_for_one_logit(pred: torch.Tensor) -> torch.Tensor:
    """Class indices 0/1 (N,) for (N, 1) logits: half of them 1, alternating."""
    return (torch.arange(pred.shape[0], device=pred.device) % 2).to(torch.long)


@pytest.mark.parametrize("n", [1, 7, 64])
def test_bce_with_logits_takes_class_indices_for_one_output_as_torch_takes_floats(losses, n):
    generator = torch.Generator().manual_seed(3)
    pred = 3 * torch.randn(n, 1, generator=generator, dtype=torch.float64)
    pred[0, 0] = 1000.0
    indices = torch.randint(2, (n,), generator=generator)
    floats = indices.to(torch.float64).unsqueeze(-1)
    loss = losses["bce_with_logits"]()
    reference = F.binary_cross_entropy_with_logits
    torch.testing.assert_close(loss.forward(pred, indices), reference(pred, floats), **FLOAT64)
    torch.testing.assert_close(
        loss.backward(pred, indices), _torch_grad(reference, pred, floats), **FLOAT64_GRAD
    )


def test_bce_with_logits_class_indices_pass_the_conformance_kit(losses):
    check_loss(
        losses["bce_with_logits"],
        _indices_for_one_logit,
        shapes=[(1, 1), (7, 1), (32, 1)],
        extremes=(-1000.0, -100.0, 100.0, 1000.0),
    )


@pytest.mark.parametrize(
    ("pred_shape", "target_shape"), [((4, 1), (4, 1)), ((4, 1), (3,)), ((4, 2), (4,))]
)
def test_bce_with_logits_refuses_class_indices_of_the_wrong_shape(losses, pred_shape, target_shape):
    target = torch.zeros(target_shape, dtype=torch.long)
    with pytest.raises(ValueError, match="target"):
        losses["bce_with_logits"]().forward(torch.zeros(pred_shape), target)
