"""The zygote: a clean interpreter that forks executors, so a run does not pay for starting
Python (~15 ms of CPU per run, most of what a run costs).

The server starts it once per container from a fresh exec, with the executor's modules
loaded. It never sees a solution or a test: it only answers ``spawn``, ``reap`` and ``ping``
on a unix socket that only trusted processes hold, so the memory its children inherit holds
nothing but the runtime. It is not dumpable (the candidate, running as the same user, can
neither read nor trace it). Cleanups stop it with everything else, kill everything but it,
and resume it; the server then checks that it still answers and that its limits, priority,
scheduling and CPU affinity are as they were, and replaces it otherwise.

Protocol (fd 4): one JSON object per SOCK_SEQPACKET message, each with an ``id`` echoed back.
  {"op": "spawn"} -> {"pid": n} with 4 descriptors attached: the request pipe's write end,
                     the reply pipe's read end, stdout's and stderr's read ends
  {"op": "reap", "pid": n} -> {"status": wait status | null}
  {"op": "reap_all"} -> {"reaped": count}
  {"op": "ping"} -> {"pong": true}
"""

import contextlib
import ctypes
import fcntl
import os
import resource
import signal
import socket

from . import executor, wire

CODE_FD, CONTROL_FD = 3, 4  # our modules arrive on fd 3 (see bundle.CODE_BOOT)
_PR_SET_DUMPABLE = 4


def _prctl_dumpable(value):
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, value, 0, 0, 0)


def _become_executor(child_ends):
    """In the forked child: take the run's pipes as fds 0-4, drop everything else (the
    control socket first of all) and serve as the executor. Never returns."""
    try:
        req_r, reply_w, out_w, err_w = child_ends
        devnull = os.open(os.devnull, os.O_RDONLY)
        wanted = {0: devnull, 1: out_w, 2: err_w, 3: req_r, 4: reply_w}
        moved = {target: fcntl.fcntl(fd, fcntl.F_DUPFD, 5) for target, fd in wanted.items()}
        for target, fd in moved.items():
            os.dup2(fd, target)
        os.closerange(5, max(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1024))
        os.setsid()
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        _prctl_dumpable(1)  # an ordinary process again: the candidate's own
        executor.main()
    finally:
        os._exit(1)


def _spawn(sock, request_id):
    pipes = [os.pipe() for _ in range(4)]  # request, reply, stdout, stderr
    child_ends = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
    parent_ends = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
    pid = os.fork()
    if pid == 0:
        _become_executor(child_ends)
    for fd in child_ends:
        os.close(fd)
    try:
        socket.send_fds(sock, [wire.dumps({"id": request_id, "pid": pid})], parent_ends)
    finally:
        for fd in parent_ends:
            os.close(fd)


def _reap(pid):
    try:
        done, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return status if done else None


def _reap_all():
    count = 0
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return count
        if pid == 0:
            return count
        count += 1


def main():
    _prctl_dumpable(0)
    os.close(CODE_FD)
    sock = socket.socket(fileno=CONTROL_FD)
    while True:
        data = sock.recv(1 << 16)
        if not data:
            os._exit(0)  # the server is gone
        message = wire.loads_trusted(data.rstrip(b"\n"))
        request_id, op = message.get("id"), message.get("op")
        if op == "spawn":
            _spawn(sock, request_id)
            continue
        if op == "reap":
            reply = {"status": _reap(int(message["pid"]))}
        elif op == "reap_all":
            reply = {"reaped": _reap_all()}
        else:
            reply = {"pong": True}
        sock.send(wire.dumps({"id": request_id, **reply}))
