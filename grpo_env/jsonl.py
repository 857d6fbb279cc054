"""One reader for every JSON-lines file: task files and the append-only logs a run writes.

Every problem names the file and the line: bytes that are not UTF-8 (with the byte and its
column), a line that is not JSON. Append-only files (samples, metrics, results) are written
one line at a time, so a crash can tear only the last line, and only before its newline: such
a line is dropped with a warning (``repair_torn_tail`` rewrites the file without it before
anything is appended again). A broken line anywhere else is an error: the file was damaged
some other way, and guessing would hide it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class JsonlError(ValueError):
    """A line that cannot be read; the message says file, line and what is wrong."""

    def __init__(self, path: str | Path, line: int, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{path}:{line}: {problem}")


@dataclass(frozen=True)
class JsonlRows:
    """The readable lines of a file: ``(line number, parsed value)``; ``torn``: the number of
    the torn last line that was dropped, if any."""

    rows: list[tuple[int, Any]] = field(default_factory=list)
    torn: int | None = None


def read_jsonl(path: str | Path, *, append_only: bool = False) -> JsonlRows:
    """Read ``path`` line by line (blank lines are skipped). ``append_only``: a torn last line
    (no newline, not JSON or cut inside a UTF-8 character) is dropped with a warning."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"file not found: {path}")
    lines = path.read_bytes().split(b"\n")
    # After the last newline: b"" for a complete file, else a line that was never finished.
    unfinished = len(lines) if lines[-1].strip() else None
    rows: list[tuple[int, Any]] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rows.append((number, _parse(raw)))
        except _LineProblem as problem:
            if append_only and number == unfinished and problem.may_be_cut:
                log.warning(
                    "%s:%d: the last line is incomplete (a write cut short by a crash?); "
                    "it is dropped",
                    path,
                    number,
                )
                return JsonlRows(rows, torn=number)
            # Not the torn tail of a crash: only the last line of an append-only file can be.
            raise JsonlError(path, number, str(problem)) from None
    return JsonlRows(rows)


def repair_torn_tail(path: str | Path, read: JsonlRows) -> None:
    """Rewrite ``path`` without its torn last line, atomically, so what is appended next
    starts on a line of its own."""
    if read.torn is None:
        return
    path = Path(path)
    kept = path.read_bytes().split(b"\n")[: read.torn - 1]
    tmp = path.with_name(f".{path.name}.repair-{os.getpid()}")
    tmp.write_bytes(b"".join(line + b"\n" for line in kept if line.strip()))
    os.replace(tmp, path)


class _LineProblem(Exception):
    def __init__(self, text: str, *, may_be_cut: bool = True):
        super().__init__(text)
        self.may_be_cut = may_be_cut  # what a write cut short could leave


def _parse(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        byte = raw[err.start]
        raise _LineProblem(
            f"not UTF-8 text (byte 0x{byte:02x} at column {err.start + 1}); save the file as UTF-8",
            # A cut can split a character only at the very end; a bad byte inside is bad data.
            may_be_cut=err.reason == "unexpected end of data",
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _LineProblem(f"not valid JSON ({err.msg}, column {err.colno})") from None
