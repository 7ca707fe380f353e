"""Conformance checks for activation and loss plugins.

`check_activation` and `check_loss` build the component and hold its hand-written `backward`
against the derivative of its OWN `forward`: autograd in float64, or central finite differences
in float64 when `forward` cannot be differentiated by autograd. They run in float32 and float64, on
odd shapes, with extreme inputs (±100, zeros, exact kinks), and also check that outputs are finite,
that shape, dtype and device are preserved, and that neither method changes its inputs in place.
The optional fast methods (an activation's `backward_from_output`, a loss's own `forward_backward`)
go through the same checks and must agree with the generic methods to the dtype's tolerance.

At a kink (where the one-sided derivatives differ, e.g. relu at 0) any value between the two
one-sided derivatives is accepted, since every such value is a valid subgradient.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import torch

from nnrun.components import Activation, Loss
from nnrun.testing.results import CheckFailed, CheckResult

Shape = tuple[int, ...]
TargetKind = Literal["regression", "binary", "classes", "probabilities"]
TargetFactory = Callable[[torch.Tensor], torch.Tensor]

SHAPES: tuple[Shape, ...] = ((1, 1), (7,), (3, 5), (2, 3, 4))
#: (batch, classes) shapes for the classification targets.
CLASS_SHAPES: tuple[Shape, ...] = ((1, 1), (3, 5), (7, 2), (2, 13))
DTYPES = (torch.float32, torch.float64)
#: (rtol, atol) per dtype: torch.testing's defaults. The reference is always float64.
TOLERANCES = {
    torch.float16: (1e-3, 1e-5),
    torch.bfloat16: (1.6e-2, 1e-5),
    torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7),
}
#: The floor when the reference comes from finite differences (error ~ h² and eps/h).
FD_TOLERANCE = (1e-5, 1e-6)
_FD_STEP = 6e-6  # ≈ eps^(1/3) for float64, scaled by max(1, |x|)

_RATIO = "worst |Δ| / (atol + rtol·|reference|), torch.testing's tolerances per dtype"
FAST = "fast_methods_match_generic"
#: The named checks of `check_activation` and `check_loss`: name -> (what the figure is, tolerance).
CHECKS: dict[str, tuple[str, float | None]] = {
    "runs_on_every_input": ("", None),
    "leaves_inputs_unmodified": ("", None),
    "keeps_shape_dtype_device": ("", None),
    "finite_outputs": ("non-finite values", 0.0),
    "float32_matches_float64": (_RATIO, 1.0),
    "backward_matches_reference": (_RATIO + "; autograd or finite differences of forward", 1.0),
    "fast_methods_match_generic": (_RATIO + "; backward_from_output, forward_backward", 1.0),
}


def check_activation(
    component: type | Activation,
    *,
    device: str | torch.device = "cpu",
    dtypes: Sequence[torch.dtype] = DTYPES,
    shapes: Sequence[Shape] = SHAPES,
    extremes: Sequence[float] = (-100.0, 100.0),
    kinks: Sequence[float] = (0.0,),
    **hyperparameters: Any,
) -> None:
    """Check an activation class (built with `hyperparameters`) or instance; raise AssertionError.

    `extremes` and `kinks` are values put into the inputs, alone and mixed with random normals.
    Pass an instance instead of a class if a hyperparameter is named like one of these options.
    """
    activation_results(
        component,
        strict=True,
        device=device,
        dtypes=dtypes,
        shapes=shapes,
        extremes=extremes,
        kinks=kinks,
        **hyperparameters,
    )


def activation_results(
    component: type | Activation,
    *,
    strict: bool = False,
    device: str | torch.device = "cpu",
    dtypes: Sequence[torch.dtype] = DTYPES,
    shapes: Sequence[Shape] = SHAPES,
    extremes: Sequence[float] = (-100.0, 100.0),
    kinks: Sequence[float] = (0.0,),
    **hyperparameters: Any,
) -> list[CheckResult]:
    """`check_activation`'s checks, one result per name in `CHECKS`; `strict` raises at the first
    failure instead. A failing input is not checked further; the other inputs still are."""
    activation, name = _build(component, hyperparameters)
    name = f"check_activation({name})"
    recorder = _Recorder(strict)
    generator = torch.Generator().manual_seed(0)
    for shape in shapes:
        for label, x64 in _inputs(shape, [*extremes, *kinks], generator):
            x64 = x64.to(device)
            grad_y64 = _as_float32_values(
                torch.randn(shape, generator=generator, dtype=torch.float64)
            )
            grad_y64 = grad_y64.to(device)
            case = _Case(name, shape, label, recorder=recorder)
            with recorder.case():
                y64 = _call(case, "forward", activation.forward, x=x64.clone())

                def weighted(x: torch.Tensor, v: torch.Tensor = grad_y64) -> torch.Tensor:
                    return v * activation.forward(x)

                reference = _Reference(weighted, x64)
                for dtype in dtypes:
                    case.dtype = dtype
                    x, grad_y = x64.to(dtype), grad_y64.to(dtype)
                    y = _call(case, "forward", activation.forward, x=x)
                    case.check_tensor("forward", y, like=x)
                    case.check_finite("forward", y)
                    if dtype != torch.float64:
                        case.check_close("forward", "forward in float64", y, y64, x64)
                    grad_x = _call(case, "backward", activation.backward, x=x, y=y, grad_y=grad_y)
                    case.check_tensor("backward", grad_x, like=x)
                    case.check_finite("backward", grad_x)
                    case.check_gradient(grad_x, reference)
                    fast = getattr(activation, "backward_from_output", None)
                    if fast is not None:
                        method = "backward_from_output"
                        grad_fast = _call(case, method, fast, y=y, grad_y=grad_y)
                        case.check_tensor(method, grad_fast, like=x)
                        case.check_finite(method, grad_fast)
                        case.check_close(method, "backward", grad_fast, grad_x, x, FAST)
    return recorder.results()


def check_loss(
    component: type | Loss,
    targets: TargetKind | TargetFactory = "regression",
    *,
    device: str | torch.device = "cpu",
    dtypes: Sequence[torch.dtype] = DTYPES,
    shapes: Sequence[Shape] | None = None,
    extremes: Sequence[float] = (-100.0, 100.0),
    kinks: Sequence[float] = (0.0,),
    **hyperparameters: Any,
) -> None:
    """Check a loss class (built with `hyperparameters`) or instance; raise AssertionError.

    `targets` says what the loss compares predictions with: "regression" (floats shaped like the
    prediction, equal to it or 1 away from it at some elements), "binary" (0, 1 and values
    between), "classes" (class indices (N,) of dtype long for (N, C) logits), "probabilities" (rows
    that sum to 1, some one-hot), or a callable `target_factory(pred) -> target`.
    """
    loss_results(
        component,
        targets,
        strict=True,
        device=device,
        dtypes=dtypes,
        shapes=shapes,
        extremes=extremes,
        kinks=kinks,
        **hyperparameters,
    )


def loss_results(
    component: type | Loss,
    targets: TargetKind | TargetFactory = "regression",
    *,
    strict: bool = False,
    device: str | torch.device = "cpu",
    dtypes: Sequence[torch.dtype] = DTYPES,
    shapes: Sequence[Shape] | None = None,
    extremes: Sequence[float] = (-100.0, 100.0),
    kinks: Sequence[float] = (0.0,),
    **hyperparameters: Any,
) -> list[CheckResult]:
    """`check_loss`'s checks, one result per name in `CHECKS` (see `activation_results`)."""
    loss, name = _build(component, hyperparameters)
    name = f"check_loss({name})"
    if shapes is None:
        shapes = CLASS_SHAPES if targets in ("classes", "probabilities") else SHAPES
    make_target = _target_factory(targets)
    recorder = _Recorder(strict)
    generator = torch.Generator().manual_seed(0)
    for shape in shapes:
        for index, (label, pred64) in enumerate(_inputs(shape, [*extremes, *kinks], generator)):
            pred64 = pred64.to(device)
            target64 = make_target(pred64, generator, index)
            if target64.is_floating_point():
                target64 = _as_float32_values(target64.to(torch.float64))
            kind = targets if isinstance(targets, str) else "from target_factory"
            case = _Case(name, shape, f"{label}; targets {kind}", recorder=recorder)
            with recorder.case():
                loss64 = _call(case, "forward", loss.forward, pred=pred64.clone(), target=target64)

                def against(p: torch.Tensor, t: torch.Tensor = target64) -> torch.Tensor:
                    return loss.forward(p, t)

                reference = _Reference(against, pred64)
                for dtype in dtypes:
                    case.dtype = dtype
                    pred = pred64.to(dtype)
                    target = target64.to(dtype) if target64.is_floating_point() else target64
                    value = _call(case, "forward", loss.forward, pred=pred, target=target)
                    case.check_tensor("forward", value, like=pred.new_empty(()))
                    case.check_finite("forward", value)
                    if dtype != torch.float64:
                        case.check_close("forward", "forward in float64", value, loss64, None)
                    grad = _call(case, "backward", loss.backward, pred=pred, target=target)
                    case.check_tensor("backward", grad, like=pred)
                    case.check_finite("backward", grad)
                    case.check_gradient(grad, reference)
                    if type(loss).forward_backward is not Loss.forward_backward:
                        method = "forward_backward"
                        both = _call(case, method, loss.forward_backward, pred=pred, target=target)
                        if not (isinstance(both, tuple) and len(both) == 2):
                            case.fail(
                                "keeps_shape_dtype_device",
                                f"{method} returned {type(both).__name__}, not (loss, gradient)",
                            )
                        case.check_tensor(method, both[0], like=value)
                        case.check_tensor(method, both[1], like=pred)
                        case.check_close(method, "forward", both[0], value, None, FAST)
                        case.check_close(method, "backward", both[1], grad, pred, FAST)
    return recorder.results()


def _build(component: type | Any, hyperparameters: dict[str, Any]) -> tuple[Any, str]:
    """The component to check and how failure messages name it."""
    if isinstance(component, type):
        settings = ", ".join(f"{key}={value!r}" for key, value in hyperparameters.items())
        return component(**hyperparameters), f"{component.__name__}({settings})"
    if hyperparameters:
        raise TypeError("pass hyperparameters with a class, not with an already built component")
    custom_repr = type(component).__repr__ is not object.__repr__
    return component, repr(component) if custom_repr else f"{type(component).__name__} instance"


def _as_float32_values(x: torch.Tensor) -> torch.Tensor:
    """Round to float32 and back, so that every dtype is checked at exactly the same points."""
    return x.to(torch.float32).to(torch.float64)


def _inputs(
    shape: Shape, special: Sequence[float], generator: torch.Generator
) -> list[tuple[str, torch.Tensor]]:
    """Random normals, the special values mixed with normals, and each special value alone."""
    randn = torch.randn(shape, generator=generator, dtype=torch.float64)
    mixed = torch.randn(shape, generator=generator, dtype=torch.float64)
    head = list(special)[: mixed.numel()]
    mixed.view(-1)[: len(head)] = torch.tensor(head, dtype=torch.float64)
    inputs = [
        ("values: 3 × standard normals", 3 * randn),
        (f"values: {', '.join(f'{v:g}' for v in head)} then standard normals", mixed),
    ]
    inputs += [
        (f"values: all {v:g}", torch.full(shape, float(v), dtype=torch.float64)) for v in special
    ]
    return [(label, _as_float32_values(x)) for label, x in inputs]


def _target_factory(
    targets: TargetKind | TargetFactory,
) -> Callable[[torch.Tensor, torch.Generator, int], torch.Tensor]:
    if callable(targets):
        return lambda pred, generator, index: targets(pred)
    makers = {
        "regression": _regression_target,
        "binary": _binary_target,
        "classes": _class_target,
        "probabilities": _probability_target,
    }
    if targets not in makers:
        raise ValueError(
            f"Invalid targets: {targets!r}; use one of {', '.join(makers)} or a callable"
        )
    return makers[targets]


def _regression_target(pred: torch.Tensor, generator: torch.Generator, index: int) -> torch.Tensor:
    # Every third element equals pred (a kink of |d|), the next is pred - 1 (Huber's default δ).
    target = torch.randn(pred.shape, generator=generator, dtype=pred.dtype).to(pred.device)
    phase = (torch.arange(pred.numel(), device=pred.device).view(pred.shape) + index) % 3
    return torch.where(phase == 0, pred, torch.where(phase == 1, pred - 1, target))


def _binary_target(pred: torch.Tensor, generator: torch.Generator, index: int) -> torch.Tensor:
    target = torch.rand(pred.shape, generator=generator, dtype=pred.dtype).to(pred.device)
    phase = (torch.arange(pred.numel(), device=pred.device).view(pred.shape) + index) % 3
    return torch.where(phase == 0, 0.0, torch.where(phase == 1, 1.0, target)).to(pred.dtype)


def _class_target(pred: torch.Tensor, generator: torch.Generator, index: int) -> torch.Tensor:
    classes = pred.shape[-1]
    return torch.randint(classes, pred.shape[:-1], generator=generator).to(pred.device)


def _probability_target(pred: torch.Tensor, generator: torch.Generator, index: int) -> torch.Tensor:
    logits = torch.randn(pred.shape, generator=generator, dtype=pred.dtype).to(pred.device)
    probabilities = torch.softmax(logits, dim=-1)
    one_hot = torch.nn.functional.one_hot(_class_target(pred, generator, index), pred.shape[-1]).to(
        pred.dtype
    )
    rows = torch.arange(pred.numel() // pred.shape[-1], device=pred.device)
    is_one_hot = ((rows + index) % 2 == 0).view(*pred.shape[:-1], 1)
    return torch.where(is_one_hot, one_hot, probabilities)


def _call(case: _Case, method: str, function: Callable[..., Any], **inputs: torch.Tensor) -> Any:
    """Call `function` with `inputs` (positionally, in order); check it left them as they were."""
    before = {name: tensor.clone() for name, tensor in inputs.items()}
    try:
        result = function(*inputs.values())
    except Exception as error:
        case.fail(
            "runs_on_every_input", f"{method} raised {type(error).__name__}: {error}", cause=error
        )
    for name, tensor in inputs.items():
        if tensor.shape != before[name].shape or not torch.equal(tensor, before[name]):
            case.fail(
                "leaves_inputs_unmodified", f"{method} modified its argument {name!r} in place"
            )
    return result


class _Reference:
    """The derivative of Σ phi(x) with respect to x, in float64: by autograd through the
    component's own forward, or by central differences when autograd cannot follow it."""

    def __init__(self, phi: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor):
        self.phi, self.x = phi, x
        self.method = "autograd of forward"
        try:
            leaf = x.clone().requires_grad_(True)
            with torch.enable_grad():
                total = phi(leaf).sum()
            (self.grad,) = torch.autograd.grad(total, leaf)
        except RuntimeError:  # no graph: forward detached, left torch, or worked in place
            self.method = "central finite differences of forward"
            self.grad = self._central()

    def _shifted(self, index: int, sign: int) -> tuple[torch.Tensor, float]:
        x = self.x.clone()
        flat = x.view(-1)
        flat[index] += sign * _FD_STEP * max(1.0, abs(flat[index].item()))
        return x, flat[index].item()

    def _difference(self, index: int, left: int, right: int) -> float:
        """(Σ phi(x + right·h) − Σ phi(x + left·h)) / (actual step), along element `index`."""
        xl, at_left = (
            self._shifted(index, left) if left else (self.x, self.x.view(-1)[index].item())
        )
        xr, at_right = (
            self._shifted(index, right) if right else (self.x, self.x.view(-1)[index].item())
        )
        with torch.no_grad():
            change = (self.phi(xr) - self.phi(xl)).sum().item()
        return change / (at_right - at_left)

    def _central(self) -> torch.Tensor:
        values = [self._difference(i, -1, 1) for i in range(self.x.numel())]
        return torch.tensor(values, dtype=torch.float64, device=self.x.device).view(self.x.shape)

    def one_sided(self, index: int) -> tuple[float, float]:
        """The left and right derivatives along element `index` (they differ at a kink)."""
        return self._difference(index, -1, 0), self._difference(index, 0, 1)

    @property
    def tolerance(self) -> tuple[float, float]:
        return FD_TOLERANCE if self.method.startswith("central") else (0.0, 0.0)


@dataclass
class _Case:
    """One input of one check, named in every failure message."""

    check: str
    shape: Shape
    label: str
    dtype: torch.dtype = torch.float64
    recorder: _Recorder = field(default_factory=lambda: _Recorder(strict=True))

    def fail(
        self,
        name: str,
        message: str,
        cause: BaseException | None = None,
        figure: float | None = None,
    ) -> NoReturn:
        """Raise the failure of the named check (one of `CHECKS`) on this input."""
        raise _CaseFailed(
            name,
            f"{self.check}: {message}\n  input: shape {self.shape}, {self.dtype}, {self.label}",
            figure,
        ) from cause

    def check_tensor(self, method: str, out: Any, like: torch.Tensor) -> None:
        if not isinstance(out, torch.Tensor):
            self.fail(
                "keeps_shape_dtype_device",
                f"{method} returned {type(out).__name__}, not a torch.Tensor",
            )
        for attribute in ("shape", "dtype", "device"):
            got, expected = getattr(out, attribute), getattr(like, attribute)
            if got != expected:
                self.fail(
                    "keeps_shape_dtype_device",
                    f"{method} returned {attribute} {got}, expected {expected}",
                )

    def check_finite(self, method: str, out: torch.Tensor) -> None:
        bad = ~torch.isfinite(out)
        if bad.any():
            where = _first(bad)
            self.fail(
                "finite_outputs",
                f"{method} returned a non-finite value for finite inputs: "
                f"{out[where].item()} at index {where}",
                figure=float(bad.sum()),
            )

    def check_close(
        self,
        method: str,
        reference_name: str,
        actual: torch.Tensor,
        expected: torch.Tensor,
        x: torch.Tensor | None,
        check: str = "float32_matches_float64",
    ) -> None:
        """Fail where |actual − expected| > atol + rtol·|expected|, naming the worst element."""
        rtol, atol = TOLERANCES[self.dtype]
        error = (actual.to(torch.float64) - expected).abs()
        allowed = atol + rtol * expected.abs()
        bad = ~(error <= allowed)
        ratio = _largest_ratio(error, allowed)
        if bad.any():
            index = _worst(bad, error)
            at = "" if x is None else f", where the input is {x[index].item():.17g}"
            self.fail(
                check,
                f"{method} disagrees with {reference_name}: max abs error "
                f"{error[index].item():.3g} at index {index}{at} ({method} gave "
                f"{actual[index].item():.17g}, expected {expected[index].item():.17g}); "
                f"tolerance atol={atol:g}, rtol={rtol:g}",
                figure=ratio,
            )
        self.recorder.note(check, ratio)

    def check_gradient(self, grad: torch.Tensor, reference: _Reference) -> None:
        """Compare with the reference; at a kink accept anything between the one-sided slopes."""
        rtol, atol = (max(a, b) for a, b in zip(TOLERANCES[self.dtype], reference.tolerance))
        error = (grad.to(torch.float64) - reference.grad).abs()
        allowed = atol + rtol * reference.grad.abs()
        bad = ~(error <= allowed)
        accepted = torch.zeros_like(bad)
        for flat_index in bad.view(-1).nonzero().view(-1).tolist():
            left, right = reference.one_sided(flat_index)
            value = grad.reshape(-1)[flat_index].item()
            kink = abs(left - right) > 1e-3 * (1 + abs(left) + abs(right))
            slack = atol + rtol * max(abs(left), abs(right))
            if kink and min(left, right) - slack <= value <= max(left, right) + slack:
                bad.view(-1)[flat_index] = False
                accepted.view(-1)[flat_index] = True  # a subgradient: counts as no error
        ratio = _largest_ratio(torch.where(accepted, 0.0, error), allowed)
        if bad.any():
            index = _worst(bad, error)
            left, right = reference.one_sided(_flat(index, error.shape))
            self.fail(
                "backward_matches_reference",
                f"backward disagrees with {reference.method}: max abs error "
                f"{error[index].item():.3g} at index {index}, where the input is "
                f"{reference.x[index].item():.17g} (backward gave {grad[index].item():.17g}, "
                f"expected {reference.grad[index].item():.17g}; one-sided slopes {left:.6g}, "
                f"{right:.6g}); tolerance atol={atol:g}, rtol={rtol:g}",
                figure=ratio,
            )
        self.recorder.note("backward_matches_reference", ratio)


class _CaseFailed(CheckFailed):
    def __init__(self, name: str, message: str, figure: float | None):
        super().__init__(message, figure)
        self.name = name


@dataclass
class _Recorder:
    """The worst figure and the first failure of each named check, over every input."""

    strict: bool
    figures: dict[str, float] = field(default_factory=dict)
    failures: dict[str, CheckFailed] = field(default_factory=dict)

    def note(self, name: str, figure: float) -> None:
        self.figures[name] = max(figure, self.figures.get(name, 0.0))

    @contextlib.contextmanager
    def case(self) -> Iterator[None]:
        """One input: in strict mode its first failure propagates; otherwise it is recorded
        (the first of each check) and the input is abandoned."""
        try:
            yield
        except _CaseFailed as failure:
            if self.strict:
                raise
            self.failures.setdefault(failure.name, failure)
        except Exception as error:  # raised outside forward and backward, e.g. in autograd
            if self.strict:
                raise
            raised = CheckFailed(f"raised {type(error).__name__}: {error}")
            self.failures.setdefault("runs_on_every_input", raised)

    def results(self) -> list[CheckResult]:
        out = []
        for name, (measure, tolerance) in CHECKS.items():
            failure = self.failures.get(name)
            if failure is not None:
                figure = failure.figure
                out.append(CheckResult(name, False, figure, tolerance, measure, str(failure)))
            else:
                figure = self.figures.get(name, 0.0 if tolerance is not None else None)
                out.append(CheckResult(name, True, figure, tolerance, measure, ""))
        return out


def _largest_ratio(error: torch.Tensor, allowed: torch.Tensor) -> float:
    ratio = torch.nan_to_num(error / allowed, nan=math.inf)
    return float(ratio.max()) if ratio.numel() else 0.0


def _first(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(mask.nonzero()[0].tolist()) if mask.dim() else ()


def _worst(bad: torch.Tensor, error: torch.Tensor) -> tuple[int, ...]:
    """The index of the largest error among the `bad` elements (a NaN counts as the largest)."""
    flat = int(torch.where(bad, error.nan_to_num(math.inf), -1).view(-1).argmax())
    index = []
    for size in reversed(error.shape):
        flat, i = divmod(flat, size)
        index.append(i)
    return tuple(reversed(index))


def _flat(index: tuple[int, ...], shape: torch.Size) -> int:
    flat = 0
    for i, size in zip(index, shape):
        flat = flat * size + i
    return flat
