"""The checker worker pool: hard timeouts, recovery, concurrency, crashes, clean exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from grpo_env.environments.math import CheckerPool, check_answer
from grpo_env.environments.math.worker import handle
from grpo_env.types import Status

TOWER = r"The answer is $\boxed{9^{9^{9^{9^{9}}}}}$."
PLAIN_TOWER = "The answer is 9^9^9^9^9"
HUGE = r"\boxed{" + "+".join(f"x_{{{i}}}^{{{i}}}" for i in range(8000)) + "}"  # ~100 kB


@pytest.fixture(scope="module")
def pool():
    with CheckerPool(workers=2) as pool:
        yield pool


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (only its exit status is left); so is one reaped in between.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[-1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped between the open and the read
        return False


@pytest.mark.parametrize("completion", [TOWER, PLAIN_TOWER, HUGE], ids=["tower", "plain", "100kB"])
def test_pathological_answers_time_out_and_the_worker_is_replaced(pool, completion):
    if completion is HUGE:
        assert len(completion) > 100_000
    before = set(pool.worker_pids())
    result = pool.check("5", completion, timeout=1.0)
    assert result.status is Status.TIMEOUT
    assert result.score == 0.0
    assert result.components == {"correct": 0.0}
    assert "1 s" in result.details["reason"]
    killed = before - set(pool.worker_pids())
    assert len(killed) == 1
    assert not any(_alive(pid) for pid in killed)
    # The pool stays healthy: the replacement (and the other worker) answer correctly.
    assert [r.score for r in pool.check_many([("1/2", r"\boxed{0.5}")] * 4)] == [1.0] * 4


def test_time_limit_starts_when_the_check_starts_not_when_queued():
    with CheckerPool(workers=1) as single:
        outcome = {}
        slow = threading.Thread(
            target=lambda: outcome.setdefault("slow", single.check("5", TOWER, timeout=2.0))
        )
        slow.start()
        time.sleep(0.3)  # the slow check holds the only worker
        # Queued behind it for ~2 s, longer than its own 1 s limit: it must still be judged.
        fast = single.check("72", "#### 72", timeout=1.0)
        slow.join()
    assert outcome["slow"].status is Status.TIMEOUT
    assert fast.status is Status.OK and fast.score == 1.0


def test_concurrent_callers_get_their_own_answers(pool):
    cases = [(str(n), rf"\boxed{{{n}}}" if n % 3 else rf"\boxed{{{n + 1}}}") for n in range(30)]
    results: dict[int, float] = {}

    def run(i: int) -> None:
        gold, completion = cases[i]
        results[i] = pool.check(gold, completion).score

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: (0.0 if i % 3 == 0 else 1.0) for i in range(len(cases))}


def test_a_crashed_worker_is_an_infra_error_and_is_replaced(pool):
    outcome = {}
    check = threading.Thread(
        target=lambda: outcome.setdefault("result", pool.check("5", TOWER, timeout=60))
    )
    before = set(pool.worker_pids())
    check.start()
    time.sleep(0.5)
    victims = set(pool.worker_pids()) & before
    # Kill every worker: the one running the tower is among them.
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    while any(_alive(pid) for pid in victims):
        time.sleep(0.01)  # the idle one must be dead before we ask for a worker again
    check.join(timeout=60)
    result = outcome["result"]
    assert result.status is Status.INFRA_ERROR
    assert result.score == 0.0
    assert "crashed" in result.details["reason"]
    assert pool.check("3", r"\boxed{3}").score == 1.0


def test_a_checker_that_cannot_start_gives_infra_error_not_a_hang(monkeypatch):
    from grpo_env.environments.math import processes

    # A broken installation: the checker process exits before it is ready.
    monkeypatch.setattr(processes, "WORKER_MODULE", "grpo_env.environments.math.no_such_module")
    broken = CheckerPool(workers=1, startup_timeout=60)
    try:
        result = broken.check("1", r"\boxed{1}")
    finally:
        broken.close()
    assert result.status is Status.INFRA_ERROR
    assert "failed to start" in result.details["reason"]


def test_closed_pool_refuses_checks():
    closed = CheckerPool(workers=1)
    closed.close()
    assert closed.check("1", r"\boxed{1}").status is Status.INFRA_ERROR


def test_worker_reports_resource_exhaustion(monkeypatch):
    from grpo_env.environments.math import checker

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(checker, "check_completion", exhausted)
    response = handle({"op": "check", "gold": "1", "completion": "1"})
    assert response == {"exhausted": "the check ran out of memory"}


def test_worker_turns_checker_exceptions_into_error_results(monkeypatch):
    from grpo_env.environments.math import checker

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(checker, "check_completion", broken)
    response = handle({"op": "check", "gold": "1", "completion": "1"})
    assert response["result"]["status"] == "error"
    assert "ValueError: boom" in response["result"]["details"]["reason"]


def test_workers_are_gone_after_the_interpreter_exits(tmp_path):
    script = textwrap.dedent(
        """
        import json
        from grpo_env.environments.math import check_answer, shared_pool
        assert check_answer("1/2", r"\\boxed{0.5}").score == 1.0
        print(json.dumps(shared_pool().process_ids()))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    pids = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(pids) >= 2  # the zygote and at least one worker
    assert not any(_alive(pid) for pid in pids)


def test_check_answer_uses_the_shared_pool():
    result = check_answer(r"\frac{1}{2004!}", r"The answer is $\boxed{\frac{1}{2006!}}$")
    assert result.status is Status.OK
    assert result.score == 0.0
