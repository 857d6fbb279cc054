"""A pool of killable checker processes with a hard wall limit per check.

Why processes: a sympy computation (``9^9^9^9^9``, a 100 kB expression) can run for minutes
inside C code where no signal or thread can interrupt it. math-verify's own timeout is
SIGALRM, which works only on the main thread and cannot stop such code either. Here each check
runs in a worker process; if it is not answered within its limit the worker is killed (SIGKILL)
and replaced in the background, and the check reports ``status=timeout``.

- The limit starts when the check is handed to a worker, not when it was queued.
- Any number of threads may call ``check`` at once; each worker serves one check at a time.
- Workers are forked from a warm process that has imported sympy and math-verify
  (``processes.Zygote``): a replacement is ready in milliseconds, and the first check is
  not charged for imports.
- A worker that dies mid-check gives ``infra_error`` (masked by agents), never a silent 0.
- Workers run in their own session (Ctrl-C in a terminal does not reach them), exit when the
  parent's pipe closes, and are killed when the pool closes (at interpreter exit for the
  shared pool).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from grpo_env.environments.math.processes import (
    WorkerCrashed,
    WorkerProcess,
    WorkerTimeout,
    Zygote,
)
from grpo_env.types import Status, VerifyResult

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 2048
STARTUP_TIMEOUT_S = 120.0
_RESTART_ATTEMPTS = 3
SPAWN_TIMEOUT_S = 30.0


class PoolUnavailable(RuntimeError):
    """No worker can serve checks (closed pool, or a checker process that fails to start)."""


def default_workers() -> int:
    """``GRPO_ENV_MATH_WORKERS``, else one worker per CPU core (at most 8)."""
    configured = os.environ.get("GRPO_ENV_MATH_WORKERS")
    if configured:
        return max(1, int(configured))
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass
class PoolStats:
    """Counters, for logs and benchmarks."""

    checks: int = 0
    timeouts: int = 0
    crashes: int = 0
    workers_started: int = 0
    worker_pids: list[int] = field(default_factory=list)


_LIVE_POOLS: weakref.WeakSet[CheckerPool] = weakref.WeakSet()


class CheckerPool:
    """Worker processes that run math checks with a hard wall limit each.

    Args:
        workers: number of processes (default ``default_workers()``).
        memory_mb: address-space limit of each worker (0 = none); a check that exceeds it
            reports ``timeout`` like one that runs too long.
        startup_timeout: how long the checker process may take to import and warm up.
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        memory_mb: int = DEFAULT_MEMORY_MB,
        startup_timeout: float = STARTUP_TIMEOUT_S,
    ):
        self.size = workers if workers is not None else default_workers()
        if self.size < 1:
            raise ValueError(f"a checker pool needs at least 1 worker, got {self.size}")
        self.memory_mb = memory_mb
        self.startup_timeout = startup_timeout
        self.stats = PoolStats()
        self._idle: queue.Queue[WorkerProcess] = queue.Queue()
        self._workers: set[WorkerProcess] = set()
        self._zygote: Zygote | None = None
        self._lock = threading.Lock()
        self._zygote_lock = threading.Lock()
        self._started = False
        self._closed = False
        self._broken: str | None = None
        self._owner_pid = os.getpid()
        _LIVE_POOLS.add(self)

    # ----- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers now (otherwise the first check does)."""
        with self._lock:
            if self._started:
                return
            if self._closed:
                raise PoolUnavailable("the checker pool is closed")
            try:
                workers = [self._fork_worker() for _ in range(self.size)]
            except (WorkerTimeout, WorkerCrashed) as err:
                self._close_everything()
                raise PoolUnavailable(f"checker workers failed to start: {err}") from err
            for worker in workers:
                self._idle.put(worker)
            self._started = True

    def close(self) -> None:
        """Kill every worker and the zygote. Checks in flight report ``infra_error``."""
        if os.getpid() != self._owner_pid:
            return  # a forked child must not kill its parent's workers
        with self._lock:
            self._closed = True
            self._close_everything()

    def _close_everything(self) -> None:
        for worker in list(self._workers):
            self._forget(worker)
        with self._zygote_lock:
            if self._zygote is not None:
                self._zygote.close()
                self._zygote = None

    @property
    def closed(self) -> bool:
        return self._closed

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return sorted(w.pid for w in self._workers)

    def process_ids(self) -> list[int]:
        """Every process of the pool: the workers and the zygote that forks them."""
        zygote = self._zygote
        alive = [zygote.process.pid] if zygote is not None and zygote.alive else []
        return sorted(alive + self.worker_pids())

    def __enter__(self) -> CheckerPool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- checks ---------------------------------------------------------------------------

    def check(
        self,
        gold: str,
        completion: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        last_number_fallback: bool = False,
        prose_conclusion: bool = False,
        question: str | None = None,
        answer_kind: str = "expression",
    ) -> VerifyResult:
        """Check one completion against a reference answer (see ``check_answer``)."""
        request = check_request(
            gold,
            completion,
            last_number_fallback=last_number_fallback,
            prose_conclusion=prose_conclusion,
            question=question,
            answer_kind=answer_kind,
        )
        return self.run(request, timeout=timeout)

    def check_many(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        last_number_fallback: bool = False,
        prose_conclusion: bool = False,
        answer_kind: str = "expression",
    ) -> list[VerifyResult]:
        """Check several (gold, completion) pairs concurrently; results in input order."""
        requests = [
            check_request(
                gold,
                completion,
                last_number_fallback=last_number_fallback,
                prose_conclusion=prose_conclusion,
                answer_kind=answer_kind,
            )
            for gold, completion in pairs
        ]
        return self.run_many(requests, timeout=timeout)

    def run_many(
        self,
        requests: Sequence[dict[str, Any]],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        preload: dict[str, Any] | None = None,
    ) -> list[VerifyResult]:
        if len(requests) <= 1:
            return [self.run(r, timeout=timeout, preload=preload) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.size, len(requests))) as executor:
            futures = [
                executor.submit(self.run, r, timeout=timeout, preload=preload) for r in requests
            ]
            return [f.result() for f in futures]

    def run(
        self,
        request: dict[str, Any],
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        preload: dict[str, Any] | None = None,
    ) -> VerifyResult:
        """Send one request to a free worker. ``preload`` is a request that must have run on
        that worker first (loading a dataset), outside the check's time limit."""
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        try:
            worker = self._acquire()
        except PoolUnavailable as err:
            return VerifyResult.infra_error(f"math checker unavailable: {err}")
        if preload is not None:
            key = json.dumps(preload, sort_keys=True)
            if key not in worker.loaded:
                try:
                    worker.call(preload, time.monotonic() + self.startup_timeout)
                except (WorkerTimeout, WorkerCrashed) as err:
                    self._replace(worker)
                    return VerifyResult.infra_error(f"math checker could not load {key}: {err}")
                worker.loaded.add(key)
        try:
            # The limit starts now, when a worker has the check, not when it was queued.
            response = worker.call(request, time.monotonic() + timeout)
        except WorkerTimeout:
            self._replace(worker)
            with self._lock:
                self.stats.checks += 1
                self.stats.timeouts += 1
            return _timeout_result(f"the check took longer than {timeout:g} s and was stopped")
        except WorkerCrashed as err:
            self._replace(worker)
            with self._lock:
                self.stats.crashes += 1
            if self._closed:
                return VerifyResult.infra_error("the math checker pool was closed")
            log.error("math checker worker crashed: %s", err)
            return VerifyResult.infra_error(f"math checker worker crashed: {err}")
        with self._lock:
            self.stats.checks += 1
        if "exhausted" in response:
            # Memory or recursion ran out: the worker may be in a bad state, start afresh.
            self._replace(worker)
            with self._lock:
                self.stats.timeouts += 1
            return _timeout_result(str(response["exhausted"]))
        self._idle.put(worker)
        return VerifyResult.model_validate(response["result"])

    # ----- workers --------------------------------------------------------------------------

    def _acquire(self) -> WorkerProcess:
        if os.getpid() != self._owner_pid:
            raise PoolUnavailable("this pool belongs to another process (forked)")
        if not self._started:
            self.start()
        while True:
            if self._closed:
                raise PoolUnavailable("the checker pool is closed")
            try:
                worker = self._idle.get(timeout=0.5)
            except queue.Empty:
                if self._broken is not None and self._idle.empty():
                    raise PoolUnavailable(self._broken) from None
                continue
            if not worker.looks_dead():
                return worker
            self._replace(worker)  # died while idle (killed from outside): fork another

    def _fork_worker(self) -> WorkerProcess:
        """A new worker from the zygote (restarting the zygote if it died)."""
        with self._zygote_lock:
            if self._closed and self._started:
                raise WorkerCrashed("the pool is closed")
            if self._zygote is None or not self._zygote.alive:
                if self._zygote is not None:
                    self._zygote.close()
                self._zygote = Zygote(self.startup_timeout)
            zygote = self._zygote
        worker = zygote.spawn(self.memory_mb, SPAWN_TIMEOUT_S)
        self._workers.add(worker)
        self.stats.workers_started += 1
        self.stats.worker_pids.append(worker.pid)
        return worker

    def _forget(self, worker: WorkerProcess) -> None:
        worker.kill()
        self._workers.discard(worker)

    def _replace(self, worker: WorkerProcess) -> None:
        """Kill ``worker`` and fork a replacement in the background (callers do not wait)."""
        with self._lock:
            self._forget(worker)
            if self._closed:
                return
        threading.Thread(target=self._start_replacement, daemon=True, name="math-worker").start()

    def _start_replacement(self) -> None:
        error: Exception | None = None
        for attempt in range(_RESTART_ATTEMPTS):
            if self._closed:
                return
            try:
                worker = self._fork_worker()
            except (WorkerTimeout, WorkerCrashed) as err:
                error = err
                time.sleep(0.5 * 2**attempt)
                continue
            with self._lock:
                if self._closed:
                    self._forget(worker)
                    return
            self._idle.put(worker)
            return
        self._broken = f"replacement checker workers failed to start: {error}"
        log.error("math checker pool: %s", self._broken)


def _timeout_result(reason: str) -> VerifyResult:
    return VerifyResult(
        score=0.0,
        status=Status.TIMEOUT,
        components={"correct": 0.0},
        details={"reason": reason},
    )


_shared: CheckerPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> CheckerPool:
    """The process-wide pool used by ``check_answer`` and the math environments."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.closed or _shared._owner_pid != os.getpid():
            _shared = CheckerPool()
        return _shared


@atexit.register
def _close_pools() -> None:
    for pool in list(_LIVE_POOLS):
        pool.close()


def check_request(
    gold: str,
    completion: str,
    *,
    last_number_fallback: bool = False,
    prose_conclusion: bool = False,
    question: str | None = None,
    answer_kind: str = "expression",
) -> dict[str, Any]:
    """The worker request of one math check (see ``check_answer`` for the fields)."""
    return {
        "op": "check",
        "gold": gold,
        "completion": completion,
        "last_number_fallback": last_number_fallback,
        "prose_conclusion": prose_conclusion,
        "question": question,
        "answer_kind": answer_kind,
    }


def check_answer(
    gold: str,
    completion: str,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    last_number_fallback: bool = False,
    prose_conclusion: bool = False,
    question: str | None = None,
    answer_kind: str = "expression",
    pool: CheckerPool | None = None,
) -> VerifyResult:
    """Score a completion's final answer against a reference answer.

    Args:
        gold: the reference: a bare answer (``"\\frac{1}{2}"``, ``"72"``) or a worked
            solution whose last ``\\boxed{}`` or ``#### N`` holds the answer.
        completion: the model's text. Its final answer is the content of an ``<answer>``
            block, else the last ``\\boxed{}``, else ``#### N``, else "the answer is ...".
        timeout: wall-clock limit of the check in seconds, counted from when a worker
            starts it; past it the worker is killed and the result is ``timeout``.
        last_number_fallback: when no final answer is marked, use the last number in the
            text (off by default: it rewards ending on any number).
        prose_conclusion: when no final answer is marked, read the value the closing sentence
            concludes with (off by default: it rewards answers in a format not asked for).
        question: the prompt the model answered; an answer that restates its expressions
            scores 0 (``answer_form.restates_question``).
        answer_kind: ``"number"`` (the answer must be a numeral) or ``"expression"`` (any
            equivalent form: the default).
        pool: the worker pool to use (default: the shared one).

    Returns:
        ``VerifyResult`` with score 1.0 or 0.0, component ``correct``, and ``details``
        (reference, extracted answer, source, method, reason). Status ``ok``,
        ``invalid_format`` (no answer, or several different answers), ``timeout``, ``error``
        (the checker raised on this input) or ``infra_error`` (a worker crashed).
    """
    return (pool or shared_pool()).check(
        gold,
        completion,
        timeout=timeout,
        last_number_fallback=last_number_fallback,
        prose_conclusion=prose_conclusion,
        question=question,
        answer_kind=answer_kind,
    )
