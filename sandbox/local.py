"""``LocalSandbox``: the same harness and verdict, but NO isolation. Opt-in only.

For machines without Docker. The candidate's code runs as your user, on your filesystem, with
your network. The verdict is as unforgeable as with Docker (same trusted harness), but nothing
stops hostile code from deleting files, reading secrets or leaving processes behind: only
rlimits (CPU time, address space, file size, open files) and a kill of its session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Hashable

from .base import PooledSandbox
from .models import Limits
from .pool import Worker
from .runtime import server_program

log = logging.getLogger(__name__)

WARNING_TEXT = (
    "LocalSandbox runs untrusted code on THIS machine WITHOUT isolation: no container, no "
    "network or filesystem protection, no process-count limit. Use it only for code you would "
    "run yourself; use the Docker sandbox for model-written code."
)


class UnsafeSandboxWarning(UserWarning):
    """Code runs without isolation."""


class LocalWorker(Worker):
    """One local server process (``runtime.server`` in local mode)."""

    def __init__(self, key: Hashable):
        super().__init__(key)
        self.base_dir = tempfile.mkdtemp(prefix="grpo-env-sandbox-")
        self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", server_program(), "local", self.base_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        )

    def _send(self, data: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _receive(self, timeout: float) -> bytes:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        if not select.select([fd], [], [], max(timeout, 0))[0]:
            raise TimeoutError
        return os.read(fd, 1 << 16)

    def describe_death(self) -> str:
        code = self.proc.poll() if self.proc is not None else None
        return f"the local sandbox server exited with code {code}" if code is not None else ""

    def kill(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 9)
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        shutil.rmtree(self.base_dir, ignore_errors=True)


class LocalSandbox(PooledSandbox):
    """Runs requests in local subprocesses with rlimits only. ``unsafe=True`` is required.

    Args:
        concurrency: runs at once.
        limits: default limits (memory becomes an address-space rlimit).
        unsafe: must be True: you accept that code runs without isolation.
    """

    name = "local-unsafe"

    def __init__(self, concurrency: int = 2, limits: Limits | None = None, *, unsafe: bool = False):
        if not unsafe:
            raise ValueError(
                "LocalSandbox runs code without isolation; pass unsafe=True "
                "(CLI: --sandbox local-unsafe) if you accept that, or use DockerSandbox"
            )
        warnings.warn(WARNING_TEXT, UnsafeSandboxWarning, stacklevel=2)
        log.warning(WARNING_TEXT)
        super().__init__(concurrency, limits)

    def _start_worker(self, key: Hashable) -> Worker:
        worker = LocalWorker(key)
        try:
            worker.wait_ready(30.0)
        except BaseException:
            worker.kill()
            raise
        return worker
