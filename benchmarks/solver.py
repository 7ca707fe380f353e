"""Time nnrun's batched solve of many quadratics against the stable closed form and numpy.roots,
and measure how far each is from the exact roots.

    python -m benchmarks.solver                    # 10⁶ equations, 7 repeats
    python -m benchmarks.solver --equations 100000 --repeats 3

The equations a·x² + b·x + c have a, and two roots r₁, r₂, of random sign and magnitude
10^U(-3, 3), b = −a(r₁ + r₂) and c = a·r₁·r₂ rounded to float64. Contenders, on one thread:

- `nnrun.solve_quadratics(a, b, c)`: gradient descent on f² on every equation at once, each root
  certified correctly rounded;
- the stable closed form, vectorised (torch, and numpy): q = −(b + copysign(√(b² − 4ac), b))/2,
  x₁ = q/a, x₂ = c/q;
- `numpy.roots` in a Python loop (timed on a sample, reported per equation), and nnrun's
  one-equation solve (`QuadraticDescent(...).solve()`) in a loop, likewise.

The error is the largest relative error of any root against the exact one: the float nearest
the root of the float64 coefficients, from `fractions.Fraction` with integer square-root bounds
(`exact_roots`), on a sample of equations.
"""

from __future__ import annotations

import argparse
import math
import sys
from fractions import Fraction

import numpy as np
import torch

from benchmarks import median_in_turn

LIMIT = 10.0  # the batched solve's time at most 10x the closed form's


def equations(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n equations with two real roots each, of magnitudes spread over six decades."""
    generator = torch.Generator().manual_seed(seed)

    def signed_magnitude() -> torch.Tensor:
        sign = torch.where(torch.rand(n, generator=generator, dtype=torch.float64) < 0.5, -1.0, 1.0)
        return sign * 10 ** (torch.rand(n, generator=generator, dtype=torch.float64) * 6 - 3)

    a, r1, r2 = signed_magnitude(), signed_magnitude(), signed_magnitude()
    return a, -a * (r1 + r2), a * r1 * r2


def exact_roots(a: float, b: float, c: float) -> list[float]:
    """The distinct real roots of a·x² + b·x + c (a ≠ 0 or b ≠ 0), each the float nearest the
    exact root, ascending: √D is bracketed by integer square roots at ever more bits until both
    ends of each root's bracket round to the same float."""
    A, B, C = Fraction(a), Fraction(b), Fraction(c)
    if A == 0:
        return [float(-C / B)]
    D = B * B - 4 * A * C
    if D < 0:
        return []
    if D == 0:
        return [float(-B / (2 * A))]
    bits = 128
    while True:
        low = Fraction(math.isqrt(D.numerator * 4**bits // D.denominator), 2**bits)
        brackets = [(low, low)] if low * low == D else [(low, low + Fraction(1, 2**bits))]
        s_low, s_high = brackets[0]
        found = []
        for sign in (-1, 1):
            ends = {float((-B + sign * s) / (2 * A)) for s in (s_low, s_high)}
            if len(ends) > 1:
                break
            found.append(ends.pop())
        else:
            return sorted(found)
        bits *= 2


def closed_form_torch(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    q = -(b + torch.copysign((b * b - 4 * a * c).sqrt(), b)) / 2
    return torch.stack([q / a, c / q], 1).sort(1).values


def closed_form_numpy(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    q = -(b + np.copysign(np.sqrt(b * b - 4 * a * c), b)) / 2
    return np.sort(np.stack([q / a, c / q], 1), 1)


def roots_loop(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> list[list[float]]:
    return [sorted(np.roots([a[i], b[i], c[i]]).real.tolist()) for i in range(len(a))]


def max_relative_error(found: list[list[float]], exact: list[list[float]]) -> float:
    """The largest |x − r|/|r| over all roots; inf where a method misses or adds a root."""
    worst = 0.0
    for xs, rs in zip(found, exact, strict=True):
        if len(xs) != len(rs):
            return math.inf
        for x, r in zip(xs, rs):
            worst = max(worst, abs(x - r) / abs(r))
    return worst


def measure(n: int, sample: int, loop_sample: int, repeats: int) -> dict[str, float]:
    """Seconds per call (whole batch) or per equation (loops), and each method's error."""
    from nnrun import solve_quadratics
    from nnrun.plugins.solvers import QuadraticDescent

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b, c = equations(n)
        an, bn, cn = a.numpy(), b.numpy(), c.numpy()
        small = [v[:sample] for v in (an, bn, cn)]
        few = [v[:loop_sample].tolist() for v in (a, b, c)]
        times = median_in_turn(
            {
                "nnrun": lambda: solve_quadratics(a, b, c),
                "closed torch": lambda: closed_form_torch(a, b, c),
                "closed numpy": lambda: closed_form_numpy(an, bn, cn),
                "numpy.roots loop": lambda: roots_loop(*small),
                "one-equation loop": lambda: [
                    QuadraticDescent(*e).solve() for e in zip(*few, strict=True)
                ],
            },
            repeats,
        )
        times["numpy.roots loop"] /= sample
        times["one-equation loop"] /= loop_sample
        exact = [exact_roots(*e) for e in zip(*(v.tolist() for v in small), strict=True)]
        batch = solve_quadratics(a[:sample], b[:sample], c[:sample])
        nnrun_roots = [row[: int(k)] for row, k in zip(batch.roots.tolist(), batch.count)]
        errors = {
            "nnrun": max_relative_error(nnrun_roots, exact),
            "closed torch": max_relative_error(
                closed_form_torch(a[:sample], b[:sample], c[:sample]).tolist(), exact
            ),
            "numpy.roots loop": max_relative_error(roots_loop(*small), exact),
        }
        scalar = float(solve_quadratics(a, b, c).scalar.double().mean())
    finally:
        torch.set_num_threads(previous)
    return {**times, **{f"error {k}": v for k, v in errors.items()}, "scalar share": scalar}


def rows(
    repeats: int, equations_count: int = 10**6, sample: int = 2000, loop_sample: int = 200
) -> list[dict]:
    """The suite's rows: the batched solve against the closed form (limit 10x), and per equation
    against numpy.roots and the one-equation solve in Python loops."""
    m = measure(equations_count, sample, loop_sample, repeats)
    per_equation = m["nnrun"] / equations_count
    errors = (
        f"max rel. error on {sample}: nnrun {m['error nnrun']:.1e}, "
        f"closed form {m['error closed torch']:.1e}"
    )
    return [
        {
            "case": f"solver: {equations_count:,} equations vs closed form (torch)",
            "nnrun": m["nnrun"],
            "reference": m["closed torch"],
            "unit": "s",
            "ratio": m["nnrun"] / m["closed torch"],
            "limit": LIMIT,
            "note": f"1 thread; {errors}",
        },
        {
            "case": f"solver: {equations_count:,} equations vs closed form (numpy)",
            "nnrun": m["nnrun"],
            "reference": m["closed numpy"],
            "unit": "s",
            "ratio": m["nnrun"] / m["closed numpy"],
            "limit": LIMIT,
            "note": f"{m['scalar share']:.2%} of lanes to the one-equation solve",
        },
        {
            "case": "solver: per equation vs numpy.roots loop",
            "nnrun": per_equation * 1e6,
            "reference": m["numpy.roots loop"] * 1e6,
            "unit": "µs",
            "ratio": per_equation / m["numpy.roots loop"],
            "limit": None,
            "note": f"loop timed on {sample}; its max rel. error {m['error numpy.roots loop']:.1e}",
        },
        {
            "case": "solver: per equation vs one-equation solve loop",
            "nnrun": per_equation * 1e6,
            "reference": m["one-equation loop"] * 1e6,
            "unit": "µs",
            "ratio": per_equation / m["one-equation loop"],
            "limit": None,
            "note": f"loop timed on {loop_sample}; same roots (tests/plugins/test_solvers.py)",
        },
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--equations", type=int, default=10**6)
    parser.add_argument("--sample", type=int, default=2000, help="equations for numpy.roots")
    parser.add_argument("--loop-sample", type=int, default=200, help="for the one-equation loop")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    from benchmarks.__main__ import machine, table

    print(f"$ python -m benchmarks.solver {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(machine("cpu"))
    print(f"median of {args.repeats} interleaved repeats after warm-up\n")
    print(table(rows(args.repeats, args.equations, args.sample, args.loop_sample)))


if __name__ == "__main__":
    main()
