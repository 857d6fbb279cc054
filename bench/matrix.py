"""What the throughput benchmarks share: every method at every concurrency (progress on
stderr), the rate of one cell, and the machine block of the JSON."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Callable, Sequence
from typing import Any

Row = dict[str, Any]


def run_matrix(concurrencies: Sequence[int], methods: dict[str, Callable[[int], Row]]) -> list[Row]:
    """``methods[name](concurrency)`` for each concurrency, then each method, in that order."""
    rows: list[Row] = []
    for concurrency in concurrencies:
        for method, run in methods.items():
            print(f"{method} x{concurrency}...", file=sys.stderr, flush=True)
            rows.append({"method": method, "concurrency": concurrency, **run(concurrency)})
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def rate(rows: Sequence[Row], method: str, concurrency: int, key: str) -> float:
    """``key`` (e.g. ``exec_per_s``) of the row of ``method`` at ``concurrency``."""
    return next(r[key] for r in rows if (r["method"], r["concurrency"]) == (method, concurrency))


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
