"""The one write helper's error messages, and the plain-file and plain-folder tests that keep
nnrun from following a symbolic link."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

import pytest

from nnrun.experiment import safefiles
from nnrun.experiment.rundir import RunDirectory
from nnrun.experiment.safefiles import (
    RunDirectoryError,
    cannot_write,
    is_plain_file,
    is_plain_folder,
    write_atomic,
)


@pytest.mark.parametrize(
    "error, reason",
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (
            OSError(errno.EACCES, "Permission denied"),
            "Permission denied (is the folder read-only?)",
        ),
        (
            OSError(errno.EROFS, "Read-only file system"),
            "Read-only file system (is the folder read-only?)",
        ),
        # an OSError raised with a message only (a plugin's stream, a network file system)
        (OSError("the share went away"), "the share went away"),
    ],
)
def test_cannot_write_names_the_path_the_reason_and_hints_at_read_only_folders(
    tmp_path, error, reason
):
    path = tmp_path / "summary.json"
    assert str(cannot_write(path, error)) == f"{path}: cannot write it: {reason}"


def kinds(tmp_path):
    """A file, a folder, a link to each, and a missing path."""
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "link-to-file").symlink_to("file")
    (tmp_path / "link-to-folder").symlink_to("folder")
    return tmp_path


@pytest.mark.parametrize(
    "name, plain_file, plain_folder",
    [
        ("file", True, False),
        ("folder", False, True),
        ("link-to-file", False, False),
        ("link-to-folder", False, False),
        ("missing", False, False),
    ],
)
def test_a_symbolic_link_is_neither_a_plain_file_nor_a_plain_folder(
    tmp_path, name, plain_file, plain_folder
):
    path = kinds(tmp_path) / name
    assert (is_plain_file(path), is_plain_folder(path)) == (plain_file, plain_folder)
    assert os.path.lexists(path) == (name != "missing")


def test_the_temporary_file_a_crash_leaves_is_one_force_deletes_as_nnruns(tmp_path):
    """A crash between write and rename leaves `.NAME.<random>.tmp`: `--force` must recognise it
    as nnrun's own file, or it refuses to reuse the run directory."""
    out = RunDirectory.create(tmp_path / "out")
    out.close()
    seen = []
    write_atomic(out.path / "summary.json", lambda stream: seen.extend(os.listdir(out.path)))
    (temporary,) = [name for name in seen if name.endswith(".tmp")]
    (out.path / temporary).write_text("half a summary")
    assert out.foreign_entries() == []
    RunDirectory.create(out.path, force=True).close()
    assert sorted(os.listdir(out.path)) == [".nnrun-run", ".nnrun.lock"]


def test_write_atomic_never_writes_through_a_link_at_its_temporary_name(tmp_path, monkeypatch):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    monkeypatch.setattr(secrets, "token_hex", lambda n: "0" * 2 * n)
    (tmp_path / f".summary.json.{'0' * 12}.tmp").symlink_to(outside)
    with pytest.raises(RunDirectoryError, match=r"summary\.json: cannot write it"):
        write_atomic(tmp_path / "summary.json", lambda stream: stream.write(b"{}"))
    assert outside.read_text() == "keep me"
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_files_nnrun_writes_or_appends_to_get_mode_0o666_less_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        write_atomic(tmp_path / "summary.json", lambda stream: stream.write(b"{}"))
        RunDirectory(tmp_path).append_metrics({"run": "a", "epoch": 1})
    finally:
        os.umask(previous)
    for name in ("summary.json", "metrics.jsonl"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_failed_write_whose_temporary_cannot_be_removed_still_reports_the_write(
    tmp_path, monkeypatch
):
    def stuck(self, missing_ok=False):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "unlink", stuck)

    def full(stream):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(RunDirectoryError, match=r"summary\.json: cannot write it: No space left"):
        write_atomic(tmp_path / "summary.json", full)


def test_a_folder_that_cannot_be_opened_to_sync_it_still_gets_the_file(tmp_path, monkeypatch):
    """Some platforms and file systems cannot open a folder: the rename is then as durable as
    they make it, and the write succeeds."""
    real_open = os.open

    def no_folders(path, flags, *args, **kwargs):
        if os.path.isdir(path):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(safefiles.os, "open", no_folders)
    write_atomic(tmp_path / "summary.json", lambda stream: stream.write(b"{}"))
    assert (tmp_path / "summary.json").read_bytes() == b"{}"
