"""The run directory: what an experiment leaves behind, written so a crash never corrupts it.

Metrics are appended and flushed after every epoch; the summary, checkpoints and plots are written
to a temporary file and renamed over the old one, so a reader sees the old or the new, never half.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import tomli_w

from nnrun.errors import ConfigError

CONFIG, ENVIRONMENT, METRICS, SUMMARY, OVERRIDES = (
    "config.toml",
    "environment.json",
    "metrics.jsonl",
    "summary.json",
    "overrides.txt",
)


_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp's 0600 would make results private by accident
    try:
        yield Path(temp)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    with atomic_path(path) as temp:
        write(temp)


def slug(name: str) -> str:
    """A run name made safe as a directory name. A name that had to change gets a short hash of
    itself, so two runs ("lr 0.1" and "lr_0.1") never share, and overwrite, one checkpoint folder."""
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", name).strip("._") or "run"
    return safe if safe == name else f"{safe}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


class RunDirectory:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, *, force: bool = False, resume: bool = False) -> RunDirectory:
        """Refuse a non-empty directory unless resuming into it or told to overwrite it."""
        directory = cls(path)
        if directory.path.exists() and not directory.path.is_dir():
            raise ConfigError(f"--out {directory.path}: exists and is not a directory")
        if directory.path.is_dir() and any(directory.path.iterdir()) and not resume:
            if not force:
                raise ConfigError(
                    f"--out {directory.path}: the directory is not empty; pass --resume to continue "
                    f"the runs in it, --force to overwrite it, or choose another --out"
                )
            if not (directory.path / CONFIG).is_file():
                raise ConfigError(
                    f"--out {directory.path}: --force only overwrites an nnrun run directory, and "
                    f"this one has files but no {CONFIG}; choose another --out"
                )
            shutil.rmtree(directory.path)
        if resume and not (directory.path / CONFIG).is_file():
            raise ConfigError(
                f"{directory.path}: not an nnrun run directory (no {CONFIG}) to resume"
            )
        directory.path.mkdir(parents=True, exist_ok=True)
        return directory

    # config and environment -------------------------------------------------------------------
    def write_config(self, config: dict[str, Any], overrides: list[str]) -> None:
        write_atomic(
            self.path / CONFIG, lambda p: p.write_bytes(tomli_w.dumps(toml_ready(config)).encode())
        )
        if overrides:
            text = "".join(f"{override}\n" for override in overrides)
            write_atomic(self.path / OVERRIDES, lambda p: p.write_text(text))

    def write_environment(self, plugin_distributions: dict[str, str | None]) -> None:
        import torch

        import nnrun

        environment = {
            "nnrun": nnrun.__version__,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cuda": torch.version.cuda if torch.cuda.is_available() else None,
            "plugins": plugin_distributions,
            "packages": {
                d.metadata["Name"]: d.version for d in distributions() if d.metadata["Name"]
            },
            "argv": sys.argv,
        }
        self.write_json(ENVIRONMENT, environment)

    # metrics and summary ----------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        """One JSON object per line, flushed and synced at once: a crash loses at most one epoch."""
        line = json.dumps(record, allow_nan=True) + "\n"
        with open(self.path / METRICS, "a", encoding="utf-8") as stream:
            stream.write(line)
            stream.flush()
            os.fsync(stream.fileno())

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(record) + "\n" for record in records)
        write_atomic(self.path / METRICS, lambda p: p.write_text(text, encoding="utf-8"))

    def log_failure(self, run: str, text: str) -> None:
        with open(self.path / "failures.log", "a", encoding="utf-8") as stream:
            stream.write(f"--- {run}\n{text}\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.path / METRICS
        if not path.exists():
            return []
        records = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
        return records

    def write_json(self, name: str, data: Any) -> None:
        text = json.dumps(data, indent=2, allow_nan=True) + "\n"
        write_atomic(self.path / name, lambda p: p.write_text(text, encoding="utf-8"))

    def read_summary(self) -> dict[str, Any]:
        path = self.path / SUMMARY
        if not path.exists():
            raise ConfigError(f"{self.path}: no {SUMMARY}; is this an nnrun run directory?")
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError(f"{path}: cannot read it ({error})") from None
        if not (isinstance(summary, dict) and isinstance(summary.get("runs"), list)):
            raise ConfigError(f"{path}: not an nnrun summary (it has no list of runs)")
        return summary

    # checkpoints ------------------------------------------------------------------------------
    def checkpoint_dir(self, run: str) -> Path:
        return self.path / "checkpoints" / slug(run)

    def save_checkpoint(self, run: str, name: str, state: dict[str, Any]) -> Path:
        """Write `checkpoints/<run>/<name>.pt` atomically and point `last` at it."""
        import torch

        directory = self.checkpoint_dir(run)
        target = directory / f"{name}.pt"
        write_atomic(target, lambda p: torch.save(state, p))
        link = directory / f".last.{os.getpid()}"
        link.unlink(missing_ok=True)
        link.symlink_to(target.name)
        os.replace(link, directory / "last")
        return target

    def load_last_checkpoint(self, run: str) -> dict[str, Any] | None:
        import torch

        last = self.checkpoint_dir(run) / "last"
        if not last.exists():
            return None
        return torch.load(last, map_location="cpu", weights_only=False)


def toml_ready(value: Any) -> Any:
    """TOML has no null: drop None values (they mean "not set")."""
    if isinstance(value, dict):
        return {k: toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [toml_ready(v) for v in value if v is not None]
    return value
