"""A throwaway second Docker engine on this machine, for tests and benchmarks of several
engines: its own ``dockerd`` with its own socket, data root, exec root, containerd and network
namespace, which can be killed (SIGKILL, as a crash would) without touching the machine's main
engine.

    with ScratchEngine() as engine:               # needs root and dockerd
        engine.load_image("grpo-env-sandbox:1")  # copied from the main engine
        sandbox = DockerSandbox(docker_hosts=[engine_name(None), engine.url])
        ...
        engine.kill()

Only the process it started is ever signalled (its pid, checked against the pidfile).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .engines import connect
from .protocol import SandboxUnavailable


def scratch_engine_unavailable() -> str:
    """Why no scratch engine can start here ("" if one can)."""
    if os.geteuid() != 0:
        return "a second dockerd needs root"
    if shutil.which("dockerd") is None or shutil.which("unshare") is None:
        return "no dockerd (or unshare) program on PATH"
    return ""


class ScratchEngine:
    """A ``dockerd`` of our own in a short temporary directory (socket paths must stay under
    108 bytes). ``close`` stops it and removes everything it made."""

    def __init__(self, start_timeout_s: float = 60.0):
        why = scratch_engine_unavailable()
        if why:
            raise SandboxUnavailable(f"cannot start a scratch Docker engine: {why}")
        self.dir = Path(tempfile.mkdtemp(prefix="ge-", dir="/tmp"))
        self.url = f"unix://{self.dir}/docker.sock"
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self._crashed = False

    def __enter__(self) -> ScratchEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start (or restart, after ``kill``) the daemon and wait until it answers."""
        d = self.dir
        self._forget_dead_containerd()
        # Its own network namespace (unshare execs dockerd: the pid stays the daemon's): its
        # default bridge, docker0, is its own. Never --bridge=none on a shared host: dockerd
        # then deletes the host's docker0, the main engine's bridge.
        argv = [
            "unshare",
            "--net",
            "dockerd",
            f"--host={self.url}",
            f"--data-root={d}/data",
            f"--exec-root={d}/exec",
            f"--pidfile={d}/docker.pid",
            "--iptables=false",
            "--ip-masq=false",
            "--shutdown-timeout=2",  # stopping: containers get 2 s, not 15
            # its own containerd (under exec-root); distinct namespaces all the same
            "--containerd-namespace=grpo-env-scratch",
            "--containerd-plugins-namespace=grpo-env-scratch-plugins",
        ]
        log = open(d / "dockerd.log", "ab")  # noqa: SIM115 - the daemon keeps it
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self.proc.poll() is not None:
                raise SandboxUnavailable(f"scratch dockerd exited: {self.log_tail()}")
            try:
                connect(self.url, timeout=5).close()
                break
            except SandboxUnavailable:
                if time.monotonic() > deadline:
                    self._stop(signal.SIGKILL)
                    raise SandboxUnavailable(
                        f"scratch dockerd did not answer in {self.start_timeout_s:g} s: "
                        f"{self.log_tail()}"
                    ) from None
                time.sleep(0.2)
        self._crashed = False

    def client(self, timeout: int = 60) -> Any:
        return connect(self.url, timeout=timeout)

    def load_image(self, image: str, source: Any = None) -> None:
        """``docker save IMAGE | docker -H THIS load``, through the SDK: from ``source`` (a
        client; default the environment's engine)."""
        source = source or connect(timeout=600)
        target = self.client(timeout=600)
        try:
            target.api.load_image(source.api.get_image(image), quiet=True)
            target.api.inspect_image(image)
        finally:
            target.close()

    def kill(self) -> None:
        """SIGKILL the daemon, as a crash would: its API goes away mid-run, its containers
        are left behind (``close`` restarts it once to clean them up)."""
        self._signal(signal.SIGKILL)
        self._crashed = True

    def close(self) -> None:
        if self.proc is None:
            return
        if self._crashed:
            with contextlib.suppress(SandboxUnavailable):
                self.start()  # a restart removes what the crash left (containers, shims)
        if self.proc.poll() is None:
            self._stop(signal.SIGTERM)
        self.proc = None
        for mount in self._mounts():  # dockerd leaves its data root bind-mounted
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.dir / "dockerd.log").read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])[-1500:]

    def _signal(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(OSError, ValueError):
            pidfile = int((self.dir / "docker.pid").read_text().strip())
            if pidfile != self.proc.pid:  # never signal anything but the daemon we started
                raise RuntimeError(f"pidfile says {pidfile}, we started {self.proc.pid}")
        self.proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)

    def _stop(self, sig: int) -> None:
        self._signal(sig)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _forget_dead_containerd(self) -> None:
        """The killed daemon's containerd died with it (parent-death signal) but may linger
        as a zombie: dockerd would take it for a live one and wait for its socket."""
        pidfile = self.dir / "exec" / "containerd" / "containerd.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                state = "gone"
            if state in ("Z", "X", "gone"):
                pidfile.unlink(missing_ok=True)
                return
            time.sleep(0.1)

    def _mounts(self) -> list[str]:
        try:
            rows = Path("/proc/self/mountinfo").read_text().splitlines()
        except OSError:
            return []
        prefix = str(self.dir) + "/"
        points = [row.split()[4] for row in rows if len(row.split()) > 4]
        return sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True)
