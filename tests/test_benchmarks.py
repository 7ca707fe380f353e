"""The benchmark suite's collection and table (with fake modules, no timing), and the solver
benchmark's exact reference against roots known in closed form and `decimal` at 60 digits."""

from __future__ import annotations

import math
import sys
import types
from decimal import Decimal, localcontext
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def suite(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    import benchmarks.__main__ as suite

    return suite


def fake_module(monkeypatch, name: str, **attributes) -> None:
    module = types.ModuleType(f"benchmarks.{name}")
    module.__dict__.update(attributes)
    monkeypatch.setitem(sys.modules, f"benchmarks.{name}", module)


ROW = {
    "case": "fake case",
    "nnrun": 2.0,
    "reference": 4.0,
    "unit": "ms",
    "ratio": 0.5,
    "limit": 1.05,
    "note": "a note",
}


def test_collect_runs_rows_and_notes_absent_or_unfinished_modules(suite, monkeypatch):
    seen = {}

    def rows(repeats: int) -> list[dict]:
        seen["repeats"] = repeats
        return [ROW]

    fake_module(monkeypatch, "fake_done", rows=rows)
    fake_module(monkeypatch, "fake_unfinished")
    got = suite.collect(["fake_done", "fake_unfinished", "fake_absent_module"], repeats=7)
    assert seen == {"repeats": 7}
    assert got[0] == ROW
    assert [r["case"] for r in got[1:]] == ["fake_unfinished", "fake_absent_module"]
    assert "no rows() yet" in got[1]["note"] and "not present" in got[2]["note"]


def test_collect_passes_the_device_only_to_modules_that_take_it(suite, monkeypatch):
    fake_module(monkeypatch, "fake_cpu", rows=lambda repeats: [ROW])
    fake_module(
        monkeypatch, "fake_any", rows=lambda repeats, device="cpu": [{**ROW, "note": device}]
    )
    got = suite.collect(["fake_cpu", "fake_any"], repeats=1, device="cuda")
    assert "CPU only" in got[0]["note"]
    assert got[1]["note"] == "cuda"


def test_a_module_that_raises_is_a_failed_row_and_the_others_still_run(suite, monkeypatch):
    def broken(repeats: int) -> list[dict]:
        raise RuntimeError("boom")

    fake_module(monkeypatch, "fake_broken", rows=broken)
    fake_module(monkeypatch, "fake_done", rows=lambda repeats: [ROW])
    got = suite.collect(["fake_broken", "fake_done"], repeats=1)
    assert got[0]["note"].startswith("failed") and got[1] == ROW


def test_a_row_missing_a_key_is_an_error_naming_the_module(suite, monkeypatch):
    fake_module(monkeypatch, "fake_bad", rows=lambda repeats: [{"case": "x"}])
    with pytest.raises(ValueError, match=r"benchmarks\.fake_bad"):
        suite.collect(["fake_bad"], repeats=1)


def test_table_shows_units_ratio_and_whether_the_limit_holds(suite):
    over = {**ROW, "case": "slow case", "ratio": 1.2}
    none = {**ROW, "case": "no goal", "limit": None, "ratio": None}
    text = suite.table([ROW, over, none])
    lines = text.splitlines()
    assert lines[0].split() == ["case", "nnrun", "reference", "ratio", "limit", "note"]
    assert "2.00 ms" in lines[2] and "4.00 ms" in lines[2] and "0.50" in lines[2]
    assert "≤ 1.05 ok" in lines[2] and "≤ 1.05 OVER" in lines[3]
    assert "0.50" in lines[4]  # computed from nnrun / reference when the module gives none
    markdown = suite.table([ROW], markdown=True).splitlines()
    assert markdown[0] == "| case | nnrun | reference | ratio | limit | note |"
    assert markdown[2].startswith("| fake case | 2.00 ms | 4.00 ms | 0.50 | ≤ 1.05 ok |")


def decimal_roots(a: float, b: float, c: float) -> list[float]:
    with localcontext() as context:
        context.prec = 60
        A, B, C = Decimal(a), Decimal(b), Decimal(c)
        s = (B * B - 4 * A * C).sqrt()
        return sorted({float((-B - s) / (2 * A)), float((-B + s) / (2 * A))})


@pytest.mark.parametrize(
    ("equation", "expected"),
    [
        ((1.0, -3.0, 2.0), [1.0, 2.0]),  # a perfect square discriminant: exact roots
        ((1.0, 0.0, -2.0), [-math.sqrt(2), math.sqrt(2)]),  # math.sqrt is correctly rounded
        ((1.0, -6.0, 4.0), None),
        ((1e-3, 1e5, 1e-4), None),  # the small root cancels in the textbook formula
        ((3.0, -7.1, 0.3), None),
    ],
)
def test_solver_reference_roots_are_the_nearest_floats(monkeypatch, equation, expected):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.solver import exact_roots

    assert exact_roots(*equation) == (expected or decimal_roots(*equation))


def test_solver_reference_handles_no_double_and_linear_roots(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.solver import exact_roots, max_relative_error

    assert exact_roots(1.0, 0.0, 1.0) == []
    assert exact_roots(1.0, -2.0, 1.0) == [1.0]
    assert exact_roots(0.0, 2.0, -1.0) == [0.5]
    assert max_relative_error([[1.0, 2.0 * (1 + 2**-52)]], [[1.0, 2.0]]) == 2**-52
    assert max_relative_error([[1.0]], [[1.0, 2.0]]) == math.inf


@pytest.mark.parametrize(
    "run, start, overhead, slots, expected",
    [
        (2.0, 0.0, 0.0, 2, 2),  # two free CPUs halve two runs
        (2.0, 10.0, 0.0, 2, 12),  # a start of 10 s: 12 runs take 10 + 12 s in waves, 24 s in turn
        (2.0, 0.0, 2.0, 2, 100_000),  # an overhead as long as the run never pays on 2 CPUs
        (2.0, 0.0, 2.0, 4, 3),
    ],
)
def test_executor_break_even_is_the_fewest_runs_a_cluster_finishes_sooner(
    monkeypatch, run, start, overhead, slots, expected
):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.executor_overhead import break_even

    assert break_even(run, start, overhead, slots) == expected
