"""Sandbox throughput: the 164 HumanEval canonical solutions, three ways, in one run.

(a) ``pool``: grpo-env's warm DockerSandbox (trusted harness, per-test verdicts).
(b) ``docker_run``: one ``docker run`` per execution with the same isolation flags, running
    prompt + solution + test + ``check(...)`` as one program (exit code 0 = passed: the
    naive, forgeable way, here only as the speed anchor).
(c) ``subprocess``: the same program in a plain ``python -I -S`` subprocess, no isolation:
    the ceiling.

Prints one JSON object: executions/s and p50/p99 latency per method and concurrency, and the
ratios pool/docker_run and pool/subprocess. Run it alone (``flock /tmp/grpo-heavy.lock``).

    python bench/sandbox_throughput.py [--concurrency 1 2 4 8] [--docker-run-limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from grpo_env.environments.code_tasks import _humaneval_problems, humaneval_task
from grpo_env.sandbox import DockerSandbox, ExecutionRequest, Limits, TestSuite, default_image
from grpo_env.sandbox.docker_backend import SANDBOX_USER, connect, host_config_args


def program(problem: dict[str, Any]) -> str:
    """The classic HumanEval program: prompt + solution + test + check(entry_point)."""
    return (
        problem["prompt"]
        + problem["canonical_solution"]
        + "\n\n"
        + problem["test"]
        + f"\n\ncheck({problem['entry_point']})\n"
    )


def timed(fn: Callable[[Any], bool], items: list[Any], concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []

    def one(item: Any) -> bool:
        started = time.perf_counter()
        ok = fn(item)
        latencies.append(time.perf_counter() - started)
        return ok

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        oks = list(pool.map(one, items))
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "executions": len(items),
        "passed": sum(oks),
        "wall_s": round(wall, 2),
        "exec_per_s": round(len(items) / wall, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000, 1),
    }


def bench_pool(image: str, concurrency: int, requests: list[ExecutionRequest]) -> dict[str, Any]:
    with DockerSandbox(image=image, concurrency=concurrency) as sandbox:
        started = time.perf_counter()
        sandbox.warm(concurrency)
        warm_s = time.perf_counter() - started
        sandbox.run_many(requests[: 2 * concurrency])  # first runs of each container
        result = timed(lambda r: sandbox.run(r).status.value == "passed", requests, concurrency)
    return {**result, "warmup_s": round(warm_s, 2)}


def bench_docker_run(image: str, concurrency: int, programs: list[str]) -> dict[str, Any]:
    client = connect()
    args = host_config_args(Limits())
    args.pop("auto_remove")
    args.pop("init")
    host_kwargs = {
        "network_mode": args["network_mode"],
        "read_only": args["read_only"],
        "tmpfs": args["tmpfs"],
        "mem_limit": args["mem_limit"],
        "memswap_limit": args["memswap_limit"],
        "pids_limit": args["pids_limit"],
        "nano_cpus": args["nano_cpus"],
        "cap_drop": args["cap_drop"],
        "security_opt": args["security_opt"],
        "ulimits": args["ulimits"],
        "ipc_mode": args["ipc_mode"],
    }

    def one(source: str) -> bool:
        container = client.containers.run(
            image,
            ["python3", "-c", source],
            user=SANDBOX_USER,
            environment={"LANG": "C.UTF-8"},
            detach=True,
            **host_kwargs,
        )
        try:
            return container.wait(timeout=60)["StatusCode"] == 0
        finally:
            container.remove(force=True)

    return timed(one, programs, concurrency)


def bench_subprocess(concurrency: int, programs: list[str]) -> dict[str, Any]:
    def one(source: str) -> bool:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", source], capture_output=True, timeout=60
        )
        return proc.returncode == 0

    return timed(one, programs, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--image", default=default_image())
    parser.add_argument(
        "--docker-run-limit", type=int, default=164, help="executions for docker_run (slow)"
    )
    opts = parser.parse_args()

    problems = list(_humaneval_problems())
    requests = [
        ExecutionRequest(
            code=task.answer, tests=TestSuite.model_validate(task.tests), limits=Limits()
        )
        for task in (humaneval_task(p) for p in problems)
    ]
    programs = [program(p) for p in problems]
    rows: list[dict[str, Any]] = []
    for concurrency in opts.concurrency:
        for method, run in (
            ("pool", lambda c=concurrency: bench_pool(opts.image, c, requests)),
            (
                "docker_run",
                lambda c=concurrency: bench_docker_run(
                    opts.image, c, programs[: opts.docker_run_limit]
                ),
            ),
            ("subprocess", lambda c=concurrency: bench_subprocess(c, programs)),
        ):
            print(f"{method} x{concurrency}...", file=sys.stderr, flush=True)
            rows.append({"method": method, "concurrency": concurrency, **run()})
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)

    def rate(method: str, concurrency: int) -> float:
        return next(
            r["exec_per_s"]
            for r in rows
            if r["method"] == method and r["concurrency"] == concurrency
        )

    ratios = {
        str(c): {
            "pool_over_docker_run": round(rate("pool", c) / rate("docker_run", c), 1),
            "pool_over_subprocess": round(rate("pool", c) / rate("subprocess", c), 2),
        }
        for c in opts.concurrency
    }
    print(
        json.dumps(
            {
                "benchmark": "sandbox_throughput",
                "tasks": "HumanEval canonical solutions",
                "executions": len(requests),
                "image": opts.image,
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "kernel": platform.release(),
                },
                "results": rows,
                "ratios": ratios,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
