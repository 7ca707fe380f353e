"""Nothing in a run directory is trusted: a crafted checkpoint cannot run code, a damaged file is a
one-line error (a damaged newest checkpoint falls back to the one before), no link leads outside,
--force deletes only what nnrun wrote, a directory in use is locked, and a failed write keeps what
was there."""

from __future__ import annotations

import errno
import json
import os
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

import nnrun
from nnrun.cli import main
from nnrun.experiment import runner
from nnrun.experiment.reporting import ConsoleReporter, Reporter, printable, results_table
from nnrun.experiment.rundir import RunDirectory, RunDirectoryError, write_atomic
from nnrun.experiment.runner import Interrupted, run_experiment
from nnrun.experiment.train import StopFlag, Trainer

TINY = """
[experiment]
name = "tiny"
seed = 5

[data]
expr = "sin(2*x)"
n = 24
noise = 0.05

[model]
layers = [1, 4, 1]

[optimizer]
name = "adam"
lr = 0.02

[train]
epochs = 4
batch_size = 4
shuffle = true
checkpoint_every = 1

[[runs]]
name = "first"

[[runs]]
name = "second"
"""


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def experiment_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(textwrap.dedent(TINY))
    return path


def metrics(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_time(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def snapshot(folder):
    """Every file's bytes and every link's target, to check that nothing was written."""
    return {
        str(p.relative_to(folder)): os.readlink(p) if p.is_symlink() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_symlink() or p.is_file()
    }


def interrupted(tmp_path, monkeypatch):
    """TINY stopped at the end of the first run's third epoch: checkpoints epoch0001..0003 of
    "first", "second" pending."""
    path = experiment_file(tmp_path)
    real_fit = Trainer.fit

    def fit(self, on_epoch, on_progress=None, on_checkpoint=None):
        def epoch_end(record):
            on_epoch(record)
            if record["epoch"] == 3:
                StopFlag.requested = True

        return real_fit(self, epoch_end, on_progress, on_checkpoint)

    monkeypatch.setattr(Trainer, "fit", fit)
    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        run_experiment(nnrun.load_experiment(path), out)
    monkeypatch.setattr(Trainer, "fit", real_fit)
    return out


@pytest.fixture
def reference(tmp_path):
    out = tmp_path / "reference"
    run_experiment(nnrun.load_experiment(experiment_file(tmp_path)), out)
    return out


def one_line_error(result, *phrases):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


# ------------------------------------------------------------------------------------------------
# checkpoints load with weights_only=True


class RunsCode:
    """Unpickling this would create a file: what a hostile checkpoint would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_crafted_checkpoint_cannot_run_code_on_resume(tmp_path, monkeypatch):
    out = interrupted(tmp_path, monkeypatch)
    folder = out / "checkpoints" / "first"
    for older in ("epoch0001.pt", "epoch0002.pt"):
        (folder / older).unlink()
    proof = tmp_path / "code-ran"
    torch.save({"model": RunsCode(proof)}, folder / "epoch0003.pt")
    assert not proof.exists()  # saving does not run it; loading with pickle would
    result = invoke("resume", out)
    one_line_error(result, str(folder / "epoch0003.pt"), "does not load as a checkpoint")
    assert not proof.exists()


def test_resume_falls_back_to_the_previous_checkpoint_when_the_newest_is_damaged(
    tmp_path, monkeypatch, reference
):
    out = interrupted(tmp_path, monkeypatch)
    newest = out / "checkpoints" / "first" / "epoch0003.pt"
    newest.write_bytes(b"\x00garbage, cut short by a dying disk")
    result = invoke("resume", out, "-q")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and str(newest) in warnings[0] and "epoch0002.pt" in warnings[0]
    assert without_time(metrics(out)) == without_time(metrics(reference))  # epoch 3 run again
    summary = json.loads((out / "summary.json").read_text())
    expected = json.loads((reference / "summary.json").read_text())
    assert [r["final_loss"] for r in summary["runs"]] == [r["final_loss"] for r in expected["runs"]]


def test_every_checkpoint_nnrun_writes_loads_with_weights_only(tmp_path, monkeypatch):
    out = interrupted(tmp_path, monkeypatch)
    for checkpoint in (out / "checkpoints").rglob("*.pt"):
        state = torch.load(checkpoint, weights_only=True)
        assert state["trainer"]["epoch"] >= 1


# ------------------------------------------------------------------------------------------------
# a damaged run directory: exit 2 and one line on resume, show and compare


def damage_config_toml(out):
    (out / "config.toml").write_text("[experiment\nname = 'x'\n")


def damage_config_not_experiment(out):
    (out / "config.toml").write_text("answer = 42\n")


def damage_summary_json(out):
    (out / "summary.json").write_text('{"runs": [')


def damage_summary_shape(out):
    (out / "summary.json").write_text('{"runs": [1, 2]}')


def damage_metrics_garbage(out):
    lines = (out / "metrics.jsonl").read_text()
    (out / "metrics.jsonl").write_text("rm -rf /\n" + lines)


def damage_metrics_not_object(out):
    lines = (out / "metrics.jsonl").read_text()
    (out / "metrics.jsonl").write_text(lines + "[1, 2, 3]\n")


def damage_checkpoints_garbage(out):
    for checkpoint in (out / "checkpoints" / "first").glob("*.pt"):
        checkpoint.write_bytes(b"PK\x03\x04 not really a zip")


def relink(out, target):
    last = out / "checkpoints" / "first" / "last"
    last.unlink()
    last.symlink_to(target)


def damage_last_missing(out):
    relink(out, "epoch0009.pt")


def damage_last_elsewhere(out):
    relink(out, "../second/epoch0001.pt")


def damage_last_outside(out):
    outside = out.parent / "outside.pt"
    outside.write_bytes((out / "checkpoints" / "first" / "epoch0003.pt").read_bytes())
    relink(out, outside)


DAMAGE = {
    "config.toml not TOML": (
        damage_config_toml,
        "config.toml: cannot read it: damaged, not valid TOML",
    ),
    "config.toml not an experiment": (damage_config_not_experiment, "no [experiment] table"),
    "summary.json not JSON": (
        damage_summary_json,
        "summary.json: cannot read it: damaged, not valid JSON",
    ),
    "summary.json wrong shape": (damage_summary_shape, "not an nnrun summary"),
    "metrics.jsonl garbage line": (damage_metrics_garbage, "metrics.jsonl, line 1: damaged"),
    "metrics.jsonl non-object line": (damage_metrics_not_object, "metrics.jsonl, line 4: damaged"),
    "every checkpoint garbage": (damage_checkpoints_garbage, "does not load as a checkpoint"),
    "last points at a missing file": (damage_last_missing, "which is missing"),
    "last points elsewhere": (damage_last_elsewhere, "not at a checkpoint in"),
    "last points outside": (damage_last_outside, "not at a checkpoint in"),
}
# show and compare read no checkpoint: its contents only matter to resume
READS_NO_CHECKPOINT = {"every checkpoint garbage"}


@pytest.mark.parametrize("command", ["resume", "show", "compare"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_run_directory_is_a_one_line_error(tmp_path, monkeypatch, damage, command):
    out = interrupted(tmp_path, monkeypatch)
    apply, phrase = DAMAGE[damage]
    apply(out)
    before = snapshot(out)
    result = invoke(command, out)
    if command != "resume" and damage in READS_NO_CHECKPOINT:
        assert result.exit_code == 0 and "Traceback" not in result.output
        return
    one_line_error(result, phrase)
    assert snapshot(out) == before  # nothing written


# ------------------------------------------------------------------------------------------------
# no link leads out of the run directory


@pytest.mark.parametrize(
    "name", ["metrics.jsonl", "summary.json", "checkpoints", "checkpoints/first"]
)
def test_resume_refuses_a_run_directory_file_linked_elsewhere(tmp_path, monkeypatch, name):
    out = interrupted(tmp_path, monkeypatch)
    inside, outside = out / name, tmp_path / "elsewhere" / name
    outside.parent.mkdir(parents=True, exist_ok=True)
    inside.rename(outside)
    inside.symlink_to(outside, target_is_directory=outside.is_dir())
    before = snapshot(tmp_path / "elsewhere")
    result = invoke("resume", out)
    one_line_error(result, str(inside), "is a symbolic link")
    assert snapshot(tmp_path / "elsewhere") == before


def test_last_is_a_relative_link_to_a_checkpoint_beside_it(tmp_path, monkeypatch):
    out = interrupted(tmp_path, monkeypatch)
    assert os.readlink(out / "checkpoints" / "first" / "last") == "epoch0003.pt"


# ------------------------------------------------------------------------------------------------
# --force deletes only what nnrun wrote


def finished(tmp_path):
    out = tmp_path / "out"
    assert invoke(experiment_file(tmp_path), "--out", out, "-q").exit_code == 0
    return out


def test_force_refuses_a_directory_nnrun_did_not_create(tmp_path):
    out = finished(tmp_path)
    (out / ".nnrun-run").unlink()  # a run directory of an older nnrun, or a look-alike
    before = snapshot(out)
    result = invoke(experiment_file(tmp_path), "--out", out, "--force")
    one_line_error(result, "only overwrites a run directory nnrun created")
    assert snapshot(out) == before


def test_force_refuses_an_out_that_is_a_symbolic_link(tmp_path):
    out = finished(tmp_path)
    link = tmp_path / "link"
    link.symlink_to(out, target_is_directory=True)
    before = snapshot(out)
    result = invoke(experiment_file(tmp_path), "--out", link, "--force")
    one_line_error(result, "is a symbolic link; --force never deletes through a link")
    assert snapshot(out) == before and link.is_symlink()


@pytest.mark.parametrize(
    "name", ["loss.png", "checkpoints/first", "checkpoints/first/epoch0001.pt"]
)
def test_force_refuses_a_directory_with_a_symbolic_link_in_it(tmp_path, name):
    out = finished(tmp_path)
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep me")
    (out / name).unlink() if (out / name).is_file() else _remove_folder(out / name)
    (out / name).symlink_to(precious, target_is_directory=True)
    result = invoke(experiment_file(tmp_path), "--out", out, "--force")
    one_line_error(result, "only deletes what nnrun wrote", name)
    assert (precious / "data.txt").read_text() == "keep me" and (out / name).is_symlink()


def _remove_folder(folder):
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()


def test_force_overwrites_a_run_directory_holding_only_nnruns_files(tmp_path):
    out = finished(tmp_path)
    (out / "checkpoints" / "first" / "epoch0099.pt").write_bytes(b"stale")
    result = invoke(experiment_file(tmp_path), "--out", out, "--force", "-q")
    assert result.exit_code == 0, result.output
    assert not (out / "checkpoints" / "first" / "epoch0099.pt").exists()
    assert len(metrics(out)) == 8  # two runs of four epochs, not twice that


def test_an_out_that_cannot_be_listed_is_a_one_line_error(tmp_path, monkeypatch):
    out = finished(tmp_path)

    def unreadable(self):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", unreadable)
    result = invoke(experiment_file(tmp_path), "--out", out, "--force")
    one_line_error(result, f"--out {out}: cannot read {out}: Permission denied")


def test_an_empty_out_is_refused_and_the_working_directory_untouched(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = experiment_file(tmp_path)
    (tmp_path / "thesis.txt").write_text("mine")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = invoke(path, "--out", "", "--force")
    assert result.exit_code == 2 and "is empty" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    with pytest.raises(nnrun.ConfigError, match="--out is empty"):
        run_experiment(nnrun.load_experiment(path), "", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# ------------------------------------------------------------------------------------------------
# the lock


def test_a_run_directory_in_use_is_refused_to_a_second_process(tmp_path, monkeypatch):
    out = interrupted(tmp_path, monkeypatch)
    other = RunDirectory(out)
    other.lock()  # flock: another open file, so the same as another process holding it
    try:
        before = snapshot(out)
        for args in (
            ("resume", out),
            (experiment_file(tmp_path), "--out", out, "--resume"),
            (experiment_file(tmp_path), "--out", out, "--force"),
        ):
            one_line_error(invoke(*args), "another nnrun process is writing this run directory")
        assert snapshot(out) == before
    finally:
        other.close()
    assert invoke("resume", out, "-q").exit_code == 0  # free again once released


def test_a_worker_keeps_the_directory_locked_after_its_parent_is_gone(tmp_path):
    out = tmp_path / "out"
    parent = RunDirectory.create(out)
    (out / "config.toml").write_text("")
    worker = RunDirectory(out)
    worker.share_lock()
    parent.close()  # the parent was killed; the worker still writes
    with pytest.raises(RunDirectoryError, match="another nnrun process"):
        RunDirectory.create(out, resume=True)
    worker.close()
    RunDirectory.create(out, resume=True).close()


def test_two_launches_in_the_same_second_get_two_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "default_out", lambda e: Path("runs") / e.name / "20260101-000000")
    path = experiment_file(tmp_path)
    for _ in range(2):
        result = invoke(path, "-q")
        assert result.exit_code == 0, result.output
    runs = sorted(p.name for p in (tmp_path / "runs" / "tiny").iterdir())
    assert runs == ["20260101-000000", "20260101-000000-2"]
    assert all(len(metrics(tmp_path / "runs" / "tiny" / run)) == 8 for run in runs)


# ------------------------------------------------------------------------------------------------
# a write that fails: read-only folder, full disk


def test_a_full_disk_keeps_the_old_summary_and_names_the_path(tmp_path, monkeypatch):
    out = interrupted(tmp_path, monkeypatch)
    before = (out / "summary.json").read_bytes()
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    result = invoke("resume", out, "-q")
    monkeypatch.setattr(os, "fsync", real_fsync)
    one_line_error(result, f"{out / 'summary.json'}: cannot write it: No space left on device")
    assert (out / "summary.json").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_write_atomic_turns_an_error_mid_write_into_one_naming_the_file(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def half_then_full(stream):
        stream.write(b"new, but only ha")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(RunDirectoryError, match=r"summary\.json: cannot write it: No space left"):
        write_atomic(target, half_then_full)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_a_read_only_run_directory_is_a_one_line_error(tmp_path, monkeypatch):
    """As root, chmod does not stop writes: refuse new files the way a read-only folder does."""
    out = interrupted(tmp_path, monkeypatch)
    before = snapshot(out)
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and not os.path.exists(path) and str(out) in os.fspath(path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    result = invoke("resume", out, "-q")
    monkeypatch.setattr(os, "open", real_open)
    one_line_error(result, f"{out / 'summary.json'}: cannot write it", "read-only")
    assert snapshot(out) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to a 0o500 folder anyway")
def test_a_chmod_read_only_run_directory_is_a_one_line_error(tmp_path, monkeypatch):
    out = interrupted(tmp_path, monkeypatch)
    out.chmod(0o500)
    try:
        one_line_error(invoke("resume", out, "-q"), "cannot write it", "read-only")
    finally:
        out.chmod(0o700)


def test_the_umask_is_left_alone_and_applies_to_files_nnrun_writes(tmp_path):
    previous = os.umask(0o027)
    try:
        write_atomic(tmp_path / "a.json", lambda stream: stream.write(b"{}"))
        assert os.umask(0o027) == 0o027  # nnrun did not change it
    finally:
        os.umask(previous)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640


# ------------------------------------------------------------------------------------------------
# nothing printed can drive the terminal


def test_printable_shows_control_characters_as_escapes_and_keeps_newlines_and_tabs():
    assert printable("a\x1b[2Jb\x07\x7f\x9b\x00") == "a\\x1b[2Jb\\x07\\x7f\\x9b\\x00"
    assert printable("line\n\tindented é") == "line\n\tindented é"


def test_no_escape_reaches_the_terminal_from_names_in_reporter_lines_and_the_table(capsys):
    import io

    from rich.console import Console

    stream = io.StringIO()
    reporter = ConsoleReporter(Console(file=stream, force_terminal=False, width=200))
    experiment = SimpleNamespace(name="evil\x1b[2J", runs=[], seed=1)
    reporter.experiment_started(experiment, Path("runs/\x1b]0;title\x07"), 0)
    reporter.run_finished({"name": "run\x1b[31m", "status": "failed", "error": "boom\x1b[0m"})
    reporter.warn("plot \x1b[2J failed")
    Console(file=stream, force_terminal=False, width=200).print(
        results_table({"experiment": "x\x1b[2J", "runs": [{"name": "r\x9b1", "status": "ok"}]})
    )
    printed = stream.getvalue()
    assert "\x1b" not in printed and "\x9b" not in printed and "\x07" not in printed
    assert "evil\\x1b[2J" in printed and "r\\x9b1" in printed
    Reporter().warn("w\x1b[2J")  # the quiet reporter's warnings
    assert capsys.readouterr().err == "warning: w\\x1b[2J\n"


def test_an_error_quoting_the_users_text_prints_no_escape(tmp_path):
    result = invoke("show", tmp_path / "x\x1b[2J")
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "x\\x1b[2J" in result.stderr
