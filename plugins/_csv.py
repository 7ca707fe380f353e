"""CSV reading for the `csv` dataset: vectorised, and exact about what is wrong where.

The file is read in chunks of whole lines; numpy's C parser (`np.loadtxt`) turns each chunk into an array
written into one array preallocated from the file's line count, so no Python object is built per
cell and the peak memory stays near the result's size (benchmarks/csv_load.py measures it). Only a
chunk the fast path refuses (a bad cell, a ragged row, a quoted field) is read again line by line
with the `csv` module, to name the first bad line and column, or to skip the bad rows.
"""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import torch

from nnrun.errors import ConfigError, suggest

#: Bytes of lines parsed at a time.
CHUNK_BYTES = 1 << 20
#: Cells that mean "no value" (compared without case), reported as missing rather than as text.
MISSING = frozenset({"na", "n/a", "nan", "null", "none", "?"})
QUOTE = '"'
SKIP_HINT = ' (or set on_bad_rows = "skip" to leave such rows out)'


@dataclass(frozen=True)
class Table:
    x: torch.Tensor
    y: torch.Tensor
    inputs: tuple[str, ...]
    targets: tuple[str, ...]
    classes: tuple[str, ...]
    skipped: int  # bad rows left out with on_bad_rows = "skip"


class _Refused(Exception):
    """The fast path cannot take this chunk as it is: read it line by line."""


def read_csv(
    path: Path,
    inputs: list[str | int] | None,
    targets: list[str | int] | None,
    *,
    header: bool,
    delimiter: str,
    labels: bool,
    skip_bad_rows: bool,
    dtype: torch.dtype,
) -> Table:
    """x (N, inputs) in `dtype`, and y: (N, targets) in `dtype`, or with `labels` (N,) int64
    indices of the sorted distinct labels of the one target column."""
    reader = _Reader(path, delimiter, labels, skip_bad_rows, np.dtype(str(dtype).split(".")[-1]))
    try:
        with path.open(encoding="utf-8-sig") as file:
            return reader.read(file, inputs, targets, header)
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path.name} is not UTF-8 text (byte {error.start} of a chunk is "
            f"{error.object[error.start]:#04x})",
            key="path",
        ) from None


class _Reader:
    def __init__(
        self, path: Path, delimiter: str, labels: bool, skip: bool, dtype: np.dtype
    ) -> None:
        self.path, self.delimiter, self.labels, self.skip, self.dtype = (
            path,
            delimiter,
            labels,
            skip,
            dtype,
        )
        self.names: list[str] = []
        self.header = True
        self.skipped = 0

    def read(self, file, inputs, targets, header: bool) -> Table:
        self.header = header
        number, first = self._first_line(file)
        cells = self._cells(first)
        self.width = len(cells)
        self.names = [c.strip() for c in cells] if header else [str(i) for i in range(len(cells))]
        self.x_columns, self.y_columns = self._columns(inputs, targets)
        self.numeric = self.x_columns + ([] if self.labels else self.y_columns)
        upper = _count_lines(self.path)
        x = np.empty((upper, len(self.x_columns)), dtype=self.dtype)
        y = np.empty((0 if self.labels else upper, len(self.y_columns)), dtype=self.dtype)
        found: list[np.ndarray] = []
        rows = 0
        number = number + 1 if header else number
        for text in _chunks(file, "" if header else first):
            values, label = self._chunk(text, number)
            if rows + len(values) > len(x):  # more rows than lines counted: a file mixing endings
                x = np.concatenate([x, np.empty_like(x, shape=(len(values), x.shape[1]))])
                if not self.labels:
                    y = np.concatenate([y, np.empty_like(y, shape=(len(values), y.shape[1]))])
            x[rows : rows + len(values)] = values[:, : len(self.x_columns)]
            if label is not None:
                found.append(label)
            else:
                y[rows : rows + len(values)] = values[:, len(self.x_columns) :]
            rows += len(values)
            number += text.count("\n")
        if rows == 0:
            what = "a header line but no data rows" if header else "no data rows"
            extra = f" ({self.skipped} bad rows skipped)" if self.skipped else ""
            raise ConfigError(f"{self.path.name} has {what}{extra}", key="path")
        x, y = _trimmed(x, rows), _trimmed(y, rows)
        classes: tuple[str, ...] = ()
        if self.labels:
            y_tensor, classes = encode_labels(np.concatenate(found))
        else:
            y_tensor = torch.from_numpy(y)
        return Table(
            torch.from_numpy(x),
            y_tensor,
            tuple(self.names[c] for c in self.x_columns),
            tuple(self.names[c] for c in self.y_columns),
            classes,
            self.skipped,
        )

    def _first_line(self, file) -> tuple[int, str]:
        """The first line that is not blank (the header, or the first row), and its number."""
        for number, line in enumerate(iter(file.readline, ""), start=1):
            if line.strip():
                return number, line
        raise ConfigError(f"{self.path.name} is empty", key="path")

    def _cells(self, line: str) -> list[str]:
        return next(csv.reader([line], delimiter=self.delimiter, quotechar=QUOTE))

    def _columns(self, inputs, targets) -> tuple[list[int], list[int]]:
        """0-based indices of the input and target columns, from names or indices."""
        y = [self._index(t, "targets") for t in targets] if targets else [self.width - 1]
        if inputs:
            x = [self._index(i, "inputs") for i in inputs]
        else:
            x = [c for c in range(self.width) if c not in y]
        both = sorted(set(x) & set(y))
        if both:
            raise ConfigError(
                f"{self.path.name}: {self._column(both[0])} is both an input and a target",
                key="inputs",
            )
        for what, chosen in (("inputs", x), ("targets", y)):
            if len(set(chosen)) != len(chosen):
                raise ConfigError(f"{self.path.name}: {what} names a column twice", key=what)
        if not x:
            raise ConfigError(
                f"{self.path.name} has {self.width} column(s): none is left for the inputs",
                key="inputs",
            )
        if self.labels and len(y) != 1:
            raise ConfigError("classification takes one target column", key="targets")
        return x, y

    def _index(self, column: str | int, key: str) -> int:
        if isinstance(column, int):
            if not -self.width <= column < self.width:
                raise ConfigError(
                    f"{self.path.name} has {self.width} columns (0 to {self.width - 1}): "
                    f"{key} cannot use column {column}",
                    key=key,
                )
            return column % self.width
        if not self.header:
            raise ConfigError(
                f"{key} names the column {column!r}, but header = false: use 0-based indices",
                key=key,
            )
        if column not in self.names:
            raise ConfigError(
                f"{self.path.name} has no column {column!r}{suggest(column, self.names)}; "
                f"its header names {', '.join(map(repr, self.names))}",
                key=key,
            )
        if self.names.count(column) > 1:
            raise ConfigError(
                f"{self.path.name} names two columns {column!r}: use its index instead",
                key=key,
            )
        return self.names.index(column)

    def _column(self, index: int) -> str:
        return f"column {self.names[index]!r}" if self.header else f"column {index}"

    def _chunk(self, text: str, first: int) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            return self._fast(text)
        except (_Refused, ValueError):
            return self._careful(text.split("\n"), first)

    def _fast(self, text: str) -> tuple[np.ndarray, np.ndarray | None]:
        if QUOTE in text:
            raise _Refused
        d = self.delimiter
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": a chunk of blank lines
            values = np.loadtxt(
                io.StringIO(text),
                dtype=self.dtype,
                delimiter=d,
                comments=None,
                usecols=self.numeric,
                ndmin=2,
            )
        if not self._every_row_full(text, len(values)):
            raise _Refused
        if not np.isfinite(values).all():
            raise _Refused
        if not self.labels:
            return values, None
        label = np.char.strip(
            np.loadtxt(
                io.StringIO(text), dtype=str, delimiter=d, comments=None, usecols=self.y_columns[0]
            )
        )
        if len(label) != len(values) or (label == "").any():
            raise _Refused
        return values, label

    def _every_row_full(self, text: str, rows: int) -> bool:
        """Whether every line of `text` (`rows` of them not blank) has width cells: loadtxt only
        looks at the columns it uses. When it uses the last one, a short row has already failed
        it, so the delimiters of the whole chunk tell; otherwise they are counted per line
        (vectorised), and a blank line sends the chunk to the careful path, which skips it."""
        last = max(self.numeric + (self.y_columns if self.labels else []))
        if last == self.width - 1 or len(self.delimiter.encode()) != 1:
            return text.count(self.delimiter) == (self.width - 1) * rows
        raw = np.frombuffer(text.encode(), dtype=np.uint8)
        ends = np.flatnonzero(raw == 10)
        if len(ends) == 0 or ends[-1] != len(raw) - 1:  # the file's last line has no newline
            ends = np.append(ends, len(raw))
        before = np.concatenate([[0], np.cumsum(raw == ord(self.delimiter), dtype=np.int64)])
        per_line = np.diff(before[ends], prepend=0)
        return bool((per_line == self.width - 1).all())

    def _careful(self, lines: list[str], first: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The chunk line by line: the first bad row is an error (or each is skipped)."""
        rows: list[list[float]] = []
        label: list[str] = []
        for number, line in enumerate(lines, start=first):
            if not line.strip():
                continue
            cells = self._cells(line)
            problem = self._problem(cells)
            if problem:
                if self.skip:
                    self.skipped += 1
                    continue
                raise ConfigError(f"{self.path.name} line {number}{problem}{SKIP_HINT}", key="path")
            rows.append([float(cells[c]) for c in self.numeric])
            if self.labels:
                label.append(cells[self.y_columns[0]].strip())
        values = np.array(rows, dtype=self.dtype).reshape(-1, len(self.numeric))
        return values, (np.array(label, dtype=str) if self.labels else None)

    def _problem(self, cells: list[str]) -> str:
        """What is wrong with one row, as the rest of "file line N...", or ''."""
        if len(cells) != self.width:
            against = "the header has" if self.header else "the first row has"
            return f" has {len(cells)} cells where {against} {self.width}"
        for c in self.numeric:
            cell = cells[c].strip()
            where = f", {self._column(c)}"
            if not cell:
                return f"{where}: the cell is empty"
            if cell.lower() in MISSING:
                return f"{where}: {cell!r} is a missing value"
            try:
                value = float(cell)
            except ValueError:
                return f"{where}: {cell!r} is not a number"
            if not np.isfinite(np.asarray(value, dtype=self.dtype)):
                return f"{where}: {cell!r} is not a finite number in {self.dtype}"
        if self.labels and not cells[self.y_columns[0]].strip():
            return f", {self._column(self.y_columns[0])}: the label is empty"
        return ""


def _chunks(file: TextIO, first: str) -> Iterator[str]:
    """The file's text from where `file` stands, `first` before it, in pieces of whole lines of
    about CHUNK_BYTES (text mode has made every line end in \\n)."""
    rest = first
    while block := file.read(CHUNK_BYTES):
        text = rest + block
        cut = text.rfind("\n") + 1
        text, rest = text[:cut], text[cut:]
        if text:
            yield text
    if rest:
        yield rest


def _count_lines(path: Path) -> int:
    """An upper bound on the rows: the newlines, plus one for a last line without one."""
    newlines = returns = 0  # old Mac files end their lines in \r alone
    with path.open("rb") as file:
        while block := file.read(CHUNK_BYTES):
            newlines, returns = newlines + block.count(b"\n"), returns + block.count(b"\r")
    return max(newlines, returns) + 1


def _trimmed(array: np.ndarray, rows: int) -> np.ndarray:
    """The first `rows` rows: a view, unless so many rows were left empty that a copy is cheaper."""
    if len(array) == 0:
        return array
    if len(array) - rows > max(64, rows // 100):
        return array[:rows].copy()
    return array[:rows]


def encode_labels(values: np.ndarray) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Class indices (N,) int64 of labels in sorted order, and the class names: integer labels
    (also written as text) sort as numbers, so "10" comes after "9"; other text sorts as text."""
    if values.dtype.kind in "US":
        with contextlib.suppress(ValueError, OverflowError):
            values = values.astype(np.int64)
    classes, inverse = np.unique(values, return_inverse=True)
    indices = torch.from_numpy(inverse.reshape(-1).astype(np.int64))
    return indices, tuple(str(c) for c in classes.tolist())
