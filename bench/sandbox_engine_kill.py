"""One of two Docker engines killed in the middle of scoring: is every sample accounted for,
and is none scored 0 for the infrastructure's failure?

The 164 HumanEval problems, G completions each (G-1 canonical solutions and one that returns
None), scored as GRPO groups by ``code-unittest`` with the sandbox pool spread over the main
engine and a scratch ``dockerd`` on this machine (needs root). When ``--kill-after`` of the
samples are scored, the scratch engine is SIGKILLed. Every verdict is then compared with what
the completion deserves: a canonical solution scores 1, the broken one less; a sample whose
run the dead engine took must be ``infra_error`` (masked), never a failure.

Prints one JSON object. Run it alone: ``flock /tmp/grpo-heavy.lock python
bench/sandbox_engine_kill.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from matrix import machine

from grpo_env import Status, VerifyResult
from grpo_env.environments.code_tasks import _humaneval_problems, humaneval_task
from grpo_env.environments.code_unittest import CodeUnittestEnv
from grpo_env.sandbox import DockerSandbox, default_image
from grpo_env.sandbox.engines import engine_name
from grpo_env.sandbox.scratch_engine import ScratchEngine


class Placed(DockerSandbox):
    """Notes the engine of each run (by the ``# sample N`` line of its code) and when."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.engine_of: dict[int, str] = {}
        self.lock = threading.Lock()

    def _execute(self, worker: Any, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        tag = re.search(r"# sample (\d+)", payload["request"]["code"] or "")
        if tag:
            with self.lock:
                self.engine_of[int(tag.group(1))] = worker.engine.name
        return super()._execute(worker, payload, timeout)


def completion(index: int, code: str) -> str:
    return f"```python\n# sample {index}\n{code.rstrip()}\n```"


def broken(code: str, entry_point: str) -> str:
    return f"{code}\n\ndef {entry_point}(*args, **kwargs):\n    return None\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kill-after", type=float, default=0.3, help="share scored first")
    parser.add_argument("--image", default=default_image())
    opts = parser.parse_args()

    problems = list(_humaneval_problems())
    tasks = [humaneval_task(p) for p in problems]
    G = opts.group_size
    groups: list[list[tuple[int, str, bool]]] = []  # (sample, completion, deserves 1.0)
    for task, problem in zip(tasks, problems, strict=True):
        base = len(groups) * G
        bad = broken(task.answer, problem["entry_point"])
        group = [(base, completion(base, bad), False)]
        group += [(base + g, completion(base + g, task.answer), True) for g in range(1, G)]
        groups.append(group)
    total = sum(len(g) for g in groups)

    with ScratchEngine() as scratch:
        scratch.load_image(opts.image)
        main_url = engine_name(None)
        sandbox = Placed(
            image=opts.image, concurrency=opts.concurrency, docker_hosts=[main_url, scratch.url]
        )
        env = CodeUnittestEnv(tasks, sandbox=sandbox, timeout_s=30)
        sandbox.warm(opts.concurrency)
        loads = {e.name: e.load for e in sandbox.engines.engines}
        results: dict[int, VerifyResult] = {}
        done = threading.Condition()
        killed_at: list[float] = []

        def score(item: tuple[Any, list[tuple[int, str, bool]]]) -> None:
            task, group = item
            verdicts = env.score_many(task, [c for _, c, _ in group])
            with done:
                results.update({i: v for (i, _, _), v in zip(group, verdicts, strict=True)})
                done.notify_all()

        def killer() -> None:
            with done:
                done.wait_for(lambda: len(results) >= opts.kill_after * total)
            scratch.kill()
            killed_at.append(time.perf_counter())

        started = time.perf_counter()
        threading.Thread(target=killer, daemon=True).start()
        per_group = max(1, opts.concurrency // opts.group_size)  # groups scored at once
        with ThreadPoolExecutor(per_group) as pool:
            list(pool.map(score, zip(tasks, groups, strict=True)))
        wall = time.perf_counter() - started
        sandbox.close()

    deserves = {i: ok for group in groups for i, _, ok in group}
    killed = scratch.url
    scored = list(results.values())
    statuses = Counter(r.status.value for r in scored)
    infra = [i for i, r in results.items() if r.status is Status.INFRA_ERROR]
    wrong = [
        i
        for i, r in results.items()
        if r.status is not Status.INFRA_ERROR and (r.score == 1.0) != deserves[i]
    ]
    report = {
        "benchmark": "sandbox_engine_kill",
        "tasks": f"{len(tasks)} HumanEval problems x G={opts.group_size} "
        "(G-1 canonical solutions, 1 returning None)",
        "engines": [main_url, killed],
        "warm_containers": loads,
        "killed": f"{killed} (SIGKILL) after {opts.kill_after:.0%} of the samples, "
        f"{killed_at[0] - started:.2f} s into the run"
        if killed_at
        else "never",
        "samples": total,
        "accounted_for": len(results),
        "passed": sum(r.status is Status.OK and r.score == 1.0 for r in scored),
        "failed": sum(r.status is not Status.INFRA_ERROR and r.score < 1.0 for r in scored),
        "infra_error": len(infra),
        "statuses": dict(statuses),
        "infra_error_on_the_killed_engine": sum(sandbox.engine_of.get(i) == killed for i in infra),
        # a solution that passes on a healthy engine but was scored < 1 without infra_error
        "scored_0_for_infra": sum(deserves[i] for i in wrong),
        "passed_that_deserved_to_fail": sum(not deserves[i] for i in wrong),
        "runs_per_engine": dict(Counter(sandbox.engine_of.values())),
        "infra_reason": next((results[i].details.get("reason") for i in infra), ""),
        "wall_s": round(wall, 2),
        "machine": machine(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
