"""The built-in solver `quadratic_descent` against exact roots.

References: the closed-form roots (math.sqrt) for the example, and otherwise the roots of the given
float64 coefficients computed exactly enough by `decimal` at 60 digits (Decimal(float) is exact),
rounded once. Tolerances: 2 ulps (rel 4.5e-16) where the default descent refines to the last bit;
1e-12 relative (its default tol) for descents driven by a fixed lr or an optimizer, which stop
there; the brief's 12 significant digits for the example against the float formula.
"""

from __future__ import annotations

import math
import random
import sys
from decimal import Decimal, localcontext

import pytest
import torch

import nnrun
from nnrun.hyperparameters import hyperparameters
from nnrun.plugins.solvers import QuadraticDescent

EPS = sys.float_info.epsilon
TWO_ULPS = 2 * EPS
EXAMPLE = {"a": 1.0, "b": -6.0, "c": 4.0}
EXAMPLE_ROOTS = [3 - math.sqrt(5), 3 + math.sqrt(5)]


def exact_roots(a: float, b: float, c: float) -> list[float]:
    """Distinct real roots of the float64 polynomial, from the quadratic formula at 60 digits."""
    with localcontext() as context:
        context.prec = 60
        A, B, C = Decimal(a), Decimal(b), Decimal(c)
        if A == 0:
            return [float(-C / B)]
        D = B * B - 4 * A * C
        if D < 0:
            return []
        s = D.sqrt()
        return sorted({float((-B - s) / (2 * A)), float((-B + s) / (2 * A))})


def assert_roots(found: list[float], expected: list[float], rtol: float) -> None:
    assert len(found) == len(expected), (found, expected)
    for x, r in zip(found, expected):
        assert abs(x - r) <= rtol * abs(r), (found, expected, abs(x - r) / abs(r))


def with_roots(a: float, r1: float, r2: float) -> tuple[float, float, float]:
    return a, -a * (r1 + r2), a * r1 * r2


class GradientDescent(nnrun.Optimizer):
    """θ ← θ − lr·∇θ, written here so these tests need no optimizer plugin."""

    def __init__(self, params, lr: float = 0.05):
        super().__init__(params, lr=lr)

    def step(self) -> None:
        for p in self.params:
            p.data = p.data - self.lr * p.grad


class Adam(nnrun.Optimizer):
    """torch.optim.Adam's update (REFERENCE.md), without weight decay or amsgrad."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, lr=lr, betas=betas, eps=eps)

    def step(self) -> None:
        lr, (beta1, beta2), eps = (self.hyperparameters[k] for k in ("lr", "betas", "eps"))
        for p in self.params:
            state = self.state.setdefault(
                p, {"t": 0, "m": torch.zeros_like(p.data), "v": torch.zeros_like(p.data)}
            )
            state["t"] += 1
            t, g = state["t"], p.grad
            state["m"] = beta1 * state["m"] + (1 - beta1) * g
            state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
            denom = state["v"].sqrt() / math.sqrt(1 - beta2**t) + eps
            p.data = p.data - lr / (1 - beta1**t) * state["m"] / denom


# --- the default descent ---------------------------------------------------------------------


def test_example_roots_to_twelve_significant_digits_and_to_the_last_bit():
    result = QuadraticDescent(**EXAMPLE).solve()
    assert result.converged
    assert_roots(result.roots, EXAMPLE_ROOTS, rtol=1e-12)
    assert_roots(result.roots, exact_roots(1.0, -6.0, 4.0), rtol=TWO_ULPS)
    assert result.roots == [0.7639320225002103, 5.23606797749979]  # 3 ∓ √5 correctly rounded


@pytest.mark.parametrize("a", [1e-8, 1.0, 1e8, -3e-5])
@pytest.mark.parametrize(
    ("r1", "r2"),
    [
        (3 - math.sqrt(5), 3 + math.sqrt(5)),
        (1e-3, 1e6),
        (1e-6, 1e9),
        (-1e9, 2.5e-7),
        (-7e-4, -3e-4),
    ],
)
def test_roots_at_any_magnitude_to_the_last_bit_in_few_iterations(a, r1, r2):
    a, b, c = with_roots(a, r1, r2)
    result = QuadraticDescent(a, b, c).solve()
    assert result.converged
    assert_roots(result.roots, exact_roots(a, b, c), rtol=TWO_ULPS)
    assert all(0 < d.iterations <= 30 for d in result.descents)  # quadratic convergence


def test_example_at_scaled_magnitudes():
    for scale in (1e-300, 1e-8, 1e8, 1e300):
        result = QuadraticDescent(scale, -6 * scale, 4 * scale).solve()
        assert_roots(result.roots, EXAMPLE_ROOTS, rtol=1e-12)


def test_random_quadratics_match_their_exact_roots():
    rng = random.Random(0)
    for _ in range(200):
        r1, r2 = (rng.choice([-1, 1]) * 10 ** rng.uniform(-9, 9) for _ in range(2))
        if abs(r1 - r2) < 1e-6 * max(abs(r1), abs(r2)):
            continue  # nearly double: tested below
        a, b, c = with_roots(rng.choice([-1, 1]) * 10 ** rng.uniform(-12, 12), r1, r2)
        result = QuadraticDescent(a, b, c).solve()
        assert result.converged, (a, b, c)
        assert_roots(result.roots, exact_roots(a, b, c), rtol=TWO_ULPS)


@pytest.mark.parametrize("coefficients", [(1, 0, 1), (1, -6, 10), (-1e8, 0, -1e8), (1e-9, 1e-9, 1)])
def test_negative_discriminant_has_no_real_roots(coefficients):
    result = QuadraticDescent(*coefficients).solve()
    assert (result.roots, result.converged, result.iterations, result.descents) == ([], True, 0, [])


@pytest.mark.parametrize(("b", "c"), [(2.0, -3.0), (1e-8, 3e5), (-4e9, 1e-3), (2.0, 0.0)])
def test_linear_equation_has_its_one_root_from_one_descent(b, c):
    result = QuadraticDescent(0.0, b, c).solve()
    assert result.converged and len(result.descents) == 1
    assert_roots(result.roots, exact_roots(0.0, b, c), rtol=TWO_ULPS)


@pytest.mark.parametrize("a", [1.0, -2e-6])
@pytest.mark.parametrize("r", [3.0, 0.1, -1e-5, 12345.678])
def test_double_root_is_reported_once_to_about_an_ulp(a, r):
    """Both descents meet at the root; exact evaluation of f takes them to ~1 ulp (the brief
    asks for 1e-8 relative, what float evaluation of f would allow)."""
    result = QuadraticDescent(a, -2 * a * r, a * r * r).solve()
    assert result.converged and len(result.descents) == 2
    assert_roots(result.roots, [r], rtol=TWO_ULPS)


def test_double_root_at_zero():
    result = QuadraticDescent(3.0, 0.0, 0.0).solve()
    assert result.converged and len(result.roots) == 1 and abs(result.roots[0]) < 1e-29


def test_close_but_distinct_roots_stay_two():
    a, b, c = with_roots(1.0, 1.0, 1.0000001)
    result = QuadraticDescent(a, b, c).solve()
    assert result.converged
    assert_roots(result.roots, exact_roots(a, b, c), rtol=TWO_ULPS)


def test_descents_start_on_either_side_of_the_vertex_and_residuals_fall_to_zero():
    result = QuadraticDescent(**EXAMPLE).solve()
    left, right = result.descents
    assert left.start < 3.0 < right.start  # the vertex −b/2a
    assert (left.end, right.end) == tuple(result.roots)
    assert result.iterations == left.iterations + right.iterations > 0
    for descent in result.descents:
        assert descent.converged and len(descent.residuals) == descent.iterations
        assert all(r1 > r2 for r1, r2 in zip(descent.residuals, descent.residuals[1:]))
        assert descent.residuals[-1] <= 1e-14


def test_solving_is_deterministic():
    solver = QuadraticDescent(**EXAMPLE)
    assert solver.solve() == solver.solve() == QuadraticDescent(**EXAMPLE).solve()
    first, second = (solver.solve(lambda params: Adam(params, lr=0.1)) for _ in range(2))
    assert first == second


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize("c", [0.0, 5.0])
def test_degenerate_equation_is_rejected_at_construction(c):
    with pytest.raises(ValueError, match="degenerate equation: a and b are both 0"):
        QuadraticDescent(0.0, 0.0, c)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"a": math.inf}, "Invalid coefficient a"),
        ({"b": math.nan}, "Invalid coefficient b"),
        ({"c": -math.inf}, "Invalid coefficient c"),
        ({"lr": 0.0}, "Invalid learning rate: 0.0"),
        ({"lr": -0.1}, "Invalid learning rate: -0.1"),
        ({"lr": math.inf}, "Invalid learning rate"),
        ({"tol": 0.0}, "Invalid tolerance"),
        ({"tol": 1e-20}, "Invalid tolerance"),
        ({"tol": 1.0}, "Invalid tolerance"),
        ({"max_iter": 0}, "Invalid max_iter: 0"),
        ({"max_iter": 2.5}, "Invalid max_iter"),
    ],
)
def test_invalid_hyperparameters_are_rejected_at_construction(changes, message):
    with pytest.raises(ValueError, match=message):
        QuadraticDescent(**{**EXAMPLE, **changes})


# --- a fixed lr, and descents driven by an optimizer -----------------------------------------


def test_fixed_lr_is_gradient_descent_in_the_scaled_variable():
    """The own descent with lr is exactly the plain gradient-descent optimizer's, step for step."""
    own = QuadraticDescent(**EXAMPLE, lr=0.05).solve()
    driven = QuadraticDescent(**EXAMPLE).solve(lambda params: GradientDescent(params, lr=0.05))
    assert own == driven
    assert own.converged and own.iterations > 20 * QuadraticDescent(**EXAMPLE).solve().iterations
    assert_roots(own.roots, EXAMPLE_ROOTS, rtol=1e-12)


@pytest.mark.parametrize("lr", [10.0, 1.0])
def test_too_large_lr_stops_and_reports_non_convergence(lr):
    result = QuadraticDescent(**EXAMPLE, lr=lr).solve()
    assert not result.converged
    assert result.iterations < 50  # stopped when y overflowed, not at max_iter


def test_too_small_lr_reports_non_convergence_at_max_iter():
    result = QuadraticDescent(**EXAMPLE, lr=1e-6, max_iter=50).solve()
    assert not result.converged and result.iterations == 2 * 50
    assert not any(d.converged for d in result.descents)


@pytest.mark.parametrize(
    "make", [lambda p: GradientDescent(p, lr=0.05), lambda p: Adam(p, lr=0.1)], ids=["gd", "adam"]
)
@pytest.mark.parametrize("scale", [1.0, 1e-8, 1e8])
def test_optimizer_drives_the_descent_alike_at_any_magnitude(make, scale):
    result = QuadraticDescent(scale, -6 * scale, 4 * scale).solve(make)
    assert result.converged
    assert_roots(result.roots, EXAMPLE_ROOTS, rtol=1e-12)
    reference = QuadraticDescent(**EXAMPLE).solve(make)
    assert abs(result.iterations - reference.iterations) <= 2  # lr means the same at all scales


def test_optimizer_gets_one_float64_parameter_per_descent_and_its_gradient():
    seen = []

    class Recording(GradientDescent):
        def step(self) -> None:
            (param,) = self.params
            seen.append((self, param.data.dtype, param.data.numel(), param.grad.shape))
            assert param.grad.shape == param.data.shape
            super().step()

    QuadraticDescent(**EXAMPLE).solve(lambda params: Recording(params, lr=0.05))
    assert {entry[1:3] for entry in seen} == {(torch.float64, 1)}
    assert len({id(entry[0]) for entry in seen}) == 2  # a fresh optimizer for each descent


def test_optimizer_that_brings_both_descents_to_one_root_is_not_converged():
    class JumpsRight(GradientDescent):
        """Moves the left start right of the vertex first (y ↦ 8 in the left root's scaled
        variable, y = x/2⁻¹: x = 4)."""

        def step(self) -> None:
            if not self.state:
                self.state[self.params[0]] = {"jumped": True}
                if self.params[0].data.item() < 0:
                    self.params[0].data = torch.full_like(self.params[0].data, 8.0)
            else:
                super().step()

    result = QuadraticDescent(**EXAMPLE).solve(lambda params: JumpsRight(params, lr=0.05))
    assert_roots(result.roots, EXAMPLE_ROOTS[1:], rtol=1e-12)
    assert not result.converged
    assert [d.converged for d in result.descents] == [False, True]


def test_double_root_with_adam_is_reported_honestly():
    result = QuadraticDescent(1.0, -2.0, 1.0, max_iter=500).solve(lambda p: Adam(p, lr=0.1))
    assert not result.converged  # first-order descent on g ∝ (x − 1)⁴ is far too slow for it
    assert [d.iterations for d in result.descents] == [500, 500]
    assert result.roots == []  # where the descents stopped is not a root: none is reported
    left, right = (d.end for d in result.descents)  # still on their way, one from each side
    assert 0.8 < left < 1.0 < right < 1.2
    assert all("not within tol = 1e-12 of a root" in d.reason for d in result.descents)
    assert result.status == "ok"  # slow, not diverged


def test_lr_together_with_an_optimizer_is_a_config_error():
    with pytest.raises(nnrun.ConfigError, match=r"set lr there"):
        QuadraticDescent(**EXAMPLE, lr=0.1).solve(lambda params: Adam(params, lr=0.1))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_optimizer_on_cuda_parameters():
    devices = []

    class OnDevice(Adam):
        def step(self) -> None:
            devices.append(self.params[0].data.device.type)
            super().step()

    with torch.device("cuda"):
        result = QuadraticDescent(**EXAMPLE).solve(lambda params: OnDevice(params, lr=0.1))
    assert set(devices) == {"cuda"} and result.converged
    assert_roots(result.roots, EXAMPLE_ROOTS, rtol=1e-11)


# --- the registry ----------------------------------------------------------------------------


def test_registry_provides_quadratic_descent_with_its_hyperparameters():
    cls = nnrun.load_registry().solvers["quadratic_descent"]
    assert cls is QuadraticDescent and issubclass(cls, nnrun.Solver)
    assert [str(h) for h in hyperparameters(cls, "solvers")] == [
        "a", "b", "c", "lr=None", "tol=1e-12", "max_iter=10000", "starts=None"
    ]  # fmt: skip


@pytest.mark.parametrize("starts", [[2.0, 4.0], [-100.0, 100.0]])
def test_explicit_starts_give_one_descent_each_and_the_same_roots(starts):
    result = QuadraticDescent(**EXAMPLE, starts=starts).solve()
    assert [d.start for d in result.descents] == starts
    assert_roots(result.roots, EXAMPLE_ROOTS, rtol=1e-12)


def test_starts_must_be_finite_and_non_empty():
    for starts in ([], [math.inf]):
        with pytest.raises(ValueError, match="Invalid starts"):
            QuadraticDescent(**EXAMPLE, starts=starts)


def test_registry_adam_drives_the_example():
    optimizers = nnrun.load_registry().optimizers
    if "adam" not in optimizers:
        pytest.skip("the adam optimizer plugin is not installed yet")
    result = QuadraticDescent(**EXAMPLE).solve(lambda params: optimizers["adam"](params, lr=0.1))
    assert result.converged
    assert_roots(result.roots, EXAMPLE_ROOTS, rtol=1e-12)


# --- the extremes, checked against correctly rounded exact roots -----------------------------


def correctly_rounded_roots(a: float, b: float, c: float) -> list[float]:
    """The float64 nearest each real root of the float coefficients (±inf beyond range), from the
    cancellation-free formula at 80 digits: q = −(b + sign(b)·√D)/2, roots q/a and c/q."""
    with localcontext() as context:
        context.prec, context.Emax, context.Emin = 80, 10**6, -(10**6)
        A, B, C = Decimal(a), Decimal(b), Decimal(c)
        if A == 0:
            return [float(-C / B)]
        D = B * B - 4 * A * C
        if D < 0:
            return []
        q = -(B + (1 if B >= 0 else -1) * D.sqrt()) / 2
        return sorted({float(q / A), float(C / q) if q else 0.0})


@pytest.mark.parametrize(
    ("a", "b", "c", "expected"),
    [
        (1.0, -1e300, 1.0, [1e-300, 1e300]),
        (1.0, -1.7e308, 1.0, [1 / 1.7e308, 1.7e308]),  # the small root is subnormal
        (1.0, -1e300, 1e-300, [0.0, 1e300]),  # 1e-600 rounds to 0, where f changes sign
        (1e-300, 1.0, -1e-300, [-1e300, 1e-300]),
        (-1.0, 1e-300, 1e-300, [-1e-150, 1e-150]),
    ],
)
def test_extreme_roots_are_the_correctly_rounded_ones(a, b, c, expected):
    result = QuadraticDescent(a, b, c).solve()
    assert result.converged and result.status == "ok" and not result.reasons
    assert result.roots == correctly_rounded_roots(a, b, c) == pytest.approx(expected, rel=1e-15)


def test_a_root_beyond_float64s_range_is_left_out_and_said_why():
    result = QuadraticDescent(1e-320, -6.0, 4.0).solve()  # roots 2/3 and 6e320
    assert result.roots == [2 / 3] and not result.converged
    assert result.reasons == ["the root near 6.00e+320 is beyond float64's range (±1.8e+308)"]
    assert all(math.isfinite(d.end) and d.converged for d in result.descents)


def test_the_vertex_is_not_reported_as_a_root():
    result = QuadraticDescent(**EXAMPLE, starts=[3.0]).solve()  # g' = 0 at the vertex
    assert result.roots == [] and not result.converged and result.status == "ok"
    (reason,) = result.reasons
    assert "stopped at 3, where |f(x)| = 5" in reason


def test_a_diverging_descent_is_diverged_and_finds_no_root():
    result = QuadraticDescent(**EXAMPLE, lr=0.1, starts=[-1000.0, 1000.0]).solve()
    assert result.status == "diverged" and not result.converged and result.roots == []
    assert all(d.diverged and "diverged" in d.reason for d in result.descents)


def test_random_quadratics_of_any_magnitude_give_the_correctly_rounded_roots():
    rng = random.Random(1)
    for _ in range(300):
        a, b, c = (rng.choice([-1, 1]) * 10 ** rng.uniform(-200, 200) for _ in range(3))
        expected = correctly_rounded_roots(a, b, c)
        result = QuadraticDescent(a, b, c).solve()
        representable = [r for r in expected if math.isfinite(r)]
        assert result.roots == representable, (a, b, c)
        assert result.converged == (representable == expected), (a, b, c)


def test_a_stop_request_interrupts_the_descent_at_the_next_iteration():
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > 5

    result = QuadraticDescent(**EXAMPLE, lr=1e-6).solve(should_stop=should_stop)
    assert result.status == "interrupted" and not result.converged and result.roots == []
    assert result.iterations == 5 and len(asked) == 7  # the second descent stops at once


def test_a_solve_stopped_by_a_signal_is_interrupted_in_the_summary(tmp_path, monkeypatch):
    """execute_run hands the solver the signal handler's stop flag (set here as SIGINT would)."""
    from nnrun.experiment.execute import execute_run
    from nnrun.experiment.reporting import SilentReporter
    from nnrun.experiment.rundir import RunDirectory
    from nnrun.experiment.train import StopFlag

    path = tmp_path / "roots.toml"
    path.write_text(
        '[experiment]\nname = "r"\ntask = "solve"\n'
        '[solver]\nname = "quadratic_descent"\na = 1.0\nb = -6.0\nc = 4.0\n'
    )
    (run,) = nnrun.load_experiment(path).runs
    monkeypatch.setattr(StopFlag, "requested", True)
    registry = nnrun.load_registry()
    out = RunDirectory.create(tmp_path / "out", force=False, resume=False).path
    entry = execute_run(run, out, registry, SilentReporter(), resume=False)
    assert entry["status"] == "interrupted" and entry["iterations"] == 0
    assert entry["roots"] == [] and not entry["converged"]


# --- many equations at once: the batched path against the one-equation path -----------------


def batch_equations() -> list[tuple[float, float, float]]:
    rng = random.Random(2)
    equations = [(1.0, -6.0, 4.0), (1.0, 0.0, 1.0), (0.0, 2.0, -3.0), (3.0, 0.0, 0.0)]
    equations += [(1.0, -2 * r, r * r) for r in (3.0, 0.1, -1e-5)]  # double roots
    equations += [(1.0, -1e300, 1.0), (1.0, -1.7e308, 1.0), (1e-300, 1.0, -1e-300)]
    equations += [(1e-320, -6.0, 4.0), (-1.0, 1e-300, 1e-300), with_roots(1.0, 1.0, 1.0000001)]
    for _ in range(200):
        r1, r2 = (rng.choice([-1, 1]) * 10 ** rng.uniform(-9, 9) for _ in range(2))
        equations.append(with_roots(rng.choice([-1, 1]) * 10 ** rng.uniform(-12, 12), r1, r2))
    for _ in range(100):
        equations.append(
            tuple(rng.choice([-1, 1]) * 10 ** rng.uniform(-200, 200) for _ in range(3))
        )
    equations += [tuple(rng.gauss(0, 1) for _ in range(3)) for _ in range(100)]
    return equations


def test_batched_solve_equals_the_one_equation_solve_lane_by_lane():
    from nnrun.plugins.solvers import solve_quadratics

    equations = batch_equations()
    a, b, c = (torch.tensor(v, dtype=torch.float64) for v in zip(*equations))
    batch = solve_quadratics(a, b, c)
    assert not bool(batch.scalar.all())  # most lanes took the vectorised path
    for i, equation in enumerate(equations):
        one = QuadraticDescent(*equation).solve()
        roots = [x for x in batch.roots[i].tolist() if not math.isnan(x)]
        assert (roots, bool(batch.converged[i])) == (one.roots, one.converged), equation
        assert int(batch.count[i]) == len(one.roots)
