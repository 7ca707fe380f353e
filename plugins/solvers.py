"""Built-in solvers: `quadratic_descent` finds the real roots of a·x² + b·x + c by gradient descent.

The roots are where g(x) = f(x)² reaches its minimum 0, so each root is found by descending g from
a start outside the roots on its side. Three things make that work for coefficients of any
magnitude and finish at machine precision: each descent runs, without rounding, in a variable
where its own root and the coefficients are O(1) (the two roots may be 600 orders of magnitude
apart), f is evaluated exactly and rounded once, so |f(x)| keeps decreasing down to the last bit,
and a root is reported only once its exact residual says it is one.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, ClassVar

import torch

import nnrun
from nnrun.errors import ConfigError
from nnrun.parameter import Parameter
from nnrun.solver import (
    BatchSolveResult,
    Descent,
    OptimizerFactory,
    ShouldStop,
    Solver,
    SolveResult,
)

_EPS = sys.float_info.epsilon
#: Distance to the root (in the scaled variable) below which a descent toward 0 stops: the
#: approach to the double root 0 of a·x² is geometric and would otherwise run into underflow.
_ZERO = 2.0**-100

_Step = Callable[["ScaledQuadratic", float, float, float], float]


@dataclass(frozen=True)
class ScaledQuadratic:
    """f(x) = a·x² + b·x + c rewritten as f(s·y) = K·h(y) with h(y) = A·y² + B·y + C.

    s = 2ᵏ is the power of two nearest the magnitude of the root a descent looks for, so that root
    is O(1) in y, and K = max(|a|·s², |b|·s, |c|), so the largest of |A|, |B|, |C| is 1. A, B, C
    are exact fractions and s a power of two, so h carries exactly the information of f, y = x/s
    loses nothing, and proportional coefficients give the very same h.
    """

    A: Fraction
    B: Fraction
    C: Fraction
    k: int
    K: Fraction

    @classmethod
    def of(cls, a: float, b: float, c: float, k: int) -> ScaledQuadratic:
        """The problem in y = x/2ᵏ."""
        s = Fraction(2) ** k
        terms = (Fraction(a) * s * s, Fraction(b) * s, Fraction(c))
        K = max(map(abs, terms))
        A, B, C = (t / K for t in terms)
        return cls(A, B, C, k, K)

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


def _log2(value: Fraction) -> int:
    """⌊log₂|value|⌋ within one (value ≠ 0), for values beyond float64's range too."""
    return abs(value.numerator).bit_length() - value.denominator.bit_length()


def _sqrt(value: Fraction) -> Fraction:
    """√value (value ≥ 0) to about 64 significant bits: enough to place a start and a scale."""
    shift = max(0, 128 - 2 * _log2(value)) if value else 0
    shift += shift % 2
    root = math.isqrt(value.numerator * 2**shift // value.denominator)
    return Fraction(root, 2 ** (shift // 2))


def _outside(root: Fraction, other: Fraction) -> Fraction:
    """A start beyond `root`, away from the other root: −root or 3·root (−other for root 0)."""
    if root == 0:
        return -other
    return root + 2 * abs(root) * (1 if root > other else -1)


def _show(value: Fraction) -> str:
    """A short decimal for any magnitude (6e+320 included, where float() would overflow)."""
    return f"{Decimal(value.numerator) / Decimal(value.denominator):.3g}"


def _round(value: Fraction) -> float:
    """The float nearest `value`, or ±inf beyond the largest one (where float() would raise)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


class QuadraticDescent(Solver):
    """Real roots of a·x² + b·x + c by gradient descent on g(x) = f(x)², one descent per root.

    With D = b² − 4ac (exact) and w = 2ε·(b² + 4|ac|), what rounding a, b, c to float64 may change
    in D::

        a = 0:    one descent, from x = 0, toward −c/b
        D < −w:   no real roots (descending g would only find the vertex, where f ≠ 0)
        |D| ≤ w:  a double root r = −b/2a: two descents, from r ± 2·max(|r|, √|c/a|)
        D > w:    two roots r (estimated exactly to 64 bits); each descent starts outside both,
                  at r + 2|r| on the side away from the other root (−r or 3r)
        a root beyond float64's range (6e320 for a = 1e-320, b = −6, c = 4) gets no descent:
                  the result is not converged and its reason says which root is missing
        each descent runs in y = x/2ᵏ, 2ᵏ the power of two nearest its root, where
                  f(2ᵏ·y) = K·h(y) has O(1) coefficients (see `ScaledQuadratic`); for t = 1 … max_iter:
            g' = 2·h·h',  g'' = 2·h'² + 4A·h                       (h, h' exact, rounded once)
            y ← y − η·g'   with η = 1/g'' (default), η = lr (if given),
                           or one step of the optimizer built from [solver.optimizer]
            default: stop when |h| no longer decreases (y is the closest float64 gets)
            lr, optimizer: stop when |g'/g''| ≤ tol·|y| (or y stops moving, or it diverges)
        a descent that stopped within tol is refined by exact Newton steps on f in x (or twice
                  Newton's step, where that lowers |f| more: a double root), to the
                  float64 nearest the root, and then checked: its end x is a root only if f(x) is
                  exactly 0, the exact f changes sign between x and a float neighbour, or
                  |f(x)| ≤ 2ε·(|a|x² + |b||x| + |c|) (x is a root of a, b, c perturbed by 2ε,
                  which is how a double root shows); otherwise it is not converged, with a reason

    The default η = 1/g'' is the step that the local curvature of g calls for (Newton's step on g):
    it converges quadratically to a simple root and by a factor 2/3 per iteration to a double root,
    where g ∝ (y − r)⁴ is flat. From a start outside the roots each step moves toward the root on
    its side without overshooting (g is convex there), so |f| decreases at every iteration. |g'/g''|
    estimates the distance to the root (within a factor 3 at a double root): a descent has
    stopped within tol when it is at most tol·|y| (+2⁻¹⁰⁰, so that the root 0 of a·x² is reached).

    `lr` and the optimizer act on y, so a given lr behaves alike at every magnitude of a, b, c
    (a fixed lr must suit the steep start, as g grows like y⁴: lr ≤ 0.1 works). A descent whose
    iterate becomes non-finite or ends with |f| above its start has diverged. When both descents
    end at the same one of two roots, the one that crossed the vertex has not converged. A double
    root is reported once, as the mean of the two descents' ends.

    Args:
        a, b, c: the coefficients (finite; a and b not both 0).
        lr: fixed step size in y instead of the curvature step, for the own descent only.
        tol: relative error at which a descent stops; the default descent refines past it.
        max_iter: most iterations of each descent.
        starts: starting points in x, one descent each, instead of the automatic ones; each runs
            in the scale of the root on its side of the vertex. To study how the start changes
            the iterations.
    """

    verify_hyperparameters: ClassVar[dict[str, Any]] = {
        "a": 1.0,
        "b": -3.0,
        "c": 2.0,
    }  # what `nnrun verify` solves

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
        self.A, self.B, self.C = Fraction(self.a), Fraction(self.b), Fraction(self.c)

    def solve(
        self, optimizer: OptimizerFactory | None = None, should_stop: ShouldStop | None = None
    ) -> SolveResult:
        if optimizer is not None and self.lr is not None:
            raise ConfigError(
                "quadratic_descent: lr is the step of the solver's own descent; "
                "with [solver.optimizer], set lr there instead"
            )
        A, B, C = self.A, self.B, self.C
        reasons: list[str] = []
        double = False
        vertex: Fraction | None = None
        if A == 0:
            roots = [-C / B]
            plan = [(Fraction(0), roots[0])]
        else:
            disc = B * B - 4 * A * C
            width = 2 * Fraction(_EPS) * (B * B + 4 * abs(A * C))
            if disc < -width:
                return SolveResult(roots=[], iterations=0, converged=True)
            vertex = -B / (2 * A)
            if disc <= width:  # one double root (rounding a, b, c may have split or removed it)
                double, roots = True, [vertex]
                distance = 2 * max(abs(vertex), _sqrt(abs(C / A))) or Fraction(1)
                plan = [(vertex - distance, vertex), (vertex + distance, vertex)]
            else:
                q = -(B + (1 if B >= 0 else -1) * _sqrt(disc)) / 2  # no cancellation
                roots = sorted([q / A, C / q])
                plan = [(_outside(r, other), r) for r, other in zip(roots, roots[::-1])]
        far = [r for r in roots if math.isinf(_round(r))]
        for r in far:
            reasons.append(
                f"the root near {_show(r)} is beyond float64's range (±{sys.float_info.max:.3g})"
            )
        plan = [(s, r) for s, r in plan if r not in far]
        if self.starts is not None:
            plan = [
                (Fraction(x), self._root_on_side(x, roots, vertex, double)) for x in self.starts
            ]
        stop = should_stop or (lambda: False)
        descents = [self._descend(start, root, optimizer, stop) for start, root in plan]
        interrupted = any(d.reason == "interrupted" for d in descents)
        if vertex is not None and not double and not interrupted:
            self._flag_shared_root(descents, vertex)
        found = sorted({d.end for d in descents if d.converged})
        if double and len(found) > 1:  # one double root, perhaps split by rounding: their mean
            mean = (found[0] + found[1]) / 2
            found = [mean if self._not_a_root(mean) is None else found[0]]
        reasons += [d.reason for d in descents if d.reason and d.reason != "interrupted"]
        status = "interrupted" if interrupted else "ok"
        if any(d.diverged for d in descents) and not interrupted:
            status = "diverged"
        return SolveResult(
            roots=found,
            iterations=sum(d.iterations for d in descents),
            converged=not interrupted and not far and all(d.converged for d in descents),
            descents=descents,
            reasons=reasons,
            status=status,
        )

    def _root_on_side(
        self, x: float, roots: list[Fraction], vertex: Fraction | None, double: bool
    ) -> Fraction:
        """The root a descent from x heads for: the one on x's side of the vertex."""
        if vertex is None or double or len(roots) < 2:
            return roots[0]
        return roots[0] if x < vertex else roots[-1]

    def _flag_shared_root(self, descents: list[Descent], vertex: Fraction) -> None:
        """Two roots, both descents at the same one: the one that crossed the vertex failed."""
        if len(descents) != 2 or not all(d.converged for d in descents):
            return
        if descents[0].end != descents[1].end:
            return
        for descent in descents:
            if (Fraction(descent.end) - vertex) * (Fraction(descent.start) - vertex) <= 0:
                descent.converged = False
                descent.reason = (
                    f"the descent from {descent.start:.6g} crossed the vertex and found the "
                    f"other descent's root {descent.end:.17g}"
                )

    def _descend(
        self, start: Fraction, root: Fraction, optimizer: OptimizerFactory | None, stop: ShouldStop
    ) -> Descent:
        """One descent from `start` in the scale of `root`, then the exact refinement and check."""
        k = _log2(root) if root else _log2(self._scale_of_zero())
        p = ScaledQuadratic.of(self.a, self.b, self.c, k)
        x_start = _round(start)
        y = _round(start / Fraction(2) ** k)
        if not math.isfinite(y):
            reason = f"the start {x_start:.6g} is out of range in the scale of its root"
            return Descent(x_start, x_start, 0, False, [], reason)
        polish = optimizer is None and self.lr is None
        step = self._optimizer_step(y, optimizer) if optimizer else self._own_step
        stop_tol = 0.0 if polish else self.tol
        h, dh = p.h(y)
        first = p.f_abs(h)
        residuals: list[float] = []
        while len(residuals) < self.max_iter and self._error(p, h, dh) > stop_tol * abs(y) + _ZERO:
            if stop():
                return Descent(x_start, p.x(y), len(residuals), False, residuals, "interrupted")
            y_next = step(p, y, h, dh)
            if not math.isfinite(y_next):
                y = y_next
                residuals.append(math.inf)
                break
            h_next, dh_next = p.h(y_next)
            if polish and not abs(h_next) < abs(h):
                # Far from a root (a start between the roots) the curvature step can overshoot:
                # halve it until |f| decreases. Near the root nothing decreases it any more: y is
                # as close to the root as float64 can tell.
                found = self._backtrack(p, y, y_next, abs(h))
                if found is None:
                    break
                y_next, h_next, dh_next = found
            if optimizer is None and y_next == y:
                break  # a fixed step below half an ulp: y would never move again
            y, h, dh = y_next, h_next, dh_next
            residuals.append(p.f_abs(h))
        descent = Descent(x_start, p.x(y), len(residuals), False, residuals)
        if not math.isfinite(y) or p.f_abs(h) > first:
            descent.diverged = True
            descent.reason = (
                f"the descent from {x_start:.6g} diverged after {len(residuals)} iterations"
            )
        elif self._error(p, h, dh) > self.tol * abs(y) + _ZERO:
            descent.reason = (
                f"the descent from {x_start:.6g} stopped at {descent.end:.6g}, where |f(x)| = "
                f"{p.f_abs(h):.3g}, after {len(residuals)} iterations: not within "
                f"tol = {self.tol:g} of a root"
            )
        else:
            descent.end = self._refine(descent.end)
            descent.reason = self._not_a_root(descent.end)
            descent.converged = descent.reason is None
        return descent

    def _scale_of_zero(self) -> Fraction:
        """The root 0 (c = 0) is approached in the scale of the other root, −b/a (or 1)."""
        return -self.B / self.A if self.A and self.B else Fraction(1)

    def _f(self, x: Fraction) -> Fraction:
        return (self.A * x + self.B) * x + self.C

    def _refine(self, x: float) -> float:
        """Exact Newton steps on f from x while |f| falls, then the float neighbour walk: the
        float64 nearest the root (or, where f has no sign change, the one with the least |f|)."""
        best = abs(self._f(Fraction(x)))
        for _ in range(100):
            if best == 0:
                return x
            X = Fraction(x)
            slope = 2 * self.A * X + self.B
            if slope == 0:
                break
            # Newton's step, and twice it, which is Newton's for a double root (f ∝ (x − r)²)
            steps = [_round(X - m * self._f(X) / slope) for m in (1, 2)]
            x_next = min(
                (v for v in steps if math.isfinite(v)),
                key=lambda v: abs(self._f(Fraction(v))),
                default=None,
            )
            if x_next is None:
                break
            value = abs(self._f(Fraction(x_next)))
            if not value < best:
                break
            x, best = x_next, value
        for _ in range(64):
            X = Fraction(x)
            low, high = math.nextafter(x, -math.inf), math.nextafter(x, math.inf)
            below, above = self._f((X + Fraction(low)) / 2), self._f((X + Fraction(high)) / 2)
            if below == 0 or above == 0 or (below > 0) != (above > 0):
                return x  # the root lies in x's rounding interval: x is the nearest float
            candidates = [v for v in (low, high) if math.isfinite(v)]
            x_next = min(candidates, key=lambda v: abs(self._f(Fraction(v))))
            if not abs(self._f(Fraction(x_next))) < best:
                return x
            x, best = x_next, abs(self._f(Fraction(x_next)))
        return x

    def _not_a_root(self, x: float) -> str | None:
        """None if x is a root by its exact residual, else the reason it is not."""
        if not math.isfinite(x):
            return f"the descent ended at {x}, not a root"
        X = Fraction(x)
        value = self._f(X)
        if value == 0:
            return None
        for neighbour in (math.nextafter(x, -math.inf), math.nextafter(x, math.inf)):
            if math.isfinite(neighbour) and (self._f(Fraction(neighbour)) > 0) != (value > 0):
                return None  # the exact f changes sign between x and its neighbour
        scale = abs(self.A) * X * X + abs(self.B * X) + abs(self.C)
        if abs(value) <= 2 * Fraction(_EPS) * scale:
            return None
        return f"the descent ended at x = {x:.17g}, where |f(x)| = {_show(abs(value))}: not a root"

    def _backtrack(
        self, p: ScaledQuadratic, y: float, y_next: float, h_abs: float
    ) -> tuple[float, float, float] | None:
        """The first of the steps (y_next − y)/2ᵏ, k = 1 … 60, that lowers |h|, or None."""
        for _ in range(60):
            y_next = y + (y_next - y) / 2
            if y_next == y:
                return None
            h_next, dh_next = p.h(y_next)
            if abs(h_next) < h_abs:
                return y_next, h_next, dh_next
        return None

    def _own_step(self, p: ScaledQuadratic, y: float, h: float, dh: float) -> float:
        """y − η·g'(y) with η = lr, or η = 1/g''(y); g'' > 0 all along a descent from outside the
        roots, and from a start between them η = 1/(2h'² + 4|A·h|) until g turns convex."""
        grad = 2 * h * dh
        if self.lr is not None:
            return y - self.lr * grad
        curvature = p.curvature(h, dh)
        if curvature <= 0:  # between the roots, where g is concave: a step of |curvature|'s size
            curvature = 2 * dh * dh + 4 * abs(p._A * h)
        return y - grad / curvature if curvature > 0 else y

    def _optimizer_step(self, y: float, optimizer: OptimizerFactory) -> _Step:
        """A step that hands g'(y) to the optimizer built for this descent, which moves y."""
        param = Parameter(torch.tensor([y], dtype=torch.float64))
        opt = optimizer([param])

        def step(p: ScaledQuadratic, y: float, h: float, dh: float) -> float:
            param.grad = torch.full_like(param.data, 2 * h * dh)
            opt.step()
            return param.data.item()

        return step

    def _error(self, p: ScaledQuadratic, h: float, dh: float) -> float:
        """Newton's estimate |g'/g''| of the distance to the minimum of g (inf where g'' ≤ 0)."""
        if h == 0:
            return 0.0
        curvature = p.curvature(h, dh)
        return abs(2 * h * dh / curvature) if curvature > 0 else math.inf


# --- many equations at once ------------------------------------------------------------------

_SPLIT = 134217729.0  # 2²⁷ + 1: Dekker's splitting constant for float64
#: Coefficient exponents (after scaling the largest to [1, 2)) below which a lane goes to the
#: one-equation solve: the error-free products below need no underflow.
_TINY = 2.0**-400
#: Equations per block of the vectorised solve: its work arrays then fit in a core's cache.
_BLOCK = 16384
_GAMMA4_SQ = (4 * _EPS / (1 - 4 * _EPS)) ** 2


def _two_sum(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """s + e = x + y exactly (Knuth)."""
    s = x + y
    z = s - x
    return s, (x - (s - z)) + (y - z)


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    t = _SPLIT * x
    high = t - (t - x)
    return high, x - high


def _two_prod(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """p + e = x·y exactly (Dekker; no FMA in torch), barring over- and underflow."""
    p = x * y
    xh, xl = _split(x)
    yh, yl = _split(y)
    return p, xl * yl - (((p - xh * yh) - xl * yh) - xh * yl)


def _comp_horner(
    A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """h(y) = (A·y + B)·y + C by compensated Horner, and a bound on its error (Graillat, Langlois
    and Louvet: |error| ≤ ε|h| + γ₄²·(|A|y² + |B||y| + |C|)), so the sign of h is certain
    where |h| exceeds the bound."""
    p1, e1 = _two_prod(A, y)
    s1, e2 = _two_sum(p1, B)
    p2, e3 = _two_prod(s1, y)
    s2, e4 = _two_sum(p2, C)
    h = s2 + ((e1 + e2) * y + e3 + e4)
    scale = (A.abs() * y + B.abs()) * y.abs() + C.abs()
    return h, 2 * _EPS * h.abs() + 2 * _GAMMA4_SQ * scale


def _descend_batch(
    A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, y: torch.Tensor, max_iter: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The default descent of `QuadraticDescent._descend` on every lane: y ← y − g'/g'' on
    g = h², while |h| decreases (h rounded, not exact: the certification below makes up for it).
    Returns the ends and the iterations. A lane that stops is frozen in place, and the work
    arrays are compacted to the lanes still moving only once those are fewer than half of them
    (compacting at every iteration, where some lane almost always stops, cost more than the
    arithmetic it saved)."""
    n = y.numel()
    end = y.clone()
    iterations = torch.zeros(n, dtype=torch.int64)
    index = torch.arange(n)
    moves = torch.zeros(n, dtype=torch.int64)
    A2 = 2 * A
    h = (A * y + B) * y + C
    h_abs = h.abs()
    live = torch.ones(n, dtype=torch.bool)
    for _ in range(max_iter):
        # From a start outside the roots h has a's sign all along, so g''/2 = h'² + 2A·h > 0
        # and the step needs no guard; where rounding breaks that, |h| does not fall, the lane
        # stops, and the certification sends it to the one-equation solve. |h| falling also
        # covers the scalar loop's other stops (y not moving, h = 0).
        dh = torch.addcmul(B, A2, y)
        step = h * dh
        step /= torch.addcmul(dh.mul_(dh), A2, h)
        y_next = y - step
        h_next = torch.addcmul(B, A, y_next).mul_(y_next).add_(C)
        h_next_abs = h_next.abs()
        live &= h_next_abs < h_abs
        moves += live
        left = int(live.sum())
        if left == live.numel():
            y, h, h_abs = y_next, h_next, h_next_abs
            continue
        y, h = y_next.where(live, y), h_next.where(live, h)
        h_abs = h_next_abs.where(live, h_abs)
        if 2 * left < live.numel():  # write out the lanes that stopped, keep the others
            done = (~live).nonzero().squeeze(1)
            end[index[done]], iterations[index[done]] = y[done], moves[done]
            if left == 0:
                return end, iterations
            keep = live.nonzero().squeeze(1)
            index, A, B, C, A2 = index[keep], A[keep], B[keep], C[keep], A2[keep]
            y, h, h_abs, moves, live = y[keep], h[keep], h_abs[keep], moves[keep], live[keep]
    end[index], iterations[index] = y, moves
    return end, iterations


def _round_correctly(
    A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, y: torch.Tensor, walk: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """The float nearest the root near each y, as `QuadraticDescent._refine` finds it: the exact
    h changes sign between the midpoints to y's float neighbours. Signs are taken where the
    compensated value is certain; a lane still undecided after `walk` moves is flagged.
    Near the root h(y ± d) = h(y) ± h'(y)·d + A·d², with h(y) compensated and the small terms in
    plain float (their rounding error is counted in the bound)."""
    done = torch.zeros(y.numel(), dtype=torch.bool)
    y = y.clone()
    active = torch.arange(y.numel())
    for _ in range(walk):
        Ya, Aa, Ba, Ca = y[active], A[active], B[active], C[active]
        h, bound = _comp_horner(Aa, Ba, Ca, Ya)
        dh = 2 * Aa * Ya + Ba
        low = (torch.nextafter(Ya, Ya.new_tensor(-math.inf)) - Ya) / 2  # exact, < 0
        high = (torch.nextafter(Ya, Ya.new_tensor(math.inf)) - Ya) / 2
        at_low = h + dh * low + Aa * low * low
        at_high = h + dh * high + Aa * high * high
        slack = bound + 4 * _EPS * (dh * high).abs()
        sure = (at_low.abs() > slack) & (at_high.abs() > slack)
        changes = sure & ((at_low > 0) != (at_high > 0))
        done[active[changes]] = True
        # no sign change, both sure: move one ulp toward the smaller |h| (h is monotone here),
        # or take Newton's step on the compensated h where the root is further than an ulp (the
        # plain-float descent stalls up to |h|'s rounding error / |h'| away, many ulps when the
        # two roots are close) — `_refine`'s exact Newton steps, to the same float
        move = sure & ~changes
        step_down = move & (at_low.abs() < at_high.abs())
        step_up = move & ~step_down
        newton = Ya - h / dh
        far = move & ((newton - Ya).abs() > 4 * high.abs()) & newton.isfinite()
        Ya = torch.where(
            far,
            newton,
            torch.where(step_down, low * 2 + Ya, torch.where(step_up, high * 2 + Ya, Ya)),
        )
        y[active] = Ya
        active = active[move]
        if active.numel() == 0:
            break
    return y, done


def _tiny(v: torch.Tensor) -> torch.Tensor:
    """Nonzero and below `_TINY`: such a coefficient sends its lane to the one-equation solve."""
    return (v != 0) & (v.abs() < _TINY)


def _solve_block(
    A0: torch.Tensor,
    B0: torch.Tensor,
    C0: torch.Tensor,
    D0: torch.Tensor,
    max_iter: int,
    roots: torch.Tensor,
    count: torch.Tensor,
    iterations: torch.Tensor,
    lanes: torch.Tensor,
) -> torch.Tensor:
    """The vectorised solve of equations with two clearly distinct roots (`solve_quadratics`),
    written into `roots`, `count` and `iterations` at `lanes`; returns which lanes it solved."""
    q = -(B0 + torch.where(B0 >= 0, 1.0, -1.0) * D0.sqrt()) / 2
    r = torch.stack([q / A0, C0 / q])  # (2, m): each lane's two roots, the other one below
    other = r.flip(0)
    start = r + 2 * r.abs() * torch.where(r > other, 1.0, -1.0)
    _, k = torch.frexp(r)
    k = k - 1  # the power of two nearest below |r|
    terms = [
        torch.ldexp(A0.expand_as(k), 2 * k),
        torch.ldexp(B0.expand_as(k), k),
        C0.expand_as(k),
    ]
    _, j = torch.frexp(torch.maximum(torch.maximum(terms[0].abs(), terms[1].abs()), terms[2].abs()))
    A, B, C = (torch.ldexp(t, 1 - j).reshape(-1) for t in terms)
    y0 = torch.ldexp(start, -k).reshape(-1)
    fine = ~(_tiny(A) | _tiny(B) | _tiny(C)).reshape(2, -1).any(0)
    ends, its = _descend_batch(A, B, C, y0, max_iter)
    ends, certain = _round_correctly(A, B, C, ends)
    x = torch.ldexp(ends.reshape(2, -1), k)
    ok = fine & certain.reshape(2, -1).all(0) & x.isfinite().all(0) & (x[0] != x[1])
    x = x.sort(0).values
    take = lanes[ok]
    roots[take] = x[:, ok].T
    count[take] = 2
    iterations[take] = its.reshape(2, -1).sum(0)[ok]
    return ok


def solve_quadratics(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, max_iter: int = 10_000
) -> BatchSolveResult:
    """`QuadraticDescent(a[i], b[i], c[i]).solve()` for every i at once, with the same roots
    and converged flags (a test compares them lane by lane).

    Lanes with two clearly distinct roots and coefficients within 2⁴⁰⁰ of each other (the bulk)
    run the same default descent on tensors: the same plan (discriminant as an exact double-double
    against the same width, starts −r or 3r, the variable y = x/2ᵏ and h = f/2ʲ, both powers of
    two, so nothing is rounded), the same step 1/g'', the same stopping rule; the exact refinement
    becomes Newton steps on the compensated h and a vectorised sign test at the float
    neighbours' midpoints, by error-free products and sums with a proven error bound. A negative discriminant is decided the same way. Every
    other lane (a = 0, c = 0, near-double roots, extreme magnitudes, and any lane whose signs the
    bound cannot decide) is solved by the one-equation path."""
    a, b, c = (torch.as_tensor(v, dtype=torch.float64).reshape(-1).cpu() for v in (a, b, c))
    if not a.shape == b.shape == c.shape:
        raise ValueError(f"a, b, c must have one shape, got {a.shape}, {b.shape}, {c.shape}")
    for name, value in (("a", a), ("b", b), ("c", c)):
        bad = (~value.isfinite()).nonzero()
        if bad.numel():
            i = int(bad[0])
            raise ValueError(
                f"Invalid coefficient {name}[{i}]: {float(value[i])}; it must be finite"
            )
    degenerate = ((a == 0) & (b == 0)).nonzero()
    if degenerate.numel():
        raise ValueError(
            f"degenerate equation {int(degenerate[0])}: a and b are both 0; there is no root to find"
        )
    n = a.numel()
    roots = torch.full((n, 2), math.nan, dtype=torch.float64)
    count = torch.zeros(n, dtype=torch.int64)
    converged = torch.ones(n, dtype=torch.bool)
    iterations = torch.zeros(n, dtype=torch.int64)
    scalar = torch.zeros(n, dtype=torch.bool)

    # f scaled by 2⁻ᵉ, its largest coefficient in [1, 2): same roots, same signs, no overflow
    _, e = torch.frexp(torch.maximum(torch.maximum(a.abs(), b.abs()), c.abs()))
    e = e - 1
    an, bn, cn = (torch.ldexp(v, -e) for v in (a, b, c))
    plain = (an != 0) & (cn != 0) & ~_tiny(an) & ~_tiny(bn) & ~_tiny(cn)
    # D = b² − 4ac as a double-double, against w = 2ε(b² + 4|ac|) as in `solve`
    p1, e1 = _two_prod(bn, bn)
    p2, e2 = _two_prod(an, cn)
    d_high, d_low = _two_sum(p1, -4 * p2)
    disc = d_high + (d_low + (e1 - 4 * e2))
    width = 2 * _EPS * (p1 + 4 * p2.abs())
    none = plain & (disc < -width * (1 + 1e-6))
    two = plain & (disc > width * (1 + 1e-6))
    scalar |= ~(none | two)

    for lanes in two.nonzero().squeeze(1).split(_BLOCK):  # blocks that stay in the cache
        scalar[lanes] = ~_solve_block(
            an[lanes], bn[lanes], cn[lanes], disc[lanes], max_iter, roots, count, iterations, lanes
        )

    for i in scalar.nonzero().squeeze(1).tolist():
        result = QuadraticDescent(float(a[i]), float(b[i]), float(c[i]), max_iter=max_iter).solve()
        count[i] = len(result.roots)
        roots[i, : len(result.roots)] = torch.tensor(result.roots, dtype=torch.float64)
        converged[i] = result.converged
        iterations[i] = result.iterations
    return BatchSolveResult(roots, count, converged, iterations, scalar)


@nnrun.hookimpl
def register_solvers(register) -> None:
    register("quadratic_descent", QuadraticDescent)
