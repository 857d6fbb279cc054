"""Process plumbing for the trusted side: spawning with limits, killing a run's processes,
how a process ended, and the client of the zygote. Standard library only."""

import contextlib
import fcntl
import os
import resource
import signal
import time

from . import wire


def _move_high(fd: int) -> int:
    """A copy of ``fd`` numbered above every target (0-4), so dup2 into place cannot clobber
    a source; low enough for any open-files limit."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 5)


def spawn(argv, env, cwd, rlimits, fds_in_child):
    """Fork and exec ``argv`` in a new session with ``rlimits``; ``fds_in_child`` maps child fd
    numbers (0-4) to our descriptors. Everything else is closed in the child."""
    pid = os.fork()
    if pid == 0:  # child: only async-signal-safe-ish work, then exec or _exit
        try:
            os.setsid()
            os.chdir(cwd)
            moved = {target: _move_high(fd) for target, fd in fds_in_child.items()}
            for target, fd in moved.items():
                os.dup2(fd, target)
            os.closerange(max(moved) + 1, 1 << 16)
            for limit, value in rlimits:
                resource.setrlimit(limit, (value, value))
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid


def memory_kills(path):
    """The cgroup's OOM-kill counter (a kernel file the candidate cannot write), or None."""
    if not path:
        return None
    try:
        with open(path) as handle:
            for line in handle:
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
    except (OSError, ValueError):
        return None
    return None


def describe_exit(status, oom_before, oom_path):
    """(kind, text) for how a child ended."""
    if os.WIFEXITED(status):
        return "exit", f"exited with code {os.WEXITSTATUS(status)}"
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    after = memory_kills(oom_path)
    if (
        sig == signal.SIGKILL
        and oom_before is not None
        and after is not None
        and after > oom_before
    ):
        return "memory", "killed by the out-of-memory killer (memory limit)"
    if sig == signal.SIGXFSZ:
        return "file_size", "killed for writing a file over the size limit"
    if sig == signal.SIGXCPU:
        return "timeout", "killed for using more CPU time than allowed"
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    return "signal", f"killed by {name}"


def other_pids():
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != me]


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (field 3 onwards), or None."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_time(pid):
    """A process's start time (clock ticks since boot): with the pid, an identity that a
    later process reusing the pid cannot share."""
    fields = proc_stat(pid)
    return int(fields[19]) if fields else None


def kill_all_but(zygote):
    """Container mode: SIGKILL every process but PID 1, ourselves and the zygote.

    Everything is stopped first (kill(-1) is atomic with respect to fork), so nothing can
    fork while we kill one by one; then the zygote, checked by pid and start time so that an
    impostor reusing its pid is not spared, is resumed."""
    spared = zygote.pid if zygote is not None and zygote.alive() else None
    if spared is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(-1, signal.SIGSTOP)
    for pid in other_pids():
        if pid not in (1, spared):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(spared, signal.SIGCONT)


class Zygote:
    """Our handle on the zygote (see ``zygote.py``): its control socket and identity."""

    def __init__(self, sock, pid, started):
        self.sock, self.pid, self.started = sock, pid, started
        self._ids = 0

    def alive(self):
        return self.started is not None and start_time(self.pid) == self.started

    def call(self, message, timeout=2.0, fds=0):
        """Send ``message``, return (reply, descriptors) or raise OSError/TimeoutError."""
        import socket

        self._ids += 1
        request_id = f"{os.getpid()}-{self._ids}"
        self.sock.settimeout(timeout)
        self.sock.send(wire.dumps({**message, "id": request_id}))
        deadline = time.monotonic() + timeout
        while True:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
            data, received, _, _ = socket.recv_fds(self.sock, 1 << 16, max(fds, 1))
            if not data:
                raise OSError("the zygote closed its socket")
            reply = wire.loads(data.rstrip(b"\n"))
            if reply.get("id") == request_id and len(received) == fds:
                return reply, received
            for fd in received:  # a late answer to someone else's question
                os.close(fd)

    def spawn(self):
        reply, fds = self.call({"op": "spawn"}, fds=4)
        pid = reply.get("pid")
        if type(pid) is not int:
            for fd in fds:
                os.close(fd)
            raise OSError("the zygote did not spawn")
        return pid, *fds

    def reap(self, pid):
        try:
            status = self.call({"op": "reap", "pid": pid})[0].get("status")
        except (OSError, TimeoutError, wire.ProtocolError):
            return None
        return status if type(status) is int else None


def kill_session(sid):
    """Local mode: kill the process group and every process still in session ``sid``.
    (A process that left the session with setsid escapes: one reason local is unsafe.)"""
    if not sid:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(sid, signal.SIGKILL)
    for pid in other_pids():
        fields = proc_stat(pid)
        if fields and int(fields[3]) == sid:  # field 6 of stat: the session
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


# ----- the executor and the link to it --------------------------------------------------------
