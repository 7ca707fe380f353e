"""`nnrun check` exits 0 only on files `nnrun run` runs: every bad experiment file the suite knows
is refused alike by `check`, `run --jobs 1` and `run --jobs 2`, with exit status 2, the same
message, no traceback, and no run directory."""

from __future__ import annotations

import os
import re

import pytest
from bad_experiments import BASE, bad_files
from click.testing import CliRunner

from nnrun.cli import main

NESTED = "[experiment]\nname = 'deep'\nx = " + "[" * 10_000 + "]" * 10_000 + "\n"

# Files that are not experiment files at all: (how to make one in tmp_path, the phrase).
HOSTILE = {
    "nested 10,000 deep": (lambda p: p.write_text(NESTED), r"nested too deeply"),
    "a directory": (lambda p: p.mkdir(), r"is a directory"),
    "a binary file": (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff"), r"not UTF-8 text"),
    "NUL bytes": (lambda p: p.write_bytes(b"[experiment]\x00\n"), r"contains NUL bytes"),
    "larger than 1 MiB": (
        lambda p: p.write_text(BASE + "#" * (1 << 20)),
        r"experiment files are at most 1024 KiB",
    ),
    "no such file": (lambda p: None, r"no such file"),
}
if hasattr(os, "mkfifo"):
    HOSTILE["a FIFO"] = (lambda p: os.mkfifo(p), r"not a regular file")

# Bad command lines for a good file: (overrides, the phrase).
BAD_OVERRIDES = {
    "override of a swept key": (
        BASE + '\n[sweep]\n"optimizer.lr" = [0.1, 0.01]\n',
        ["optimizer.lr=0.5"],
        r"override 'optimizer.lr=0.5': \[sweep\] varies 'optimizer.lr'",
    ),
    "override of a table a sweep varies inside": (
        BASE + '\n[sweep]\n"optimizer.lr" = [0.1, 0.01]\n',
        ["optimizer.name=adam"],
        r"\[sweep\] varies 'optimizer.lr'",
    ),
    "override with a bad value": (BASE, ["optimizer.lr=-1.0"], r"Invalid learning rate: -1\.0"),
}

COMMANDS = {
    "check": ["check"],
    "run --jobs 1": ["run", "--jobs", "1"],
    "run --jobs 2": ["run", "--jobs", "2"],
}


def refuse_alike(tmp_path, monkeypatch, path, overrides, message):
    monkeypatch.chdir(tmp_path)
    for command, args in COMMANDS.items():
        options = [part for override in overrides for part in ("-o", override)]
        result = CliRunner().invoke(main, [*args, str(path), *options])
        error = result.stderr.strip()
        assert result.exit_code == 2, (command, result.output)
        assert "Traceback" not in result.output, (command, result.output)
        assert error.startswith("Error: "), (command, error)
        assert re.search(message, error), (command, error)
        assert not (tmp_path / "runs").exists(), command


@pytest.mark.parametrize("case", sorted(bad_files()))
def test_a_bad_file_is_refused_alike_by_check_and_run(tmp_path, monkeypatch, case):
    text, message = bad_files()[case]
    path = tmp_path / "experiment.toml"
    path.write_text(text)
    refuse_alike(tmp_path, monkeypatch, path, [], message)


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_file_is_refused_alike_in_one_line(tmp_path, monkeypatch, case):
    make, message = HOSTILE[case]
    path = tmp_path / "experiment.toml"
    make(path)
    refuse_alike(tmp_path, monkeypatch, path, [], message)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused_without_reading_it(tmp_path, monkeypatch):
    refuse_alike(tmp_path, monkeypatch, "/dev/zero", [], r"not a regular file")


@pytest.mark.parametrize("case", sorted(BAD_OVERRIDES))
def test_a_bad_override_is_refused_alike(tmp_path, monkeypatch, case):
    text, overrides, message = BAD_OVERRIDES[case]
    path = tmp_path / "experiment.toml"
    path.write_text(text)
    refuse_alike(tmp_path, monkeypatch, path, overrides, message)


def test_the_good_file_the_cases_break_is_accepted(tmp_path, monkeypatch):
    """The cases are bad because of their one edit: their base passes both commands."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "experiment.toml"
    path.write_text(BASE)
    assert CliRunner().invoke(main, ["check", str(path)]).exit_code == 0
    result = CliRunner().invoke(main, ["run", "--jobs", "1", "-q", str(path)])
    assert result.exit_code == 0, result.output
