"""`nnrun verify nnrun-extra-optim`: every optimizer of the package passes every check of the
conformance kit, run from the command line's Python API as a user's CI would run it."""

import pytest

from nnrun.verify import verify

REPORTS = {report.name: report for report in verify("nnrun-extra-optim")}


def test_verify_finds_every_optimizer_of_the_package():
    assert {report.kind for report in REPORTS.values()} == {"optimizers"}
    assert {"lamb", "adabelief", "adan", "lookahead", "muon"} <= set(REPORTS)


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_check_passes(name):
    report = REPORTS[name]
    assert report.passed, [(r.check, r.message) for r in report.results if not r.passed]
