"""The optimizer half of the conformance kit: `check_optimizer(cls, reference=None, **hyperparameters)`.

Every check builds `cls(params, **hyperparameters)` over `nnrun.Parameter`s of shapes (), (5,) and
(2, 3, 4) in float32 and float64, feeds it gradients and watches what it does with them:

- with a `reference`, the trajectories match it step for step (tolerances below);
- a parameter whose `.grad` is None is left exactly as it was;
- gradients that are exactly zero never produce NaN or inf;
- `state_dict()` survives `torch.save`/`torch.load(weights_only=True)`, and a fresh optimizer that
  loads it continues on exactly the trajectory of the one that never stopped (bitwise on CPU);
- changing `optimizer.lr` after construction changes the steps (schedulers rely on it);
- parameters keep their dtype, shape and device, on CUDA too when it is available;
- a small convex quadratic ends lower than it started.

A failure raises AssertionError saying which property broke, for which dtype and shape, at which
step. Only `__init__` and `step()` are required of the optimizer: the rest is `nnrun.Optimizer`'s.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterator
from typing import Any

import torch

from nnrun.optimizer import Optimizer
from nnrun.parameter import Parameter
from nnrun.testing.results import Check, CheckFailed, run_checks, worst_ratio

#: Steps over which trajectories are compared.
STEPS = 200
SHAPES: tuple[tuple[int, ...], ...] = ((), (5,), (2, 3, 4))
DTYPES = (torch.float32, torch.float64)
#: (rtol, atol) per dtype: `torch.testing.assert_close`'s defaults, which torch's own optimizer
#: tests use to compare its implementations (per-tensor, foreach, fused) with one another.
TOLERANCES = {torch.float32: (1.3e-6, 1e-5), torch.float64: (1e-7, 1e-7)}
#: In every gradient sequence the parameter at this index has no gradient every fourth step, and
#: every tenth step all gradients are exactly zero.
INTERMITTENT = 1

#: A reference written as a function updates one parameter in place:
#: `step(param, grad, state, step_index, **hyperparameters)`, with `state` a dict it owns (empty
#: at first) and `step_index` the 1-based count of the steps this parameter has taken.
ReferenceStep = Callable[..., None]


#: Builds the optimizer under test over a list of parameters.
Build = Callable[[list[Parameter]], Optimizer]


def check_optimizer(
    cls: type[Optimizer], reference: type | ReferenceStep | None = None, **hyperparameters: Any
) -> None:
    """Run every check on `cls` built with `hyperparameters`; raise AssertionError on the first
    broken property. `reference` is a class built like torch.optim's (`reference(tensors,
    **hyperparameters)`, then `.step()` reading each tensor's `.grad`), or a `ReferenceStep`
    function; it gets exactly the `hyperparameters` given here, so its defaults are checked too.
    """
    run_checks(optimizer_checks(cls, reference, hyperparameters), strict=True)


def optimizer_checks(
    cls: type[Optimizer] | Build,
    reference: type | ReferenceStep | None,
    hyperparameters: dict[str, Any],
    name: str | None = None,
) -> list[Check]:
    """The checks of `check_optimizer`, in its order, for `nnrun verify` to run one by one.
    `cls` may also be a function building the optimizer from its parameters (a component with
    nested specs); `hyperparameters` then go to the reference only."""
    build: Build
    if isinstance(cls, type):
        name = name or cls.__name__
        optimizer_cls = cls

        def build(params: list[Parameter]) -> Optimizer:
            return optimizer_cls(params, **hyperparameters)

    else:
        build, name = cls, name or repr(cls)
    hp = hyperparameters
    checks: list[Check] = []
    exact = "largest change where none is allowed"
    for dtype in DTYPES if reference is not None else ():
        rtol, atol = TOLERANCES[dtype]
        checks.append(
            Check(
                f"matches_reference[{_dtype(dtype)}]",
                functools.partial(_matches_reference, name, build, reference, hp, dtype),
                f"worst |Δ| / (atol {atol:g} + rtol {rtol:g}·|reference|) over {STEPS} steps",
                1.0,
            )
        )
    for dtype in DTYPES:
        checks += [
            Check(
                f"leaves_params_without_grad[{_dtype(dtype)}]",
                functools.partial(_leaves_params_without_grad, name, build, dtype),
                exact,
                0.0,
            ),
            Check(
                f"finite_on_zero_gradients[{_dtype(dtype)}]",
                functools.partial(_zero_gradients_stay_finite, name, build, dtype),
                "non-finite parameter values",
                0.0,
            ),
            Check(
                f"state_dict_round_trip[{_dtype(dtype)}]",
                functools.partial(_state_dict_round_trip, name, build, dtype),
                "largest difference from the run that never stopped",
                0.0,
            ),
            Check(
                f"decreases_a_quadratic[{_dtype(dtype)}]",
                functools.partial(_decreases_a_quadratic, name, build, hp, dtype),
                f"loss after {STEPS} steps / loss at the start (must be below)",
                1.0,
            ),
        ]
    checks.append(
        Check(
            "reads_lr_at_each_step",
            functools.partial(_reads_lr_at_each_step, name, build),
            "largest difference made by changing lr (must be above)",
            0.0,
        )
    )
    if torch.cuda.is_available():
        for dtype in DTYPES:
            rtol, atol = TOLERANCES[dtype]
            checks.append(
                Check(
                    f"agrees_on_cuda[{_dtype(dtype)}]",
                    functools.partial(_agrees_on_cuda, name, build, dtype),
                    f"worst |Δ| / (atol {atol:g} + rtol {rtol:g}·|CPU value|)",
                    1.0,
                )
            )
    return checks


# --- The properties -----------------------------------------------------------------------------


def _matches_reference(name, build, reference, hyperparameters, dtype) -> float:
    ours = _parameters(dtype)
    optimizer = build(ours)
    start = [p.data.clone() for p in ours]
    if isinstance(reference, type):
        tensors = [torch.nn.Parameter(x.clone()) for x in start]
        theirs = reference(tensors, **hyperparameters)
        values = [t.detach() for t in tensors]
    else:
        values = [x.clone() for x in start]
        states: list[dict] = [{} for _ in values]
        counts = [0 for _ in values]
    rtol, atol = TOLERANCES[dtype]
    worst = 0.0
    for step, grads in enumerate(_gradients(dtype), start=1):
        _assign(ours, grads)
        optimizer.step()
        if isinstance(reference, type):
            for tensor, grad in zip(tensors, grads):
                tensor.grad = None if grad is None else grad.clone()
            theirs.step()
        else:
            for i, (value, grad) in enumerate(zip(values, grads)):
                if grad is not None:
                    counts[i] += 1
                    reference(value, grad.clone(), states[i], counts[i], **hyperparameters)
        for param, expected in zip(ours, values):
            _expect_kept(name, param, expected, step, "matches the reference")
            ratio = worst_ratio(param.data, expected, rtol, atol)
            worst = max(worst, ratio)
            if not torch.allclose(param.data, expected, rtol=rtol, atol=atol):
                _fail(
                    name,
                    "matches the reference",
                    param.data,
                    step,
                    f"{_difference(param.data, expected)} (rtol {rtol}, atol {atol})",
                    ratio,
                )
    return worst


def _leaves_params_without_grad(name, build, dtype) -> float:
    params = _parameters(dtype)
    untouched = Parameter(torch.linspace(-1, 1, 6, dtype=dtype).reshape(2, 3))
    before = untouched.data.clone()
    optimizer = build([*params, untouched])
    for step, grads in enumerate(_gradients(dtype, steps=20), start=1):
        _assign(params, grads)
        untouched.grad = None
        optimizer.step()
        if not torch.equal(untouched.data, before):
            _fail(
                name,
                "leaves a parameter whose .grad is None untouched",
                untouched.data,
                step,
                _difference(untouched.data, before),
                _largest(untouched.data, before),
            )
    return 0.0


def _zero_gradients_stay_finite(name, build, dtype) -> float:
    params = _parameters(dtype)
    optimizer = build(params)
    generator = torch.Generator().manual_seed(1)
    for step in range(1, 31):
        # Zero from the start (0/0 in a fresh state), then zero after nonzero steps.
        zero = step <= 10 or step > 20
        for param in params:
            g = _random(param.shape, generator).to(dtype)
            param.grad = torch.zeros_like(param.data) if zero else g
        optimizer.step()
        for param in params:
            if not torch.isfinite(param.data).all():
                what = "exactly zero" if zero else "nonzero after zeros"
                _fail(
                    name,
                    "keeps parameters finite when gradients are exactly zero",
                    param.data,
                    step,
                    f"gradient {what} gave {param.data.flatten()[:6].tolist()}",
                    float((~torch.isfinite(param.data)).sum()),
                )
    return 0.0


def _state_dict_round_trip(name, build, dtype) -> float:
    params = _parameters(dtype)
    original = build(params)
    grads = list(_gradients(dtype, steps=40))
    for g in grads[:25]:
        _assign(params, g)
        original.step()
    if (
        "lr" in original.hyperparameters
    ):  # a resumed run must get the rate it had, not the initial one
        original.lr = original.lr * 0.5
    buffer = io.BytesIO()
    torch.save(original.state_dict(), buffer)
    buffer.seek(0)
    try:
        saved = torch.load(buffer, weights_only=True)
    except Exception as error:
        raise CheckFailed(
            f"{name}: state_dict() must hold only tensors and plain Python values, so that "
            f"torch.load(weights_only=True) can read a checkpoint: {error}"
        ) from None
    copies = [Parameter(p.data.clone()) for p in params]
    restored = build(copies)
    restored.load_state_dict(saved)
    for step, g in enumerate(grads[25:], start=26):
        _assign(params, g)
        _assign(copies, g)
        original.step()
        restored.step()
        for param, copy in zip(params, copies):
            if not torch.equal(param.data, copy.data):
                _fail(
                    name,
                    "continues identically after state_dict()/load_state_dict() into a fresh "
                    "instance (state kept outside self.state, or hyperparameters cached outside "
                    "self.hyperparameters?)",
                    param.data,
                    step,
                    _difference(copy.data, param.data),
                    _largest(copy.data, param.data),
                )
    return 0.0


def _reads_lr_at_each_step(name, build) -> float | None:
    a, b = _parameters(torch.float64), _parameters(torch.float64)
    first, second = build(a), build(b)
    if "lr" not in second.hyperparameters:
        return None
    for step, grads in enumerate(_gradients(torch.float64, steps=20), start=1):
        if step == 11:
            second.lr = second.lr * 0.1 if second.lr else 1e-3
        _assign(a, grads)
        _assign(b, grads)
        first.step()
        second.step()
    change = max(_largest(p.data, q.data) for p, q in zip(a, b))
    if change == 0:
        raise CheckFailed(
            f"{name}: setting optimizer.lr after construction had no effect over 10 steps; "
            f"step() must read self.hyperparameters at each step (schedulers set optimizer.lr)",
            0.0,
        )
    return change


def _decreases_a_quadratic(name, build, hyperparameters, dtype) -> float:
    """f(θ) = ½·Σ a·(θ − c)²; with maximize=True the optimizer is given ∇(−f) to ascend."""
    generator = torch.Generator().manual_seed(2)
    params = _parameters(dtype)
    curvature = [0.5 + 1.5 * _random(p.shape, generator, torch.rand).to(dtype) for p in params]
    centre = [_random(p.shape, generator).to(dtype) for p in params]
    sign = -1.0 if hyperparameters.get("maximize", False) else 1.0

    def loss() -> float:
        return sum(
            float((0.5 * a * (p.data - c) ** 2).sum()) for p, a, c in zip(params, curvature, centre)
        )

    optimizer = build(params)
    start = loss()
    for _ in range(STEPS):
        for p, a, c in zip(params, curvature, centre):
            p.grad = sign * a * (p.data - c)
        optimizer.step()
    end = loss()
    ratio = end / start if start else float("inf")
    if not end < start:
        raise CheckFailed(
            f"{name}: does not decrease a convex quadratic [{_dtype(dtype)}, shapes "
            f"{list(SHAPES)}, {STEPS} steps]: loss went from {start:.6g} to {end:.6g}",
            ratio,
        )
    return ratio


def _agrees_on_cuda(name, build, dtype) -> float:
    device = torch.device("cuda")
    on_cpu = _parameters(dtype)
    on_gpu = [Parameter(p.data.to(device)) for p in on_cpu]
    cpu_optimizer, gpu_optimizer = build(on_cpu), build(on_gpu)
    rtol, atol = TOLERANCES[dtype]
    worst = 0.0
    for step, grads in enumerate(_gradients(dtype, steps=50), start=1):
        _assign(on_cpu, grads)
        _assign(on_gpu, [None if g is None else g.to(device) for g in grads])
        cpu_optimizer.step()
        gpu_optimizer.step()
        for gpu, cpu in zip(on_gpu, on_cpu):
            _expect_kept(name, gpu, cpu.data.to(device), step, "works on CUDA")
            ratio = worst_ratio(gpu.data.cpu(), cpu.data, rtol, atol)
            worst = max(worst, ratio)
            if not torch.allclose(gpu.data.cpu(), cpu.data, rtol=rtol, atol=atol):
                _fail(
                    name,
                    "agrees on CUDA with the same steps on CPU",
                    gpu.data,
                    step,
                    _difference(gpu.data.cpu(), cpu.data),
                    ratio,
                )
    for param, state in gpu_optimizer.state.items():
        for key, value in state.items():
            if (
                isinstance(value, torch.Tensor)
                and value.dim() > 0
                and value.device != param.data.device
            ):
                raise CheckFailed(
                    f"{name}: state[{key!r}] of a CUDA parameter is on {value.device}"
                )
    return worst


# --- Helpers ------------------------------------------------------------------------------------


def _parameters(dtype: torch.dtype) -> list[Parameter]:
    generator = torch.Generator().manual_seed(0)
    return [Parameter(_random(shape, generator).to(dtype)) for shape in SHAPES]


def _random(shape, generator: torch.Generator, draw=torch.randn) -> torch.Tensor:
    """Drawn in float64 so that the float32 and float64 runs see the same numbers."""
    return draw(shape, generator=generator, dtype=torch.float64)


def _gradients(dtype: torch.dtype, steps: int = STEPS) -> Iterator[list[torch.Tensor | None]]:
    """Reproducible gradients for `SHAPES`: magnitudes from 1e-3 to 10, exact zeros every tenth
    step, and no gradient for the parameter at INTERMITTENT every fourth step."""
    generator = torch.Generator().manual_seed(3)
    scales = (1.0, 1e-3, 10.0)
    for step in range(1, steps + 1):
        grads: list[torch.Tensor | None] = []
        for i, shape in enumerate(SHAPES):
            g = scales[i] * _random(shape, generator)
            if step % 10 == 0:
                g = torch.zeros_like(g)
            grads.append(None if i == INTERMITTENT and step % 4 == 2 else g.to(dtype))
        yield grads


def _assign(params: list[Parameter], grads: list[torch.Tensor | None]) -> None:
    for param, grad in zip(params, grads):
        param.grad = None if grad is None else grad.clone()


def _expect_kept(name: str, param: Parameter, like: torch.Tensor, step: int, what: str) -> None:
    data = param.data
    if not isinstance(data, torch.Tensor) or (data.dtype, data.shape, data.device) != (
        like.dtype,
        like.shape,
        like.device,
    ):
        got = (
            f"{data.dtype}, shape {tuple(data.shape)}, on {data.device}"
            if isinstance(data, torch.Tensor)
            else type(data).__name__
        )
        _fail(name, what, like, step, f"the parameter became {got}")


def _difference(actual: torch.Tensor, expected: torch.Tensor) -> str:
    delta = (actual.double() - expected.double()).abs()
    if delta.dim() == 0:
        return f"got {actual.item()!r}, expected {expected.item()!r}"
    delta = torch.nan_to_num(delta, nan=float("inf"))
    index = tuple(int(i) for i in torch.unravel_index(delta.argmax(), delta.shape))
    return (
        f"largest difference at index {index}: got {actual[index].item()!r}, "
        f"expected {expected[index].item()!r}"
    )


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _largest(actual: torch.Tensor, expected: torch.Tensor) -> float:
    delta = torch.nan_to_num((actual.double() - expected.double()).abs(), nan=float("inf"))
    return float(delta.max()) if delta.numel() else 0.0


def _fail(
    name: str, prop: str, tensor: torch.Tensor, step: int, detail: str, figure: float | None = None
) -> None:
    raise CheckFailed(
        f"{name}: {prop} [{_dtype(tensor.dtype)}, shape {tuple(tensor.shape)}, step {step}]: {detail}",
        figure,
    )
