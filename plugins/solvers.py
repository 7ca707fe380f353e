"""Built-in solvers: `quadratic_descent` finds the real roots of a·x² + b·x + c by gradient descent.

The roots are where g(x) = f(x)² reaches its minimum 0, so each root is found by descending g from
a start on its side of the vertex. Two things make that work for coefficients of any magnitude and
finish at machine precision: the problem is rewritten, without rounding, in a variable where the
roots and coefficients are O(1), and f is evaluated exactly and rounded once, so |f(x)| keeps
decreasing down to the last bit, even near a double root, where float arithmetic would drown it
in rounding noise √ε away from the root.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch

import nnrun
from nnrun.errors import ConfigError
from nnrun.parameter import Parameter
from nnrun.solver import Descent, OptimizerFactory, Solver, SolveResult

_EPS = sys.float_info.epsilon
#: Distance to the root (in the scaled variable) below which a descent toward 0 stops: the
#: approach to the double root 0 of a·x² is geometric and would otherwise run into underflow.
_ZERO = 2.0**-100

_Step = Callable[[float, float, float], float]


@dataclass(frozen=True)
class ScaledQuadratic:
    """f(x) = a·x² + b·x + c rewritten as f(s·y) = K·h(y) with h(y) = A·y² + B·y + C.

    s = 2ᵏ is the power of two nearest the root bound max(|b/a|, √|c/a|) (|c/b| when a = 0), so
    the roots are O(1) in y, and K = max(|a|·s², |b|·s, |c|), so the largest of |A|, |B|, |C| is 1.
    A, B, C are exact fractions and s a power of two, so h carries exactly the information of f,
    y = x/s loses nothing, and proportional coefficients give the very same h.
    """

    A: Fraction
    B: Fraction
    C: Fraction
    k: int
    K: Fraction

    @classmethod
    def of(cls, a: float, b: float, c: float) -> ScaledQuadratic:
        log2 = {name: math.log2(abs(v)) for name, v in (("a", a), ("b", b), ("c", c)) if v != 0}
        if "a" in log2:
            bounds = [log2["b"] - log2["a"]] if "b" in log2 else []
            bounds += [(log2["c"] - log2["a"]) / 2] if "c" in log2 else []
        else:
            bounds = [log2["c"] - log2["b"]] if "c" in log2 else []
        k = round(max(bounds, default=0))
        s = Fraction(2) ** k
        terms = (Fraction(a) * s * s, Fraction(b) * s, Fraction(c))
        K = max(map(abs, terms))
        return cls(*(t / K for t in terms), k, K)

    def h(self, y: float) -> tuple[float, float]:
        """h(y) and h'(y) = 2A·y + B, each computed exactly and rounded once."""
        Y = Fraction(y)
        return _round((self.A * Y + self.B) * Y + self.C), _round(2 * self.A * Y + self.B)

    def curvature(self, h: float, dh: float) -> float:
        """g''(y) = 2·h'² + 4A·h of g = h², from h(y) and h'(y)."""
        return 2 * dh * dh + 4 * self._A * h

    @functools.cached_property
    def _A(self) -> float:
        return float(self.A)

    def x(self, y: float) -> float:
        """x = s·y, exact (saturating to ±inf)."""
        try:
            return math.ldexp(y, self.k)
        except OverflowError:
            return math.copysign(math.inf, y)

    def f_abs(self, h: float) -> float:
        """|f(x)| = K·|h(y)|."""
        return abs(h) if math.isinf(h) else _round(abs(Fraction(h)) * self.K)


def _round(value: Fraction) -> float:
    """The float nearest `value`, or ±inf beyond the largest one (where float() would raise)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


class QuadraticDescent(Solver):
    """Real roots of a·x² + b·x + c by gradient descent on g(x) = f(x)², one descent per root.

    In y = x/s, where f(s·y) = K·h(y) has O(1) roots and coefficients (see `ScaledQuadratic`)::

        D = B² − 4AC (exact);  w = 2ε·(B² + 4|AC|), what rounding a, b, c to float64 may change in D
        A = 0:    one descent, from y = 0
        D < −w:   no real roots (descending g would only find the vertex, where f ≠ 0)
        else:     two descents, from the vertex −B/2A ± 2·max(|B/A|, √|C/A|), outside both roots
        each descent, for t = 1 … max_iter:
            g' = 2·h·h',  g'' = 2·h'² + 4A·h                       (h, h' exact, rounded once)
            y ← y − η·g'   with η = 1/g'' (default), η = lr (if given),
                           or one step of the optimizer built from [solver.optimizer]
            default: stop when |h| no longer decreases (y is the closest float64 gets)
            lr, optimizer: stop when |g'/g''| ≤ tol·|y| (or y stops moving, or it diverges)

    The default η = 1/g'' is the step that the local curvature of g calls for (Newton's step on g):
    it converges quadratically to a simple root and by a factor 2/3 per iteration to a double root,
    where g ∝ (y − r)⁴ is flat. From a start outside the roots each step moves toward the root on
    its side without overshooting (g is convex there), so |f| decreases at every iteration. |g'/g''|
    estimates the distance to the root (within a factor 3 at a double root): a descent has
    converged when it is at most tol·|y| (+2⁻¹⁰⁰, so that the root 0 of a·x² is reached).

    `lr` and the optimizer act on y, so a given lr behaves alike at every magnitude of a, b, c
    (a fixed lr must suit the steep start, as g grows like y⁴: lr ≤ 0.1 works). Two ends
    closer than √w/|A| (how far rounding the coefficients can split a double root, about 2e-8 of
    the roots' scale) plus the tolerance are one double root, reported once. When both descents
    end at the same one of two roots, the one that crossed the vertex has not converged.

    Args:
        a, b, c: the coefficients (finite; a and b not both 0).
        lr: fixed step size in y instead of the curvature step, for the own descent only.
        tol: relative error at which a root counts as found; the default descent refines past it.
        max_iter: most iterations of each descent.
        starts: starting points in x, one descent each, instead of the automatic two (one per
            side of the vertex); to study how the start changes the iterations.
    """

    def __init__(
        self,
        a: float,
        b: float,
        c: float,
        lr: float | None = None,
        tol: float = 1e-12,
        max_iter: int = 10_000,
        starts: list[float] | None = None,
    ):
        for name, value in (("a", a), ("b", b), ("c", c)):
            if not math.isfinite(value):
                raise ValueError(f"Invalid coefficient {name}: {value}; it must be finite")
        if a == 0 and b == 0:
            raise ValueError(
                f"degenerate equation: a and b are both 0, so the equation reads {c} = 0, "
                f"which is {'never' if c else 'always'} true; there is no root to find"
            )
        if lr is not None and not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not _EPS <= tol < 1:
            raise ValueError(f"Invalid tolerance: {tol}; it must be in [{_EPS}, 1)")
        if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
            raise ValueError(f"Invalid max_iter: {max_iter}; it must be an integer >= 1")
        self.a, self.b, self.c = float(a), float(b), float(c)
        if starts is not None and (not starts or not all(math.isfinite(x) for x in starts)):
            raise ValueError(f"Invalid starts: {starts}; give one or more finite starting points")
        self.lr, self.tol, self.max_iter = lr, tol, max_iter
        self.starts = None if starts is None else [float(x) for x in starts]
        self.problem = ScaledQuadratic.of(self.a, self.b, self.c)

    def solve(self, optimizer: OptimizerFactory | None = None) -> SolveResult:
        if optimizer is not None and self.lr is not None:
            raise ConfigError(
                "quadratic_descent: lr is the step of the solver's own descent; "
                "with [solver.optimizer], set lr there instead"
            )
        p = self.problem
        vertex = None
        if p.A == 0:
            starts = [0.0]
        else:
            discriminant = p.B**2 - 4 * p.A * p.C
            w = self._rounding_of_D()
            if discriminant < -w:
                return SolveResult(roots=[], iterations=0, converged=True)
            center = float(-p.B / (2 * p.A))
            distance = 2 * max(float(abs(p.B / p.A)), math.sqrt(abs(p.C / p.A))) or 2.0
            starts = [center - distance, center + distance]
            if discriminant > w:  # two distinct roots, one on each side of the vertex
                vertex = center
        if self.starts is not None:
            starts = [math.ldexp(x, -p.k) for x in self.starts]
        ends, descents = zip(*(self._descend(start, optimizer) for start in starts))
        roots = self._distinct(ends)
        if vertex is not None and len(roots) < 2:  # both found the same one of two roots
            for start, end, descent in zip(starts, ends, descents):
                if (end - vertex) * (start - vertex) <= 0:
                    descent.converged = False  # this one crossed the vertex to get there
        return SolveResult(
            roots=[p.x(y) for y in roots],
            iterations=sum(d.iterations for d in descents),
            converged=all(d.converged for d in descents),
            descents=list(descents),
        )

    def _descend(self, y: float, optimizer: OptimizerFactory | None) -> tuple[float, Descent]:
        p, start = self.problem, y
        polish = optimizer is None and self.lr is None
        step = self._optimizer_step(y, optimizer) if optimizer else self._own_step
        stop_tol = 0.0 if polish else self.tol
        h, dh = p.h(y)
        residuals: list[float] = []
        while len(residuals) < self.max_iter and self._error(h, dh) > stop_tol * abs(y) + _ZERO:
            y_next = step(y, h, dh)
            if not math.isfinite(y_next):
                y = y_next
                residuals.append(math.inf)
                break
            h_next, dh_next = p.h(y_next)
            if polish and not abs(h_next) < abs(h):
                # Far from a root (a start between the roots) the curvature step can overshoot:
                # halve it until |f| decreases. Near the root nothing decreases it any more: y is
                # as close to the root as float64 can tell.
                found = self._backtrack(y, y_next, abs(h))
                if found is None:
                    break
                y_next, h_next, dh_next = found
            if optimizer is None and y_next == y:
                break  # a fixed step below half an ulp: y would never move again
            y, h, dh = y_next, h_next, dh_next
            residuals.append(p.f_abs(h))
        converged = math.isfinite(y) and self._error(h, dh) <= self.tol * abs(y) + _ZERO
        return y, Descent(p.x(start), p.x(y), len(residuals), converged, residuals)

    def _backtrack(
        self, y: float, y_next: float, h_abs: float
    ) -> tuple[float, float, float] | None:
        """The first of the steps (y_next − y)/2ᵏ, k = 1 … 60, that lowers |h|, or None."""
        for _ in range(60):
            y_next = y + (y_next - y) / 2
            if y_next == y:
                return None
            h_next, dh_next = self.problem.h(y_next)
            if abs(h_next) < h_abs:
                return y_next, h_next, dh_next
        return None

    def _own_step(self, y: float, h: float, dh: float) -> float:
        """y − η·g'(y) with η = lr, or η = 1/g''(y); g'' > 0 all along a descent from outside the
        roots, and from a start between them η = 1/(2h'² + 4|A·h|) until g turns convex."""
        grad = 2 * h * dh
        if self.lr is not None:
            return y - self.lr * grad
        curvature = self.problem.curvature(h, dh)
        if curvature <= 0:  # between the roots, where g is concave: a step of |curvature|'s size
            curvature = 2 * dh * dh + 4 * abs(self.problem._A * h)
        return y - grad / curvature if curvature > 0 else y

    def _optimizer_step(self, y: float, optimizer: OptimizerFactory) -> _Step:
        """A step that hands g'(y) to the optimizer built for this descent, which moves y."""
        param = Parameter(torch.tensor([y], dtype=torch.float64))
        opt = optimizer([param])

        def step(y: float, h: float, dh: float) -> float:
            param.grad = torch.full_like(param.data, 2 * h * dh)
            opt.step()
            return param.data.item()

        return step

    def _error(self, h: float, dh: float) -> float:
        """Newton's estimate |g'/g''| of the distance to the minimum of g (inf where g'' ≤ 0)."""
        if h == 0:
            return 0.0
        curvature = self.problem.curvature(h, dh)
        return abs(2 * h * dh / curvature) if curvature > 0 else math.inf

    def _rounding_of_D(self) -> float:
        """Twice the first-order change in D = B² − 4AC from rounding A, B, C by ε/2 each."""
        p = self.problem
        return 2 * _EPS * float(p.B**2 + 4 * abs(p.A * p.C))

    def _distinct(self, ends: tuple[float, ...]) -> list[float]:
        """Finite ends in ascending order; two that one double root explains become their mean."""
        ends = sorted(y for y in ends if math.isfinite(y))
        if len(ends) == 2:
            width = math.sqrt(self._rounding_of_D()) / float(abs(self.problem.A))  # √D/|A| at D = w
            width += 6 * (self.tol * max(map(abs, ends)) + _ZERO)  # each within 3·tol
            if ends[1] - ends[0] <= width:
                return [(ends[0] + ends[1]) / 2]
        return ends


@nnrun.hookimpl
def register_solvers(register) -> None:
    register("quadratic_descent", QuadraticDescent)
