"""Files written so a crash or a full disk never leaves half of one, and opened so a symbolic link
never leads elsewhere: the one write helper every file nnrun writes goes through."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import IO

from nnrun.errors import ConfigError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class RunDirectoryError(ConfigError):
    """A run directory nnrun cannot use as it is: damaged, linked elsewhere, in use, unwritable."""


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write `path` through a temporary file beside it: write, fsync, rename, fsync the folder.

    A failure leaves the old file as it was; an `OSError` (read-only folder, full disk) becomes a
    one-line error naming `path`. The file is created with mode 0o666 less the umask, as `open`
    would (mkstemp's 0600 would make results private by accident)."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666)
    except OSError as error:
        raise cannot_write(path, error) from None
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException as error:
        with suppress(OSError):
            temp.unlink()
        if isinstance(error, OSError):
            raise cannot_write(path, error) from None
        raise
    _sync_folder(path.parent)


def cannot_write(path: Path, error: OSError) -> RunDirectoryError:
    reason = error.strerror or str(error)
    hint = " (is the folder read-only?)" if error.errno in (errno.EACCES, errno.EROFS) else ""
    return RunDirectoryError(f"{path}: cannot write it: {reason}{hint}")


def _sync_folder(folder: Path) -> None:
    """Make a rename durable; not every platform or file system can open a folder to sync it."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def open_nofollow(path: Path, flags: int) -> int:
    """`os.open` that refuses a symbolic link as the last component (the caller checks folders)."""
    try:
        return os.open(path, flags | NOFOLLOW, 0o666)
    except OSError as error:
        if error.errno == errno.ELOOP or path.is_symlink():
            raise link_error(path) from None
        raise


def link_error(path: Path) -> RunDirectoryError:
    return RunDirectoryError(
        f"{path}: is a symbolic link; nnrun does not follow links inside a run directory (one "
        f"could make it read or write elsewhere). Replace it with the file or folder itself"
    )


def is_plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def is_plain_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()
