"""Warm workers (sandbox server processes) and the pool that lends them out.

A worker is one server process (a container's PID 1, or a local child process) speaking the
line protocol of ``runtime.server``. The pool keeps at most ``size`` of them, keyed by the
container-level limits they were started with; a worker that may hold state from a previous
run (the server could not prove it clean, or the run went wrong) is discarded, never reused.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .protocol import SandboxUnavailable
from .runtime import wire

log = logging.getLogger(__name__)
T = TypeVar("T")
PING_AFTER_IDLE_S = 2.0


class WorkerTimeout(Exception):
    """No reply before the host's deadline; the worker has been killed."""


class WorkerLost(Exception):
    """The worker's process or connection died during a run."""


class Worker(ABC):
    """One warm sandbox server. Subclasses move bytes; this class speaks the protocol."""

    def __init__(self, key: Hashable):
        self.key = key
        self._lines = bytearray()
        self._ids = itertools.count(1)
        self.last_used = time.monotonic()
        self.ready: dict[str, Any] = {}
        self.reusable = True  # False once a run left state the server could not wipe

    # -- transport, per backend --

    @abstractmethod
    def _send(self, data: bytes) -> None: ...

    @abstractmethod
    def _receive(self, timeout: float) -> bytes:
        """Some stdout bytes of the server; b"" at end of stream; raise TimeoutError."""

    @abstractmethod
    def kill(self) -> None:
        """Stop the server now (its runs die with it). Idempotent."""

    def describe_death(self) -> str:
        """Why the server may have died, for error messages."""
        return ""

    def stale(self) -> bool:
        """True when this idle worker should be dropped rather than lent out (say, its
        Docker engine went down, or another engine should take its place)."""
        return False

    # -- protocol --

    def read_message(self, deadline: float) -> dict[str, Any]:
        while True:
            end = self._lines.find(b"\n")
            if end >= 0:
                line = bytes(self._lines[:end])
                del self._lines[: end + 1]
                return wire.loads(line)
            if len(self._lines) > wire.MAX_LINE_BYTES * 4:
                raise WorkerLost("the sandbox server sent an oversized message")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            chunk = self._receive(remaining)
            if not chunk:
                raise WorkerLost(self.describe_death() or "the sandbox server closed its output")
            self._lines += chunk

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        try:
            message = self.read_message(time.monotonic() + timeout)
        except TimeoutError:
            raise SandboxUnavailable(
                f"the sandbox server did not start within {timeout:g} s"
            ) from None
        except (WorkerLost, wire.ProtocolError) as err:
            raise SandboxUnavailable(f"the sandbox server failed to start: {err}") from None
        ready = message.get("ready")
        if not isinstance(ready, dict):
            raise SandboxUnavailable(
                f"the sandbox server said {str(message)[:200]} instead of ready"
            )
        problems = ready.get("problems") or []
        if problems:
            raise SandboxUnavailable("unsafe sandbox: " + "; ".join(map(str, problems)))
        self.ready = ready
        return ready

    def call(self, message: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one request and wait for the reply with the same id."""
        message = {**message, "id": next(self._ids)}
        deadline = time.monotonic() + timeout
        try:
            self._send(wire.dumps(message))
            while True:
                reply = self.read_message(deadline)
                if reply.get("id") == message["id"]:
                    self.last_used = time.monotonic()
                    return reply
        except TimeoutError:
            self.kill()
            raise WorkerTimeout(f"no reply within {timeout:g} s") from None
        except wire.ProtocolError as err:
            self.kill()
            raise WorkerLost(f"the sandbox server sent a malformed reply: {err}") from None
        except OSError as err:
            self.kill()
            raise WorkerLost(
                self.describe_death() or f"connection to the sandbox lost: {err}"
            ) from None

    def alive(self) -> bool:
        """A cheap ping, for workers that sat idle (something may have killed them)."""
        try:
            return self.call({"op": "ping"}, timeout=5.0).get("pong") is True
        except (WorkerTimeout, WorkerLost):
            return False


class WorkerPool:
    """At most ``size`` workers, reused when healthy; other keys' idle workers are evicted
    when a new key needs room."""

    def __init__(self, factory: Callable[[Hashable], Worker], size: int):
        if size < 1:
            raise ValueError(f"sandbox concurrency must be >= 1, got {size}")
        self.size = size
        self._factory = factory
        self._cond = threading.Condition()
        self._idle: dict[Hashable, deque[Worker]] = defaultdict(deque)
        self._count = 0
        self._closed = False

    def run(self, key: Hashable, fn: Callable[[Worker], T]) -> T:
        worker = self._acquire(key)
        healthy = False
        try:
            result = fn(worker)
            healthy = True
            return result
        finally:
            self._release(worker, healthy and worker.reusable)

    def _acquire(self, key: Hashable) -> Worker:
        evict: Worker | None = None
        with self._cond:
            while True:
                if self._closed:
                    raise SandboxUnavailable("the sandbox is closed")
                idle = self._idle[key]
                if idle:
                    worker = idle.pop()
                    break
                if self._count < self.size:
                    self._count += 1
                    worker = None
                    break
                other = next((q for k, q in self._idle.items() if k != key and q), None)
                if other:
                    evict = other.popleft()
                    worker = None
                    break
                self._cond.wait()
        if evict is not None:
            evict.kill()
        if worker is not None:
            if worker.stale():
                worker.kill()
                worker = None
            elif time.monotonic() - worker.last_used > PING_AFTER_IDLE_S and not worker.alive():
                log.warning("a warm sandbox container was gone; starting a fresh one")
                worker.kill()
                worker = None
            else:
                return worker
        try:
            return self._factory(key)
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, worker: Worker, healthy: bool) -> None:
        with self._cond:
            if healthy and not self._closed:
                self._idle[worker.key].append(worker)
                self._cond.notify()
                return
            self._count -= 1
            self._cond.notify()
        worker.kill()

    def warm(self, key: Hashable, count: int | None = None) -> int:
        """Start up to ``count`` (default: size) more idle workers for ``key``, in parallel."""
        with self._cond:
            want = min(count or self.size, self.size) - len(self._idle[key])
            want = min(want, self.size - self._count)
            if want <= 0 or self._closed:
                return 0
            self._count += want
        with ThreadPoolExecutor(max_workers=want) as pool:
            futures = [pool.submit(self._factory, key) for _ in range(want)]
        errors = []
        for future in futures:
            if future.exception() is None:
                self._release(future.result(), True)
                continue
            errors.append(future.exception())
            with self._cond:
                self._count -= 1
                self._cond.notify()
        if errors:
            raise errors[0]
        return want

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle = [w for q in self._idle.values() for w in q]
            self._idle.clear()
            self._count -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.kill()
