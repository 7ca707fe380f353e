"""The run directory: what an experiment leaves behind, written so a crash never corrupts it and
read back as untrusted input.

Metrics are appended (written to the OS) after every epoch and synced to disk at most once a
second (`SYNC_EVERY`), at every checkpoint and at the end; every other file goes through `write_atomic`
(a temporary file beside it, fsync, rename), so a reader sees the old or the new, never half.
Nothing read back is trusted: checkpoints load with `weights_only=True` (a pickle cannot run
code), a file that does not parse is a one-line error, and no symbolic link leads nnrun out of the
directory. A process that writes a run directory holds its lock for as long as it does.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import tomli_w

from nnrun.errors import ConfigError
from nnrun.experiment.checkpoints import CHECKPOINT_NAME, earlier_checkpoints, load_checkpoint
from nnrun.experiment.safefiles import (
    RunDirectoryError,
    cannot_write,
    is_plain_file,
    is_plain_folder,
    link_error,
    open_nofollow,
    write_atomic,
)
from nnrun.names import slug

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None  # type: ignore[assignment]

CONFIG, ENVIRONMENT, METRICS, SUMMARY, OVERRIDES = (
    "config.toml",
    "environment.json",
    "metrics.jsonl",
    "summary.json",
    "overrides.txt",
)
FAILURES, MARKER, LOCK, CHECKPOINTS, LAST, MODELS = (
    "failures.log",
    ".nnrun-run",  # written when nnrun creates the directory: --force deletes only such a one
    ".nnrun.lock",
    "checkpoints",
    "last",
    "models",  # models/<run>.pt: the final weights and what `nnrun predict` needs
)
REPORT = "report.html"  # nnrun.experiment.report_html writes it at the end of every run
PLOTS = ("loss.png", "fit.png", "descent.png", "tune.png", "confusion.png")
#: `[tune]` keeps one Optuna study per configuration here, as a journal file.
STUDIES, STUDY_SUFFIX = "tune", ".log"
#: `[report] tensorboard = true` writes live event files in tensorboard/<run>/.
EVENTS, EVENTS_PREFIX = "tensorboard", "events.out.tfevents."
#: `--executor submitit` keeps its job files and logs here unless `[executor] folder` says otherwise.
SUBMITIT = "submitit"
#: Every file nnrun writes at the top of a run directory; with `checkpoints/`, all --force deletes.
WRITTEN = frozenset(
    {CONFIG, ENVIRONMENT, METRICS, SUMMARY, OVERRIDES, FAILURES, MARKER, LOCK, REPORT, *PLOTS}
)
#: Seconds between two fsyncs of metrics.jsonl: a kill -9 loses no line (each is written to the OS
#: at once), a power cut at most the lines of the last second.
SYNC_EVERY = 1.0
_TEMPORARY = re.compile(r"\.(.+)\.[0-9a-f]{12}\.tmp")  # write_atomic's, left behind by a crash


class RunDirectory:
    """One run directory. `create`, `create_new` and `lock` hold its lock until `close`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock: int | None = None
        self._synced = -math.inf  # time.monotonic() of the last fsync of metrics.jsonl

    # creating and locking ---------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, force: bool = False, resume: bool = False) -> RunDirectory:
        """Open `path` for writing, locked: a new or empty directory, one to resume (it holds a
        config.toml), or with `force` one that nnrun created and holds nothing but nnrun's files,
        whose contents are then deleted. Everything is checked again once the lock is held."""
        directory = cls(path)
        here = directory.path
        if force and here.is_symlink():
            raise RunDirectoryError(
                f"--out {here}: is a symbolic link; --force never deletes through a link. "
                f"Give the directory itself, or choose another --out"
            )
        if resume and not (here / CONFIG).is_file():
            raise ConfigError(f"{here}: not an nnrun run directory (no {CONFIG}) to resume")
        if not here.exists():
            try:
                here.mkdir(parents=True)
            except FileExistsError:
                pass  # another process just made it: it is checked and locked like any other
            except OSError as error:
                raise cannot_write(here, error) from None
            else:
                directory.lock()
                directory.write_marker()
                return directory
        directory._check_usable(force, resume)
        directory.lock()
        try:
            directory._check_usable(force, resume)  # what another process did before the lock
            if force and not resume:
                directory._remove_contents()
            if not (here / MARKER).exists() and not resume:
                directory.write_marker()
        except BaseException:
            directory.close()
            raise
        return directory

    @classmethod
    def create_new(cls, path: str | Path) -> RunDirectory:
        """A directory that did not exist, locked: `path`, or `path-2`, `path-3`, ... when that is
        taken. `mkdir` is atomic, so two launches in the same second never share one."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for number in itertools.count(1):
                candidate = path if number == 1 else path.with_name(f"{path.name}-{number}")
                try:
                    candidate.mkdir()
                except FileExistsError:
                    continue
                break
        except OSError as error:
            raise cannot_write(path, error) from None
        directory = cls(candidate)
        directory.lock()
        directory.write_marker()
        return directory

    def _check_usable(self, force: bool, resume: bool) -> None:
        try:
            self._check_contents(force, resume)
        except OSError as error:  # a folder that cannot be listed
            raise RunDirectoryError(
                f"--out {self.path}: cannot read {error.filename or self.path}: {error.strerror}"
            ) from None

    def _check_contents(self, force: bool, resume: bool) -> None:
        here = self.path
        if not here.is_dir():
            raise ConfigError(f"--out {here}: exists and is not a directory")
        if resume:
            if not (here / CONFIG).is_file():
                raise ConfigError(f"{here}: not an nnrun run directory (no {CONFIG}) to resume")
            return
        if not any(entry.name != LOCK for entry in here.iterdir()):
            return
        if not force:
            raise ConfigError(
                f"--out {here}: the directory is not empty; pass --resume to continue the runs in "
                f"it, --force to overwrite it, or choose another --out"
            )
        if not (here / MARKER).is_file() or (here / MARKER).is_symlink():
            raise ConfigError(
                f"--out {here}: --force only overwrites a run directory nnrun created, and this one "
                f"has no {MARKER}; choose another --out (or delete it yourself)"
            )
        foreign = self.foreign_entries()
        if foreign:
            shown = ", ".join(str(p.relative_to(here)) for p in foreign[:5])
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            raise ConfigError(
                f"--out {here}: --force only deletes what nnrun wrote, and this directory also "
                f"holds {shown}{more}; move them out first, or choose another --out"
            )

    def foreign_entries(self) -> list[Path]:
        """What is here that nnrun did not write (a symbolic link counts, except `last`)."""
        foreign = []
        for entry in sorted(self.path.iterdir()):
            if entry.name == CHECKPOINTS and is_plain_folder(entry):
                for run in sorted(entry.iterdir()):
                    if not is_plain_folder(run):
                        foreign.append(run)
                        continue
                    foreign += [item for item in sorted(run.iterdir()) if not _is_checkpoint(item)]
            elif entry.name == STUDIES and is_plain_folder(entry):
                foreign += [item for item in sorted(entry.iterdir()) if not _is_study(item)]
            elif entry.name == EVENTS and is_plain_folder(entry):
                for run in sorted(entry.iterdir()):
                    if not is_plain_folder(run):
                        foreign.append(run)
                        continue
                    foreign += [i for i in sorted(run.iterdir()) if not _is_event_file(i)]
            elif entry.name == MODELS and is_plain_folder(entry):
                foreign += [item for item in sorted(entry.iterdir()) if not _is_model(item)]
            elif entry.name == SUBMITIT and is_plain_folder(entry):  # submitit's files, flat
                foreign += [item for item in sorted(entry.iterdir()) if not is_plain_file(item)]
            elif not (is_plain_file(entry) and _written_name(entry.name, WRITTEN)):
                foreign.append(entry)
        return foreign

    def _remove_contents(self) -> None:
        """Delete nnrun's files one by one (links themselves, never what they point at), and its
        folders only once empty, so nothing else can go with them. The lock file stays: it is held."""
        try:
            for entry in self.path.iterdir():
                if entry.name == CHECKPOINTS and is_plain_folder(entry):
                    for run in entry.iterdir():
                        for item in run.iterdir():
                            item.unlink()
                        run.rmdir()
                    entry.rmdir()
                elif entry.name in (STUDIES, MODELS, SUBMITIT) and is_plain_folder(entry):
                    for item in entry.iterdir():
                        item.unlink()
                    entry.rmdir()
                elif entry.name == EVENTS and is_plain_folder(entry):
                    for run in entry.iterdir():
                        for item in run.iterdir():
                            item.unlink()
                        run.rmdir()
                    entry.rmdir()
                elif entry.name != LOCK:
                    entry.unlink()
        except OSError as error:
            raise RunDirectoryError(
                f"--out {self.path}: cannot delete {error.filename}: {error.strerror}"
            ) from None

    def write_marker(self) -> None:
        import nnrun

        text = f"a run directory written by nnrun {nnrun.__version__}\n".encode()
        write_atomic(self.path / MARKER, lambda stream: stream.write(text))

    def lock(self) -> None:
        """Take the directory's lock, or refuse: another nnrun process is writing it.

        Exclusive for a moment (so no one else holds it at all), then shared: the `--jobs`
        workers share it with their parent, and a newcomer, which needs it exclusive, is refused
        while any of them lives, even after the parent was killed."""
        if fcntl is None or self._lock is not None:
            return
        try:
            fd = open_nofollow(self.path / LOCK, os.O_RDWR | os.O_CREAT)
        except OSError as error:
            raise cannot_write(self.path / LOCK, error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise self._in_use() from None
        self._lock = fd

    def share_lock(self) -> None:
        """Join the lock the parent holds (a `--jobs` worker): shared, never waiting."""
        if fcntl is None or self._lock is not None:
            return
        fd = open_nofollow(self.path / LOCK, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise self._in_use() from None
        self._lock = fd

    def _in_use(self) -> RunDirectoryError:
        return RunDirectoryError(
            f"{self.path}: another nnrun process is writing this run directory (it holds "
            f"{LOCK}); wait for it to finish or stop it, then try again"
        )

    def close(self) -> None:
        """Release the lock."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # paths inside ------------------------------------------------------------------------------
    def file(self, *parts: str) -> Path:
        """`path/parts...`, refused when a folder on the way is a symbolic link (the last part is
        opened with O_NOFOLLOW): nothing read or written may lead out of the run directory."""
        current = self.path
        for part in parts[:-1]:
            current = current / part
            if current.is_symlink():
                raise link_error(current)
        return current / parts[-1]

    def _folder(self, *parts: str) -> Path:
        """Make `path/parts...` (a real folder at every level) and return it."""
        current = self.path
        for part in parts:
            current = current / part
            try:
                current.mkdir()
            except FileExistsError:
                pass
            except OSError as error:
                raise cannot_write(current, error) from None
            if current.is_symlink():
                raise link_error(current)
            if not current.is_dir():
                raise RunDirectoryError(
                    f"{current}: is not a folder; nnrun keeps checkpoints there"
                )
        return current

    def _read(self, *parts: str) -> bytes | None:
        """A file's bytes, None when it does not exist."""
        path = self.file(*parts)
        try:
            fd = open_nofollow(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise RunDirectoryError(f"{path}: cannot read it: {error.strerror}") from None
        with os.fdopen(fd, "rb") as stream:
            return stream.read()

    def _append(self, name: str, text: str, sync: bool = True) -> None:
        """Append `text` with one write; fsync it too when `sync` (else the OS has it, which a
        killed process cannot lose, and `sync_metrics` makes it durable later)."""
        path = self.file(name)
        try:
            fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                data = memoryview(text.encode("utf-8"))
                while data:
                    data = data[os.write(fd, data) :]
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as error:
            raise cannot_write(path, error) from None

    def _parse(
        self,
        name: str,
        parse: Callable[[str], Any],
        error_type: type[Exception],
        language: str,
        missing: str,
    ) -> Any:
        """Read and parse one run-directory file; a missing or damaged one is a one-line error."""
        data = self._read(name)
        if data is None:
            raise RunDirectoryError(missing)
        try:
            return parse(data.decode("utf-8"))
        except (UnicodeDecodeError, error_type) as error:
            raise RunDirectoryError(
                f"{self.file(name)}: cannot read it: damaged, not valid {language} ({error})"
            ) from None

    # config and environment -------------------------------------------------------------------
    def write_config(self, config: dict[str, Any], overrides: list[str]) -> None:
        data = tomli_w.dumps(toml_ready(config)).encode()
        write_atomic(self.file(CONFIG), lambda stream: stream.write(data))
        if overrides:
            text = "".join(f"{override}\n" for override in overrides).encode()
            write_atomic(self.file(OVERRIDES), lambda stream: stream.write(text))

    def read_config(self) -> dict[str, Any]:
        """config.toml as data, checked to be TOML with an [experiment] table."""
        from nnrun.config.compose import tomllib

        path = self.file(CONFIG)
        missing = f"{self.path}: not an nnrun run directory (no {CONFIG})"
        config = self._parse(CONFIG, tomllib.loads, tomllib.TOMLDecodeError, "TOML", missing)
        if not isinstance(config.get("experiment"), dict):
            raise RunDirectoryError(f"{path}: not an nnrun experiment (no [experiment] table)")
        return config

    def write_environment(
        self,
        plugin_distributions: dict[str, str | None],
        required: dict[str, str | None] | None = None,
    ) -> None:
        """Versions of what the run used; `required` is `[experiment] requires` -> installed."""
        import torch

        import nnrun

        environment = {
            "nnrun": nnrun.__version__,
            "torch": torch.__version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cuda": torch.version.cuda if torch.cuda.is_available() else None,
            "plugins": plugin_distributions,
            "requires": required or {},
            "packages": {
                d.metadata["Name"]: d.version for d in distributions() if d.metadata["Name"]
            },
            "argv": sys.argv,
        }
        self.write_json(ENVIRONMENT, environment)

    # metrics and summary ----------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        """One JSON object per line, written at once; synced when `SYNC_EVERY` seconds have passed
        since the last sync, so that many short epochs do not each wait for the disk."""
        due = time.monotonic() - self._synced >= SYNC_EVERY
        self._append(METRICS, json.dumps(record, allow_nan=False) + "\n", sync=due)
        if due:
            self._synced = time.monotonic()

    def sync_metrics(self) -> None:
        """fsync metrics.jsonl now (at a checkpoint and at a run's end)."""
        path = self.file(METRICS)
        try:
            fd = open_nofollow(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        except OSError as error:
            raise cannot_write(path, error) from None
        try:
            os.fsync(fd)
        except OSError as error:
            raise cannot_write(path, error) from None
        finally:
            os.close(fd)
        self._synced = time.monotonic()

    def rewrite_metrics(self, records: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(record, allow_nan=False) + "\n" for record in records)
        data = text.encode("utf-8")
        write_atomic(self.file(METRICS), lambda stream: stream.write(data))

    def log_failure(self, run: str, text: str) -> None:
        self._append(FAILURES, f"--- {run}\n{text}\n")

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every record. A last line without its newline was cut short by a crash and is left
        out; any other line that is not a metrics record means the file is damaged."""
        return self._parse_metrics()[0]

    def metrics_cut_short(self) -> bool:
        """Whether the last line lacks its newline (a crash mid-write): appending after it would
        glue two records into one damaged line."""
        return self._parse_metrics()[1]

    def _parse_metrics(self) -> tuple[list[dict[str, Any]], bool]:
        data = self._read(METRICS)
        if not data:
            return [], False
        lines = data.split(b"\n")
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = _metrics_record(line)
            if record is not None:
                records.append(record)
            elif number < len(lines):  # the last piece has no newline: cut short, not damaged
                raise RunDirectoryError(
                    f"{self.path / METRICS}, line {number}: damaged, not a metrics record (a JSON "
                    f"object with a run name); repair or remove that line"
                )
        return records, bool(lines[-1].strip())

    def write_json(self, name: str, data: Any) -> None:
        text = (json.dumps(data, indent=2, allow_nan=False) + "\n").encode("utf-8")
        write_atomic(self.file(name), lambda stream: stream.write(text))

    def read_summary(self) -> dict[str, Any]:
        path = self.file(SUMMARY)
        missing = f"{self.path}: no {SUMMARY}; is this an nnrun run directory?"
        summary = self._parse(SUMMARY, json.loads, json.JSONDecodeError, "JSON", missing)
        runs = summary.get("runs") if isinstance(summary, dict) else None
        if not (
            isinstance(runs, list)
            and all(
                isinstance(r, dict)
                and isinstance(r.get("name"), str)
                and isinstance(r.get("status"), str)
                for r in runs
            )
        ):
            raise RunDirectoryError(
                f"{path}: not an nnrun summary (it needs a list of runs, each with a name and a status)"
            )
        return summary

    def verify(self) -> dict[str, Any]:
        """Read everything `show` and `compare` rely on, so a damaged directory is reported (one
        line) instead of half shown; return the summary."""
        summary = self.read_summary()
        self.read_config()
        self.read_metrics()
        for run in summary["runs"]:
            self.last_checkpoint(run["name"])
        return summary

    # tuning studies ---------------------------------------------------------------------------
    def study_file(self, run: str) -> Path:
        """`tune/<run>.log`, the journal of a configuration's Optuna study: in a real folder, and
        itself no link (Optuna opens it by name)."""
        path = self._folder(STUDIES) / f"{slug(run)}{STUDY_SUFFIX}"
        if path.is_symlink() or (path.exists() and not is_plain_file(path)):
            raise (
                link_error(path)
                if path.is_symlink()
                else RunDirectoryError(
                    f"{path}: not a plain file; nnrun keeps a tuning study there"
                )
            )
        return path

    # final models -----------------------------------------------------------------------------
    def model_path(self, run: str) -> Path:
        return self.file(MODELS, f"{slug(run)}.pt")

    def save_model(self, run: str, model: dict[str, Any]) -> Path:
        """Write `models/<run>.pt` atomically: the final weights and what predict needs."""
        import torch

        target = self._folder(MODELS) / f"{slug(run)}.pt"
        write_atomic(target, lambda stream: torch.save(model, stream))
        return target

    def load_model(self, run: str) -> dict[str, Any]:
        """`models/<run>.pt`, loaded with `weights_only=True` (a crafted file cannot run code) and
        checked to be a model file nnrun wrote."""
        import torch

        from nnrun.experiment.execute import MODEL_FORMAT

        path = self.model_path(run)
        try:
            fd = open_nofollow(path, os.O_RDONLY)
        except FileNotFoundError:
            raise RunDirectoryError(
                f"{self.path}: run {run!r} has no saved model ({MODELS}/{path.name}); a model is "
                f"saved when a run finishes with status ok"
            ) from None
        except OSError as error:
            raise RunDirectoryError(f"{path}: cannot read it: {error.strerror}") from None
        try:
            with os.fdopen(fd, "rb") as stream:
                model = torch.load(stream, map_location="cpu", weights_only=True)
        except Exception as error:
            raise RunDirectoryError(
                f"{path}: damaged or not written by nnrun: it does not load as a model of tensors "
                f"and plain data ({type(error).__name__})"
            ) from None
        if not (isinstance(model, dict) and model.get("format") == MODEL_FORMAT):
            raise RunDirectoryError(f"{path}: not an nnrun model file ({MODEL_FORMAT})")
        return model

    # checkpoints ------------------------------------------------------------------------------
    def checkpoint_dir(self, run: str) -> Path:
        return self.file(CHECKPOINTS, slug(run), LAST).parent

    def save_checkpoint(self, run: str, name: str, state: dict[str, Any]) -> Path:
        """Write `checkpoints/<run>/<name>.pt` atomically and point `last` at it."""
        import torch

        folder = self._folder(CHECKPOINTS, slug(run))
        target = folder / f"{name}.pt"
        write_atomic(target, lambda stream: torch.save(state, stream))
        self._point_last(folder, target.name)
        return target

    def _point_last(self, folder: Path, name: str) -> None:
        """`last` is a relative link to a file beside it, replaced atomically."""
        link = folder / f".last.{os.getpid()}"
        try:
            link.unlink(missing_ok=True)
            link.symlink_to(name)
            os.replace(link, folder / LAST)
        except OSError as error:
            raise cannot_write(folder / LAST, error) from None

    def last_checkpoint(self, run: str) -> Path | None:
        """The checkpoint `last` names, checked to be a plain file beside it; None if the run has
        none yet. `last` is never followed anywhere else."""
        folder = self.checkpoint_dir(run)
        last = folder / LAST
        if not last.is_symlink():
            if last.exists():
                raise RunDirectoryError(
                    f"{last}: not the link nnrun writes (to a checkpoint beside it)"
                )
            return None
        target = os.readlink(last)
        if not CHECKPOINT_NAME.fullmatch(target):
            raise RunDirectoryError(
                f"{last}: points at {target!r}, not at a checkpoint in {folder}; nnrun does not "
                f"follow it"
            )
        path = folder / target
        if not is_plain_file(path):
            raise RunDirectoryError(f"{last}: points at {target}, which is missing")
        return path

    def load_last_checkpoint(
        self, run: str, on_damaged: Callable[[str], None] | None = None
    ) -> dict[str, Any] | None:
        """The newest checkpoint of `run`, None if it has none. With `on_damaged`, a checkpoint
        that does not load is reported to it and the newest earlier one that loads is used (and
        `last` pointed at it); without, or when none loads, it is an error."""
        path = self.last_checkpoint(run)
        if path is None:
            return None
        try:
            return load_checkpoint(path)
        except RunDirectoryError as error:
            if on_damaged is None:
                raise
            for older in earlier_checkpoints(path):
                try:
                    checkpoint = load_checkpoint(older)
                except RunDirectoryError:
                    continue
                on_damaged(f"{error}; resuming {run} from the checkpoint before it, {older.name}")
                self._point_last(path.parent, older.name)
                return checkpoint
            raise RunDirectoryError(f"{error}; and no earlier checkpoint of {run} loads") from None


def _is_model(item: Path) -> bool:
    """Whether nnrun wrote `item` in models/: a model file, or a leftover temporary one."""
    temporary = _TEMPORARY.fullmatch(item.name)
    name = temporary[1] if temporary else item.name
    return name.endswith(".pt") and is_plain_file(item)


def _metrics_record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not (isinstance(record, dict) and isinstance(record.get("run"), str)):
        return None
    for key in ("epoch", "descent"):
        if key in record and (type(record[key]) is not int):
            return None
    if not all(
        value is None or isinstance(value, (int, float))
        for key in ("train_loss", "val_loss", "seconds")
        if key in record
        for value in [record[key]]
    ):
        return None
    return record


def _written_name(name: str, names: frozenset[str]) -> bool:
    temporary = _TEMPORARY.fullmatch(name)
    return name in names or (temporary is not None and temporary[1] in names)


def _is_study(item: Path) -> bool:
    """Whether nnrun (through Optuna) wrote `item` in `tune/`: a study's journal or its lock."""
    name = item.name.removesuffix(".lock")
    return name.endswith(STUDY_SUFFIX) and is_plain_file(item)


def _is_event_file(item: Path) -> bool:
    """Whether TensorBoard's writer (for `[report] tensorboard`) wrote `item`."""
    return item.name.startswith(EVENTS_PREFIX) and is_plain_file(item)


def _is_checkpoint(item: Path) -> bool:
    """Whether nnrun wrote `item` in a checkpoint folder: a checkpoint, `last`, or a leftover."""
    if item.name == LAST or item.name.startswith(".last."):
        return item.is_symlink()
    temporary = _TEMPORARY.fullmatch(item.name)
    name = temporary[1] if temporary else item.name
    return CHECKPOINT_NAME.fullmatch(name) is not None and is_plain_file(item)


def toml_ready(value: Any) -> Any:
    """TOML has no null: drop None values (they mean "not set")."""
    if isinstance(value, dict):
        return {k: toml_ready(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [toml_ready(v) for v in value if v is not None]
    return value
