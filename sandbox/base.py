"""What the Docker and local backends share: a pool of warm servers, run / run_many."""

from __future__ import annotations

import logging
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .models import ExecutionRequest, ExecutionResult, Limits
from .pool import Worker, WorkerLost, WorkerPool, WorkerTimeout
from .protocol import SandboxUnavailable
from .runtime.server import WATCHDOG_GRACE_S
from .verdict import sandbox_error, summarize

log = logging.getLogger(__name__)
# Beyond the server's own watchdog: how long the host waits before killing the whole box.
HOST_GRACE_S = 5.0


class PooledSandbox(ABC):
    """A ``Sandbox`` that runs requests on a pool of warm server processes."""

    name = "pooled"

    def __init__(self, concurrency: int, limits: Limits | None):
        self.limits = limits or Limits()
        self.concurrency = concurrency
        self._pool = WorkerPool(self._start_worker, concurrency)
        self._finalizer = weakref.finalize(self, WorkerPool.close, self._pool)

    @abstractmethod
    def _start_worker(self, key: Hashable) -> Worker:
        """Start one server for container-level limits ``key`` (raise SandboxUnavailable)."""

    def check(self) -> None:
        """Raise ``SandboxUnavailable`` if runs cannot succeed (backends add checks)."""
        return None

    # ----- running ------------------------------------------------------------------------

    def run(self, request: ExecutionRequest) -> ExecutionResult:
        started = time.perf_counter()
        payload = {"op": "run", "request": request.model_dump(mode="json")}
        timeout = request.limits.timeout_s + WATCHDOG_GRACE_S + HOST_GRACE_S

        def elapsed() -> float:
            return round(time.perf_counter() - started, 6)

        try:
            reply = self._pool.run(
                request.limits.container_key(), lambda w: self._execute(w, payload, timeout)
            )
        except SandboxUnavailable as err:
            return sandbox_error(str(err), self.name, elapsed())
        except (WorkerTimeout, WorkerLost) as err:
            # Only the server (PID 1, out of the candidate's reach) reports what the code did;
            # its own watchdog reports timeouts. No reply at all means the box, the connection
            # or the engine failed: infrastructure, whatever the engine says afterwards (a
            # stopping dockerd still answers pings after it has killed the containers).
            return sandbox_error(_lost_message(err, timeout), self.name, elapsed())
        return summarize(request, reply, self.name, elapsed())

    def _execute(self, worker: Worker, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        reply = worker.call(payload, timeout)
        if reply.get("clean") is not True:
            # It could not prove that nothing of this run is left: never reuse it.
            worker.reusable = False
            log.warning("discarding a sandbox after a run: %s", reply.get("problems"))
        return reply

    def run_many(self, requests: Sequence[ExecutionRequest]) -> list[ExecutionResult]:
        if len(requests) <= 1:
            return [self.run(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(self.run, requests))

    def warm(self, count: int | None = None, limits: Limits | None = None) -> int:
        """Start warm servers ahead of time (runs start them on demand otherwise)."""
        return self._pool.warm((limits or self.limits).container_key(), count)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> PooledSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _lost_message(err: Exception, timeout: float) -> str:
    if isinstance(err, WorkerTimeout):
        return f"the sandbox sent no verdict within {timeout:g} s and was killed from outside"
    return f"lost the sandbox during the run (container, connection or engine gone): {err}"
