"""Checker processes: a warm fork server (the "zygote") and the workers it forks.

Importing sympy, math-verify and grpo-env takes about two seconds of CPU. A pool that killed
a worker on every timeout and started a fresh interpreter would spend that on every
pathological answer, and callers would queue behind the restart. So one zygote process
imports everything once and warms up; a new worker is a ``fork()`` of it (milliseconds,
memory shared copy-on-write).

Plumbing: the pool talks to the zygote over a ``SOCK_SEQPACKET`` socket pair. To start a
worker it creates two pipes and passes the worker's ends to the zygote (``SCM_RIGHTS``); the
zygote forks, the child serves JSON lines on those pipes (``worker.serve``), and the zygote
replies with the child's pid. The zygote ignores ``SIGCHLD`` so the kernel reaps dead workers.
Workers exit when their request pipe closes, the zygote when its socket closes: nothing
outlives the pool's process.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, BinaryIO

WORKER_MODULE = "grpo_env.environments.math.worker"


KILL_WAIT_S = 2.0


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class WorkerTimeout(RuntimeError):
    """A process did not answer in time."""


class WorkerCrashed(RuntimeError):
    """A process died or broke the protocol."""


def _read_json_line(fd: int, buffer: bytearray, deadline: float, who: str) -> dict[str, Any]:
    """One JSON line from ``fd`` (``buffer`` keeps what was read past it)."""
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WorkerTimeout(f"{who} did not answer in time")
        readable, _, _ = select.select([fd], [], [], remaining)
        if not readable:
            continue  # the loop re-checks the deadline
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise WorkerCrashed(f"{who} died")
        buffer += chunk
    end = buffer.index(b"\n")
    line = bytes(buffer[:end])
    del buffer[: end + 1]
    try:
        message = json.loads(line)
    except json.JSONDecodeError as err:
        raise WorkerCrashed(f"{who} wrote non-JSON: {line[:200]!r}") from err
    if "protocol_error" in message:
        raise WorkerCrashed(f"{who}: {message['protocol_error']}")
    return message


class WorkerProcess:
    """One forked worker: its pid, the pipe we write requests to, the pipe we read from."""

    def __init__(self, pid: int, requests: BinaryIO, responses_fd: int):
        self.pid = pid
        self._requests = requests
        self._responses_fd = responses_fd
        self._buffer = bytearray()
        self._next_id = 0
        self.loaded: set[str] = set()  # datasets this worker has loaded (outside any limit)

    def wait_ready(self, timeout: float) -> None:
        message = _read_json_line(
            self._responses_fd, self._buffer, time.monotonic() + timeout, self._who
        )
        if not message.get("ready"):
            raise WorkerCrashed(f"{self._who} sent {message!r} instead of ready")

    def call(self, request: dict[str, Any], deadline: float) -> dict[str, Any]:
        self._next_id += 1
        payload = json.dumps({**request, "id": self._next_id}) + "\n"
        try:
            self._requests.write(payload.encode("utf-8"))
            self._requests.flush()
        except OSError as err:  # BrokenPipeError: it is gone
            raise WorkerCrashed(f"{self._who} is gone") from err
        response = _read_json_line(self._responses_fd, self._buffer, deadline, self._who)
        if response.get("id") != self._next_id:
            raise WorkerCrashed(f"{self._who} answered out of turn: {response!r}"[:300])
        return response

    def looks_dead(self) -> bool:
        """An idle worker has nothing to say: a readable pipe means it died (EOF)."""
        readable, _, _ = select.select([self._responses_fd], [], [], 0)
        return bool(readable)

    def kill(self) -> None:
        """SIGKILL, then wait (briefly) until the kernel has removed the process."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        else:
            deadline = time.monotonic() + KILL_WAIT_S
            while time.monotonic() < deadline and _exists(self.pid):
                time.sleep(0.002)
        with contextlib.suppress(OSError):
            self._requests.close()
        with contextlib.suppress(OSError):
            os.close(self._responses_fd)

    @property
    def _who(self) -> str:
        return f"checker worker {self.pid}"


class Zygote:
    """The warm process that forks workers. ``spawn`` is thread-safe."""

    def __init__(self, startup_timeout: float):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        # The zygote must import this very grpo_env (editable installs, source checkouts).
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, "--zygote", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                env=env,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,  # Ctrl-C in a terminal is for the trainer, not us
            )
        finally:
            theirs.close()
        self._socket = ours
        self._lock = threading.Lock()
        assert self.process.stdout is not None
        try:
            message = _read_json_line(
                self.process.stdout.fileno(),
                bytearray(),
                time.monotonic() + startup_timeout,
                "checker zygote",
            )
        except (WorkerTimeout, WorkerCrashed) as err:
            self.close()
            raise WorkerCrashed(f"the checker process failed to start: {err}") from err
        if not message.get("ready"):
            self.close()
            raise WorkerCrashed(f"the checker process sent {message!r} instead of ready")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(self, memory_mb: int, timeout: float) -> WorkerProcess:
        """Fork a worker whose address space is limited to ``memory_mb`` (0: no limit)."""
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        try:
            with self._lock:
                payload = json.dumps({"memory_mb": memory_mb}).encode()
                socket.send_fds(self._socket, [payload], [request_read, response_write])
                readable, _, _ = select.select([self._socket], [], [], timeout)
                reply = self._socket.recv(256) if readable else b""
        except OSError as err:
            for fd in (request_write, response_read):
                os.close(fd)
            raise WorkerCrashed(f"the checker zygote is gone: {err}") from err
        finally:
            os.close(request_read)
            os.close(response_write)
        if not reply:
            os.close(request_write)
            os.close(response_read)
            self.close()  # a late reply would answer the next spawn: start afresh instead
            raise WorkerCrashed("the checker zygote did not fork a worker")
        worker = WorkerProcess(
            int(json.loads(reply)["pid"]), os.fdopen(request_write, "wb"), response_read
        )
        try:
            worker.wait_ready(timeout)
        except (WorkerTimeout, WorkerCrashed):
            worker.kill()
            raise
        return worker

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.close()
        if self.process.poll() is None:
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
