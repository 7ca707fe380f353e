"""What one check of the conformance kit found, shared by the pytest-facing `check_*` functions
(which raise at the first failure) and `nnrun verify` (which reports every check).

A check is a named function that returns its figure (the number it measured: the worst error as
a fraction of the tolerance, a count of bad values, a ratio of losses) or raises `CheckFailed`,
an `AssertionError` whose message is the one pytest shows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from nnrun.errors import MissingDependencyError


class CheckFailed(AssertionError):
    """A property that broke; `figure` is what was measured, when there is a number."""

    def __init__(self, message: str, figure: float | None = None):
        super().__init__(message)
        self.figure = figure


@dataclass(frozen=True)
class Check:
    """One property: `run()` returns the figure or raises `CheckFailed`. `measure` says what the
    figure is and how it is compared with `tolerance` (None where the check has no number)."""

    name: str
    run: Callable[[], float | None]
    measure: str = ""
    tolerance: float | None = None


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    figure: float | None = None
    tolerance: float | None = None
    measure: str = ""
    message: str = ""
    skipped: bool = False  # an optional dependency is missing: neither passed nor failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(checks: Sequence[Check], strict: bool) -> list[CheckResult]:
    """Every check's result; `strict` re-raises the first failure (and anything the component
    raised) as it is, which is what the `check_*` functions do inside a test."""
    results = []
    for check in checks:
        try:
            figure = check.run()
        except CheckFailed as failure:
            if strict:
                raise
            results.append(_failed(check, str(failure), failure.figure))
        except MissingDependencyError as missing:  # say what to install; not the plugin's fault
            if strict:
                raise
            results.append(
                CheckResult(
                    check.name, True, None, check.tolerance, check.measure, str(missing), True
                )
            )
        except Exception as error:  # the component itself raised: that check failed
            if strict:
                raise
            results.append(_failed(check, f"raised {type(error).__name__}: {error}", None))
        else:
            results.append(
                CheckResult(check.name, True, figure, check.tolerance, check.measure, "")
            )
    return results


def _failed(check: Check, message: str, figure: float | None) -> CheckResult:
    return CheckResult(check.name, False, figure, check.tolerance, check.measure, message)


def worst_ratio(actual: Any, expected: Any, rtol: float, atol: float) -> float:
    """max |actual − expected| / (atol + rtol·|expected|): at most 1 where allclose holds, NaN
    counted as infinite."""
    import torch

    error = (actual.double() - expected.double()).abs()
    allowed = atol + rtol * expected.double().abs()
    ratio = torch.nan_to_num(error / allowed, nan=float("inf"))
    return float(ratio.max()) if ratio.numel() else 0.0
