"""The component conformance kit passes correct third-party components and catches broken ones,
with a message that names the input and the property that broke."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nnrun
from nnrun.testing import check_activation, check_loss

# --- third-party-style components, written the way a plugin author would ----------------------


class Softsign(nnrun.Activation):
    """y = x / (1 + |x|);  dy/dx = 1 / (1 + |x|)²."""

    def forward(self, x):
        return x / (1 + x.abs())

    def backward(self, x, y, grad_y):
        return grad_y / (1 + x.abs()) ** 2


class ScaledSigmoid(nnrun.Activation):
    """y = σ(x)·scale, a hyperparameter passed through the kit."""

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def forward(self, x):
        return self.scale * torch.sigmoid(x)

    def backward(self, x, y, grad_y):
        s = torch.sigmoid(x)
        return grad_y * self.scale * s * (1 - s)


class LogCosh(nnrun.Loss):
    """L = mean(log cosh d) written stably: |d| + log(1 + e^(−2|d|)) − log 2;  dL/dd = tanh(d)/n."""

    def forward(self, pred, target):
        a = (pred - target).abs()
        return (a + torch.log1p(torch.exp(-2 * a)) - np.log(2.0)).mean()

    def backward(self, pred, target):
        return torch.tanh(pred - target) / pred.numel()


# --- broken ones, each with one defect ---------------------------------------------------------


class SigmoidMissingAFactor(nnrun.Activation):
    def forward(self, x):
        return torch.sigmoid(x)

    def backward(self, x, y, grad_y):
        return grad_y * y  # forgot (1 − y)


class NaiveSoftplus(nnrun.Activation):
    def forward(self, x):
        return torch.log(1 + torch.exp(x))  # e^100 overflows float32

    def backward(self, x, y, grad_y):
        return grad_y * torch.sigmoid(x)


class SigmoidMutatingGradY(nnrun.Activation):
    def forward(self, x):
        return torch.sigmoid(x)

    def backward(self, x, y, grad_y):
        return grad_y.mul_(y * (1 - y))  # scribbles over the caller's gradient


class SigmoidMutatingX(nnrun.Activation):
    def forward(self, x):
        return torch.sigmoid(x)

    def backward(self, x, y, grad_y):
        return grad_y * x.sigmoid_() * (1 - y)


class SigmoidInFloat64(nnrun.Activation):
    def forward(self, x):
        return torch.sigmoid(x.double())

    def backward(self, x, y, grad_y):
        return grad_y * y * (1 - y)


class NaiveLogCosh(LogCosh):
    def forward(self, pred, target):
        return torch.log(torch.cosh(pred - target)).mean()  # cosh(100) overflows float32


class MSEWithSumGradient(nnrun.Loss):
    def forward(self, pred, target):
        return ((pred - target) ** 2).mean()

    def backward(self, pred, target):
        return 2 * (pred - target)  # forgot the mean's 1/n


class MSEReturningAVector(MSEWithSumGradient):
    def forward(self, pred, target):
        return (pred - target) ** 2


# --- forwards that autograd cannot follow: the kit falls back to finite differences --------------


class NumpySigmoid(nnrun.Activation):
    def forward(self, x):
        return torch.from_numpy(0.5 + 0.5 * np.tanh(0.5 * x.numpy()))  # σ(x), stable in numpy

    def backward(self, x, y, grad_y):
        return grad_y * y * (1 - y)


class NumpySigmoidSlightlyWrong(NumpySigmoid):
    def backward(self, x, y, grad_y):
        return grad_y * y * (1 - y) * 1.001


class ClampReLU(nnrun.Activation):
    """Autograd of clamp gives 1 at 0; this backward gives 0: both are subgradients."""

    def forward(self, x):
        return x.clamp(min=0)

    def backward(self, x, y, grad_y):
        return grad_y * (x > 0)


class ReLUWithSlopeTwoAtZero(ClampReLU):
    def backward(self, x, y, grad_y):
        return grad_y * torch.where(x == 0, 2.0, (x > 0).to(x.dtype))


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("component", [Softsign, ScaledSigmoid, NumpySigmoid, ClampReLU])
def test_passes_a_correct_activation(component):
    check_activation(component)


def test_passes_hyperparameters_to_the_class_and_takes_a_built_instance():
    check_activation(ScaledSigmoid, scale=3.0)
    check_activation(ScaledSigmoid(scale=0.5))


def test_passes_a_correct_loss_and_the_builtins_through_the_registry():
    check_loss(LogCosh)
    check_loss(nnrun.load_registry().losses["huber"], delta=0.5)


@pytest.mark.parametrize(
    ("component", "message"),
    [
        (SigmoidMissingAFactor, "backward disagrees with autograd of forward: max abs error"),
        (NaiveSoftplus, "forward returned a non-finite value for finite inputs: inf"),
        (SigmoidMutatingGradY, "backward modified its argument 'grad_y' in place"),
        (SigmoidMutatingX, "backward modified its argument 'x' in place"),
        (SigmoidInFloat64, "forward returned dtype torch.float64, expected torch.float32"),
        (
            NumpySigmoidSlightlyWrong,
            "backward disagrees with central finite differences of forward",
        ),
        (ReLUWithSlopeTwoAtZero, "backward disagrees with autograd of forward"),
    ],
)
def test_catches_a_broken_activation(component, message):
    with pytest.raises(AssertionError, match=message):
        check_activation(component)


@pytest.mark.parametrize(
    ("component", "message"),
    [
        (NaiveLogCosh, "forward returned a non-finite value for finite inputs"),
        (MSEWithSumGradient, "backward disagrees with autograd of forward"),
        (
            MSEReturningAVector,
            r"forward returned shape torch.Size\(\[1, 1\]\), expected torch.Size\(\[\]\)",
        ),
    ],
)
def test_catches_a_broken_loss(component, message):
    with pytest.raises(AssertionError, match=message):
        check_loss(component)


def test_failure_names_the_component_input_dtype_values_and_error():
    with pytest.raises(AssertionError) as failure:
        check_activation(SigmoidMissingAFactor, shapes=[(3, 5)], dtypes=[torch.float64])
    message = str(failure.value)
    assert message.startswith("check_activation(SigmoidMissingAFactor()): backward disagrees")
    assert "input: shape (3, 5), torch.float64, values: 3 × standard normals" in message
    assert "where the input is" in message and "expected" in message and "tolerance" in message


def test_overflow_is_reported_for_the_extreme_value_that_caused_it():
    with pytest.raises(AssertionError, match=r"shape \(1, 1\), torch.float32, values: all 100"):
        check_activation(NaiveSoftplus)


def test_classification_losses_get_class_index_and_probability_targets():
    cross_entropy = nnrun.load_registry().losses["cross_entropy"]
    check_loss(cross_entropy, targets="classes")
    check_loss(cross_entropy, targets="probabilities")
    with pytest.raises(AssertionError, match="forward raised ValueError: cross_entropy takes"):
        check_loss(cross_entropy, shapes=[(3, 5, 2)])


def test_a_target_factory_supplies_the_targets():
    seen = []

    def zeros_like(pred):
        seen.append(pred.dtype)
        return torch.zeros_like(pred)

    check_loss(LogCosh, targets=zeros_like, shapes=[(2, 3)])
    assert seen and set(seen) == {torch.float64}


def test_an_unknown_target_kind_is_an_error():
    with pytest.raises(ValueError, match="Invalid targets: 'ordinal'"):
        check_loss(LogCosh, targets="ordinal")


def test_hyperparameters_cannot_be_given_with_an_instance():
    with pytest.raises(TypeError, match="pass hyperparameters with a class"):
        check_activation(ScaledSigmoid(), scale=2.0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_and_still_catches_a_broken_backward():
    check_activation(Softsign, device="cuda")
    check_loss(LogCosh, device="cuda")
    with pytest.raises(AssertionError, match="backward disagrees"):
        check_activation(SigmoidMissingAFactor, device="cuda")


def test_results_name_the_failing_check_and_keep_checking_the_others():
    from nnrun.testing.gradient_checks import CHECKS, activation_results

    results = {r.check: r for r in activation_results(SigmoidMissingAFactor)}
    assert list(results) == list(CHECKS)
    failed = results["backward_matches_reference"]
    assert not failed.passed and failed.figure > failed.tolerance == 1.0
    assert "backward disagrees with autograd of forward" in failed.message
    assert all(r.passed for name, r in results.items() if name != "backward_matches_reference")
    assert 0 < results["float32_matches_float64"].figure <= 1.0
    assert all(r.passed for r in activation_results(Softsign))


# --- the optional fast methods ---------------------------------------------------------------


class SoftsignFromOutput(Softsign):
    """dy/dx = (1 − |y|)², since 1 + |x| = 1 / (1 − |y|): a correct fast backward."""

    def backward_from_output(self, y, grad_y):
        return grad_y * (1 - y.abs()) ** 2


class SoftsignWrongFromOutput(Softsign):
    def backward_from_output(self, y, grad_y):
        return grad_y * (1 - y.abs())  # the square forgotten


class LogCoshWrongForwardBackward(LogCosh):
    def forward_backward(self, pred, target):
        return self.forward(pred, target), 2 * self.backward(pred, target)


def test_a_correct_fast_backward_passes_and_a_wrong_one_is_named():
    check_activation(SoftsignFromOutput)
    with pytest.raises(AssertionError, match="backward_from_output disagrees with backward"):
        check_activation(SoftsignWrongFromOutput)


def test_a_wrong_forward_backward_is_named():
    with pytest.raises(AssertionError, match="forward_backward disagrees with backward"):
        check_loss(LogCoshWrongForwardBackward)


def test_a_loss_without_forward_backward_gets_forward_then_backward():
    loss, pred, target = LogCosh(), torch.randn(3, 2), torch.randn(3, 2)
    value, grad = loss.forward_backward(pred, target)
    assert torch.equal(value, loss.forward(pred, target))
    assert torch.equal(grad, loss.backward(pred, target))


def test_results_name_a_wrong_fast_method_under_its_own_check():
    from nnrun.testing.gradient_checks import activation_results

    results = {r.check: r for r in activation_results(SoftsignWrongFromOutput)}
    assert not results["fast_methods_match_generic"].passed
    assert all(r.passed for name, r in results.items() if name != "fast_methods_match_generic")
    fine = {r.check: r for r in activation_results(SoftsignFromOutput)}
    assert fine["fast_methods_match_generic"].passed
    assert 0 < fine["fast_methods_match_generic"].figure <= 1.0
