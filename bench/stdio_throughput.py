"""Stdin/stdout throughput: the 50 tasks of ``bench/data/stdio_tasks.jsonl`` (5 cases each, the
reference programs), two ways, in one run.

(a) ``pool``: grpo-env's warm DockerSandbox: one request per task; the trusted judge runs the
    program once per case (forked from the in-box zygote) and compares stdout.
(b) ``docker_run``: one ``docker run -i`` per case with the same isolation flags, stdin piped
    in, stdout compared here: the naive way, as the speed anchor.

Prints one JSON object: tasks/s and cases/s per method and concurrency, and pool/docker_run.
Run it alone: ``flock /tmp/grpo-heavy.lock python bench/stdio_throughput.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from matrix import machine, rate, run_matrix

from grpo_env.environments.code_datasets import code_dataset
from grpo_env.sandbox import DockerSandbox, ExecutionRequest, IOSuite, Limits, default_image
from grpo_env.sandbox.docker_backend import SANDBOX_USER
from grpo_env.sandbox.runtime.judge import compare

TASKS = Path(__file__).parent / "data" / "stdio_tasks.jsonl"


def load() -> list[tuple[str, IOSuite]]:
    return [(t.answer, IOSuite.model_validate(t.tests)) for t in code_dataset(TASKS, "apps")]


def timed(fn: Any, items: list[Any], concurrency: int, cases: int) -> dict[str, Any]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        oks = list(pool.map(fn, items))
    wall = time.perf_counter() - started
    return {
        "tasks": len(items),
        "cases": cases,
        "passed": sum(oks),
        "wall_s": round(wall, 2),
        "tasks_per_s": round(len(items) / wall, 2),
        "cases_per_s": round(cases / wall, 1),
    }


def bench_pool(image: str, concurrency: int, tasks: list[tuple[str, IOSuite]]) -> dict[str, Any]:
    requests = [ExecutionRequest(code=c, io=s, limits=Limits(timeout_s=20)) for c, s in tasks]
    cases = sum(len(s.cases) for _, s in tasks)
    with DockerSandbox(image=image, concurrency=concurrency) as sandbox:
        sandbox.warm(concurrency)
        sandbox.run_many(requests[: 2 * concurrency])  # first runs of each container

        def one(request: ExecutionRequest) -> bool:
            return sandbox.run(request).status.value == "passed"

        return timed(one, requests, concurrency, cases)


def docker_run_case(image: str, program: str, stdin: str) -> str:
    argv = [
        "docker", "run", "--rm", "-i", "--network", "none", "--read-only",
        "--tmpfs", "/tmp:size=64m", "--memory", "512m", "--memory-swap", "512m",
        "--pids-limit", "64", "--cpus", "1", "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges", "--user", SANDBOX_USER,
        image, "python3", "-c", program,
    ]  # fmt: skip
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    return proc.stdout if proc.returncode == 0 else "\0failed"


def bench_docker_run(image: str, concurrency: int, tasks: list[tuple[str, IOSuite]]) -> dict:
    def one(task: tuple[str, IOSuite]) -> bool:
        program, suite = task
        return all(
            compare(docker_run_case(image, program, c.input), c.output, suite.compare)[0]
            for c in suite.cases
        )

    return timed(one, tasks, concurrency, sum(len(s.cases) for _, s in tasks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--image", default=default_image())
    parser.add_argument("--docker-run-tasks", type=int, default=10, help="tasks for docker_run")
    opts = parser.parse_args()
    tasks = load()
    rows = run_matrix(
        opts.concurrency,
        {
            "pool": lambda c: bench_pool(opts.image, c, tasks),
            "docker_run": lambda c: bench_docker_run(opts.image, c, tasks[: opts.docker_run_tasks]),
        },
    )
    print(
        json.dumps(
            {
                "benchmark": "stdio_throughput",
                "tasks": f"{len(tasks)} stdin/stdout tasks x 5 cases ({TASKS.name})",
                "image": opts.image,
                "machine": machine(),
                "results": rows,
                "pool_over_docker_run": {
                    str(c): round(
                        rate(rows, "pool", c, "cases_per_s")
                        / rate(rows, "docker_run", c, "cases_per_s"),
                        1,
                    )
                    for c in opts.concurrency
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
