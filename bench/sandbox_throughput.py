"""Sandbox throughput: the 164 HumanEval canonical solutions, three ways, in one run.

(a) ``pool``: grpo-env's warm DockerSandbox (trusted harness, per-test verdicts).
(b) ``docker_run``: one ``docker run`` per execution with the same isolation flags, running
    prompt + solution + test + ``check(...)`` as one program (exit code 0 = passed: the
    naive, forgeable way, here only as the speed anchor).
(c) ``subprocess``: the same program in a plain ``python -I -S`` subprocess, no isolation:
    the ceiling.
(d) ``pool_2_engines`` (with ``--two-engines``): the warm pool spread over two Docker engines,
    the main one and a scratch ``dockerd`` started on this machine (needs root); on one
    machine both engines share its CPUs, so this measures the overhead of spreading, not a
    speed-up (that needs engines on other machines).

Prints one JSON object: executions/s and p50/p99 latency per method and concurrency, and the
ratios of the pool to each other method. Run it alone (``flock /tmp/grpo-heavy.lock``).

    python bench/sandbox_throughput.py [--concurrency 1 2 4 8] [--docker-run-limit N]
        [--methods pool docker_run subprocess pool_2_engines] [--two-engines]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from matrix import machine, rate, run_matrix

from grpo_env.environments.code_tasks import _humaneval_problems, humaneval_task
from grpo_env.sandbox import DockerSandbox, ExecutionRequest, Limits, TestSuite, default_image
from grpo_env.sandbox.docker_backend import SANDBOX_USER, connect, host_config_args
from grpo_env.sandbox.engines import engine_name
from grpo_env.sandbox.scratch_engine import ScratchEngine


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


def bench_pool(
    image: str,
    concurrency: int,
    requests: list[ExecutionRequest],
    docker_hosts: list[str] | None = None,
) -> dict[str, Any]:
    with DockerSandbox(image=image, concurrency=concurrency, docker_hosts=docker_hosts) as sandbox:
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
    parser.add_argument("--methods", nargs="+", default=["pool", "docker_run", "subprocess"])
    parser.add_argument(
        "--two-engines", action="store_true", help="also pool_2_engines (a scratch dockerd)"
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
    with contextlib.ExitStack() as stack:
        methods = {
            "pool": lambda c: bench_pool(opts.image, c, requests),
            "docker_run": lambda c: bench_docker_run(
                opts.image, c, programs[: opts.docker_run_limit]
            ),
            "subprocess": lambda c: bench_subprocess(c, programs),
        }
        chosen = [m for m in opts.methods if m in (*methods, "pool_2_engines")]
        if opts.two_engines and "pool_2_engines" not in chosen:
            chosen.append("pool_2_engines")
        if "pool_2_engines" in chosen:
            scratch = stack.enter_context(ScratchEngine())
            scratch.load_image(opts.image)
            hosts = [engine_name(None), scratch.url]
            methods["pool_2_engines"] = lambda c: bench_pool(opts.image, c, requests, hosts)
        rows = run_matrix(opts.concurrency, {m: methods[m] for m in chosen})

    ratios = {
        str(c): {
            f"pool_over_{m}": round(
                rate(rows, "pool", c, "exec_per_s") / rate(rows, m, c, "exec_per_s"), 2
            )
            for m in chosen
            if m != "pool"
        }
        for c in opts.concurrency
        if "pool" in chosen
    }
    print(
        json.dumps(
            {
                "benchmark": "sandbox_throughput",
                "tasks": "HumanEval canonical solutions",
                "executions": len(requests),
                "image": opts.image,
                "machine": machine(),
                "results": rows,
                "ratios": ratios,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
