"""A bounded, escaped preview of text a program wrote, for a terminal.

Captured output can be a megabyte on one line (printing it through rich's wrapping costs time
quadratic in the line length) and can hold terminal control sequences. The preview keeps the
first lines, cuts long ones, and shows control characters as escapes (``\\x1b``)."""

from __future__ import annotations

MAX_LINES = 40
MAX_LINE_CHARS = 300


def preview(text: str, *, max_lines: int = MAX_LINES, max_line_chars: int = MAX_LINE_CHARS) -> str:
    """At most ``max_lines`` lines of at most ``max_line_chars`` characters (plus a note of
    what was left out), every control character but tab escaped."""
    lines = text.splitlines()
    shown = []
    for line in lines[:max_lines]:
        cut = line[:max_line_chars]
        note = f" ... (+{len(line) - len(cut)} chars)" if len(line) > len(cut) else ""
        shown.append(_escape(cut) + note)
    if len(lines) > max_lines:
        shown.append(f"... (+{len(lines) - max_lines} lines)")
    return "\n".join(shown)


def _escape(line: str) -> str:
    return "".join(
        c if c.isprintable() or c == "\t" else c.encode("unicode_escape").decode("ascii")
        for c in line
    )
