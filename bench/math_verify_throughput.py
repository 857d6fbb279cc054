"""Throughput and latency of math answer checking: our worker pool vs math-verify in one process.

    flock /tmp/grpo-heavy.lock python bench/math_verify_throughput.py [--easy 300] [--limit 5]

Both sides check the same mixed set: ``--easy`` ordinary cases from the labelled accuracy set
(tests/environments/data/math_accuracy.jsonl) and a few pathological answers (power towers,
a 100 kB expression, deep nesting), shuffled with a fixed seed.

- "pool": ``CheckerPool`` (one worker per core) with a hard wall limit of ``--limit`` s per
  check; checks are submitted concurrently, as ``score_many`` does for a GRPO group.
- "math_verify_direct": ``verify(parse("$" + gold + "$"), parse(completion))`` called one after
  another in a single process, with math-verify's own timeouts (SIGALRM, ``--limit`` s for
  parsing and again for verifying). It runs in a child process that the benchmark restarts if
  one case takes longer than ``--hang-after`` s (counted as a hang).

Startup (imports, worker warm-up) is excluded from both. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CASES_FILE = ROOT / "tests/environments/data/math_accuracy.jsonl"

PATHOLOGICAL = [
    ("5", r"The answer is $\boxed{9^{9^{9^{9^{9}}}}}$."),
    ("5", "The answer is 9^9^9^9^9"),
    ("5", r"\boxed{" + "+".join(f"x_{{{i}}}^{{{i}}}" for i in range(8000)) + "}"),
    ("1", r"\boxed{" + "(" * 3000 + "1" + ")" * 3000 + "}"),
    ("7", r"\boxed{10^{10^{8}}}"),
    ("3", r"\boxed{(10^{10^{7}})!}"),
]


def build_cases(easy: int, seed: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in CASES_FILE.read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    chosen = rng.sample(rows, min(easy, len(rows)))
    cases = [{"gold": r["gold"], "completion": r["completion"], "kind": "easy"} for r in chosen]
    cases += [{"gold": g, "completion": c, "kind": "pathological"} for g, c in PATHOLOGICAL]
    rng.shuffle(cases)
    return cases


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": at(1.0)}


def summary(cases: list[dict[str, Any]], latencies: list[float], wall: float) -> dict[str, Any]:
    easy = [t for c, t in zip(cases, latencies, strict=True) if c["kind"] == "easy"]
    hard = [t for c, t in zip(cases, latencies, strict=True) if c["kind"] != "easy"]
    return {
        "checks": len(cases),
        "wall_s": round(wall, 2),
        "checks_per_s": round(len(cases) / wall, 2),
        "latency_ms": percentiles(latencies),
        "easy_latency_ms": percentiles(easy),
        "pathological_latency_ms": percentiles(hard),
    }


# ----- our pool ------------------------------------------------------------------------------


def run_pool(cases: list[dict[str, Any]], limit: float, workers: int | None) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from grpo_env.environments.math import CheckerPool

    pool = CheckerPool(workers)
    started = time.perf_counter()
    pool.start()
    startup = time.perf_counter() - started
    latencies = [0.0] * len(cases)
    statuses = [""] * len(cases)

    def one(i: int) -> None:
        t0 = time.perf_counter()
        result = pool.check(cases[i]["gold"], cases[i]["completion"], timeout=limit)
        latencies[i] = time.perf_counter() - t0
        statuses[i] = result.status.value

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=pool.size) as executor:
        list(executor.map(one, range(len(cases))))
    wall = time.perf_counter() - t0
    pool.close()
    out = summary(cases, latencies, wall)
    out.update(
        workers=pool.size,
        startup_s=round(startup, 2),
        timeouts=statuses.count("timeout"),
        infra_errors=statuses.count("infra_error"),
        workers_started=pool.stats.workers_started,
    )
    return out


# ----- math-verify directly, in one process -----------------------------------------------------


def baseline_child(limit: int) -> None:
    """Child mode: read cases (JSON lines) on stdin, check them in order, report each."""
    import logging

    from math_verify import parse, verify

    class Counter(logging.Handler):
        timeouts = 0

        def emit(self, record: logging.LogRecord) -> None:
            if "Timeout" in record.getMessage():
                Counter.timeouts += 1

    logging.getLogger("math_verify").addHandler(Counter())
    logging.getLogger("math_verify").setLevel(logging.WARNING)
    logging.getLogger("math_verify").propagate = False
    verify(parse("$1/2$"), parse("0.5"))  # warm up imports and caches
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        case = json.loads(line)
        t0 = time.perf_counter()
        try:
            ok = bool(
                verify(
                    parse(f"${case['gold']}$", parsing_timeout=limit),
                    parse(case["completion"], parsing_timeout=limit),
                    timeout_seconds=limit,
                )
            )
        except Exception:
            ok = False
        elapsed = time.perf_counter() - t0
        print(json.dumps({"s": elapsed, "ok": ok, "timeouts": Counter.timeouts}), flush=True)


def run_baseline(cases: list[dict[str, Any]], limit: float, hang_after: float) -> dict[str, Any]:
    latencies: list[float] = []
    hangs = 0
    internal_timeouts = 0
    wall = 0.0
    i = 0
    while i < len(cases):
        child = subprocess.Popen(
            [sys.executable, __file__, "--baseline-child", str(int(limit))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        child.stdout.readline()  # ready: imports done
        previous_timeouts = 0
        t_start = time.perf_counter()
        try:
            for case in cases[i:]:
                child.stdin.write(json.dumps(case) + "\n")
                child.stdin.flush()
                ready, _, _ = select.select([child.stdout], [], [], hang_after)
                if not ready:
                    hangs += 1
                    latencies.append(hang_after)
                    i += 1
                    break
                report = json.loads(child.stdout.readline())
                latencies.append(report["s"])
                internal_timeouts += report["timeouts"] - previous_timeouts
                previous_timeouts = report["timeouts"]
                i += 1
        finally:
            wall += time.perf_counter() - t_start
            child.kill()
            child.wait()
    out = summary(cases, latencies, wall)
    out.update(processes=1, hangs=hangs, math_verify_timeouts=internal_timeouts)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--easy", type=int, default=300, help="Ordinary cases in the mix.")
    parser.add_argument("--limit", type=float, default=5.0, help="Per-check limit, seconds.")
    parser.add_argument("--workers", type=int, default=None, help="Pool size (default: cores).")
    parser.add_argument("--hang-after", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_child is not None:
        baseline_child(args.baseline_child)
        return
    cases = build_cases(args.easy, args.seed)
    pool = run_pool(cases, args.limit, args.workers)
    direct = run_baseline(cases, args.limit, args.hang_after)
    report = {
        "benchmark": "math_verify_throughput",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "cases": {
            "easy": sum(c["kind"] == "easy" for c in cases),
            "pathological": sum(c["kind"] != "easy" for c in cases),
        },
        "limit_s": args.limit,
        "pool": pool,
        "math_verify_direct": direct,
        "throughput_ratio": round(pool["checks_per_s"] / direct["checks_per_s"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
