"""The long-lived process of a warm sandbox: one run at a time, then a proven-clean box.

Container mode: this is PID 1 of a container whose stdin/stdout are attached to the host.
PID 1 of a PID namespace receives no signal it has no handler for, so the candidate (same
user) cannot kill it; it is made non-dumpable, so the candidate cannot read its memory or
reach its file descriptors (the host channel) through /proc. For every run it forks a fresh
harness, waits for the verdict with a watchdog, then kills every other process, wipes every
writable place (/work, /tmp, /dev/shm, /dev/mqueue, SysV IPC) and checks that nothing is
left; it tells the host when it cannot prove that, and the host then discards the container.

Local mode (the unsafe backend): a child process of the host; each run gets a fresh temp dir.

Protocol on stdin/stdout, one JSON object per line:
  -> {"ready": {...}} once at start
  <- {"op": "run", "id": ID, "request": {...}}   -> {"id": ID, "messages": [...], "clean": ...}
  <- {"op": "ping", "id": ID}                    -> {"id": ID, "pong": true}
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time

from . import bundle, harness, procs, wire

PROTOCOL = 1
WATCHDOG_GRACE_S = 2.0
_CONTAINER_WIPE = ("/work", "/tmp", "/dev/shm", "/dev/mqueue")
_OOM_FILES = ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events")
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_ZYGOTE_MODULES = ("wire", "executor", "zygote")
_IPC_RMID = 0


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Server:
    def __init__(self, mode, base_dir=None):
        self.mode = mode
        self.base_dir = base_dir
        self.libc = _libc()
        self.problems = []
        self.oom_path = next((p for p in _OOM_FILES if os.path.exists(p)), None)
        self.next_harness = None
        self.attributes = None
        self.zygote = None
        self.zygote_attributes = None
        if self.libc is None or self.libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
            self.problems.append("could not make the server non-dumpable")
        if sys.flags.optimize:
            self.problems.append("python runs with -O: it would strip assert statements")
        if sys.version_info < (3, 11):  # noqa: UP036 - the image's python, not ours
            self.problems.append(f"python {sys.version.split()[0]} is too old (need >= 3.11)")
        if mode == "local" and self.libc is not None:
            # Orphans of a run (daemons included) become our children, so we can find them.
            self.libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        if mode == "container":
            if os.getpid() != 1:
                self.problems.append(f"server is PID {os.getpid()}, not 1 (is --init on?)")
            if os.getuid() == 0:
                self.problems.append("server runs as root; the sandbox must run as a non-root user")

    # ----- protocol ---------------------------------------------------------------------------

    def send(self, message):
        _write_all(1, wire.dumps(message))

    def serve(self):
        self.send(
            {
                "ready": {
                    "protocol": PROTOCOL,
                    "python": sys.version.split()[0],
                    "pid": os.getpid(),
                    "uid": os.getuid(),
                    "mode": self.mode,
                    "memory_counter": self.oom_path is not None,
                    "problems": self.problems,
                }
            }
        )
        reader = wire.LineReader(0, max_bytes=64 * 1024 * 1024)
        harness.warm_up()
        self.attributes = process_attributes()
        self.start_zygote()
        if not self.problems:
            self.next_harness = self.fork_harness()
        while True:
            line = reader.pop_line()
            if line is None:
                if not reader.feed():
                    return  # the host went away: stdin closed, the container stops
                continue
            message = wire.loads(line)
            op = message.get("op")
            if op == "run":
                self.send(self.handle_run(message.get("id"), message["request"]))
            elif op == "ping":
                self.send({"id": message.get("id"), "pong": True})
            else:
                self.send({"id": message.get("id"), "error": f"unknown op {op!r}"})

    # ----- one run ----------------------------------------------------------------------------

    def handle_run(self, run_id, request):
        started = time.monotonic()
        harness_proc = self.take_harness()
        pid, request_fd, result_fd, work_dir = harness_proc
        # If it died while idle the run gets no verdict; the cleanup below proves the rest.
        with contextlib.suppress(OSError):
            _write_all(request_fd, wire.dumps(request))
        os.close(request_fd)
        deadline = started + float(request["limits"]["timeout_s"]) + WATCHDOG_GRACE_S
        messages, status, watchdog = self.collect(pid, result_fd, deadline)
        os.close(result_fd)
        cleanup_started = time.monotonic()
        problems = self.cleanup(work_dir)
        cleanup_s = time.monotonic() - cleanup_started
        if not problems:
            self.next_harness = self.fork_harness()  # the next run starts warm
        return {
            "id": run_id,
            "messages": messages,
            "harness_status": _status_text(status),
            "watchdog": watchdog,
            "clean": not problems,
            "problems": problems,
            "server_s": round(time.monotonic() - started, 6),
            "cleanup_s": round(cleanup_s, 6),
        }

    def take_harness(self):
        """The harness forked (with its executor started) after the previous cleanup, or a
        new one if there is none or it died while idle."""
        proc, self.next_harness = self.next_harness, None
        if proc is not None:
            try:
                done, _ = os.waitpid(proc[0], os.WNOHANG)
            except ChildProcessError:
                done = True
            if not done:
                return proc
            for fd in proc[1:3]:
                os.close(fd)
        return self.fork_harness()

    def fork_harness(self):
        """Fork a harness that starts its executor now and waits for the request."""
        work_dir, tmp_dir = self.prepare_dirs()
        request_r, request_w = os.pipe()
        result_r, result_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(request_w)
            os.close(result_r)
            self.become_harness(work_dir, tmp_dir, request_r, result_w)
        os.close(request_r)
        os.close(result_w)
        return pid, request_w, result_r, work_dir

    def prepare_dirs(self):
        if self.mode == "container":
            return "/work", "/tmp"
        work_dir = tempfile.mkdtemp(prefix="run-", dir=self.base_dir)
        tmp_dir = os.path.join(work_dir, ".tmp")
        os.mkdir(tmp_dir)
        return work_dir, tmp_dir

    def become_harness(self, work_dir, tmp_dir, request_fd, result_fd):
        """In the forked child: start an executor, wait for the request, run it, stream the
        messages back; never returns."""
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):  # the host channel must not reach the candidate's side
                os.dup2(devnull, fd)
            os.close(devnull)

            def emit(message):
                _write_all(result_fd, wire.dumps(message))

            try:
                ctx = harness.Context(self.mode, work_dir, tmp_dir, sys.executable, self.oom_path)
                ctx.zygote = self.zygote
                ctx.spare = harness.spawn_executor(ctx)
                chunks = []
                while chunk := os.read(request_fd, 1 << 20):
                    chunks.append(chunk)
                os.close(request_fd)
                harness.run(wire.loads(b"".join(chunks)), ctx, emit)
            except BaseException as err:
                emit({"crash": f"{type(err).__name__}: {str(err)[:500]}"})
        finally:
            os._exit(0)

    def collect(self, pid, read_fd, deadline):
        """Read the harness's messages until it finishes or the watchdog fires."""
        reader = wire.LineReader(read_fd)
        messages, status, watchdog = [], None, False
        while True:
            while (line := reader.pop_line()) is not None:
                try:
                    messages.append(wire.loads(line))
                except wire.ProtocolError:
                    messages.append({"crash": "harness wrote a malformed message"})
            if reader.eof:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                watchdog = True
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                break
            if select.select([read_fd], [], [], min(remaining, 0.5))[0]:
                reader.feed()
            status = self.reap(pid, status)
        with contextlib.suppress(ChildProcessError):
            status = os.waitpid(pid, 0)[1]
        return messages, status, watchdog

    def reap(self, harness_pid, status):
        """Reap orphans reparented to us (PID 1), remembering the harness's own status."""
        if self.mode != "container":
            return status
        while True:
            try:
                pid, child_status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return status
            if pid == 0:
                return status
            if pid == harness_pid:
                return child_status

    # ----- cleanup and proof ------------------------------------------------------------------

    def cleanup(self, work_dir):
        if self.mode != "container":
            left = self.kill_descendants()
            shutil.rmtree(work_dir, ignore_errors=True)
            problems = [f"{work_dir} still exists"] if os.path.exists(work_dir) else []
            if left:
                problems.append(f"processes still alive: {left[:10]}")
            return problems + self.restore_attributes()
        self.kill_everything()
        for folder in _CONTAINER_WIPE:
            wipe(folder)
        self.remove_ipc()
        problems = self.leftovers() + self.restore_attributes()
        if not problems:
            self.check_zygote()
        return problems

    # ----- the zygote -------------------------------------------------------------------------

    def start_zygote(self):
        """Container mode: start the zygote (see zygote.py). Without one, executors start as
        fresh interpreters: slower, as safe."""
        if self.mode != "container" or self.problems:
            return
        import socket

        pid = None
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            code_r, code_w = os.pipe()
            devnull = os.open(os.devnull, os.O_RDWR)
            ctx = harness.Context(self.mode, "/work", "/tmp", sys.executable, self.oom_path)
            program = bundle.code_program(list(_ZYGOTE_MODULES), "zygote")
            argv = [sys.executable, *harness.EXECUTOR_FLAGS, "-c", program]
            fds = {0: devnull, 1: devnull, 2: devnull, 3: code_r, 4: theirs.fileno()}
            try:
                pid = procs.spawn(argv, ctx.child_env(), "/work", [(resource.RLIMIT_CORE, 0)], fds)
            finally:
                for fd in (code_r, devnull):
                    os.close(fd)
                theirs.close()
            sources = sys.modules[__package__].SOURCES
            _write_all(code_w, bundle.compiled_modules(sources, list(_ZYGOTE_MODULES)))
            os.close(code_w)
            zygote = procs.Zygote(ours, pid, procs.start_time(pid))
            zygote.call({"op": "ping"}, timeout=10.0)
        except (OSError, TimeoutError, wire.ProtocolError):
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
            return
        self.zygote = zygote
        self.zygote_attributes = process_attributes(pid)

    def check_zygote(self):
        """Replace the zygote if the run killed, stopped or altered it (same user: it may
        have lowered its limits or priority, which every later executor would inherit)."""
        zygote = self.zygote
        if zygote is None:
            return
        healthy = zygote.alive()
        if healthy:
            try:
                healthy = zygote.call({"op": "ping"}, timeout=1.0)[0].get("pong") is True
                healthy = healthy and process_attributes(zygote.pid) == self.zygote_attributes
            except (OSError, TimeoutError, wire.ProtocolError):
                healthy = False
        if healthy:
            return
        if zygote.alive():
            with contextlib.suppress(OSError):
                os.kill(zygote.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(zygote.pid, 0)
        zygote.sock.close()
        self.zygote = None
        self.start_zygote()

    def restore_attributes(self):
        """Our rlimits, nice value, scheduling policy and CPU affinity, as at startup.

        The candidate runs as our user, so it may lower these on us (prlimit, setpriority,
        sched_setscheduler, sched_setaffinity on PID 1), and every later harness and
        executor would inherit them: spurious timeouts or failures for other solutions.
        What can be put back is; what cannot (a lowered hard limit, a raised nice value)
        makes the box unclean, and the host discards it."""
        expected = self.attributes
        current = process_attributes()
        for name, (soft, hard) in expected["rlimits"].items():
            if current["rlimits"].get(name) != (soft, hard) and current["rlimits"][name][1] == hard:
                with contextlib.suppress(ValueError, OSError):
                    resource.setrlimit(getattr(resource, name), (soft, hard))
        if current["affinity"] != expected["affinity"]:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, expected["affinity"])
        current = process_attributes()
        return [
            f"the run changed the server's {key}: {expected[key]} -> {current[key]}"
            for key in expected
            if current[key] != expected[key]
        ]

    def kill_everything(self):
        """SIGKILL every process but us (and the zygote) and reap them all: in a PID
        namespace every orphan is ours, so when nothing but the zygote is left, none of the
        run's processes is."""
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            procs.kill_all_but(self.zygote)
            while time.monotonic() < deadline:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    if not self.survivors():
                        break
                    time.sleep(0.0002)
            if not self.survivors():
                return

    def kill_descendants(self):
        """Local mode: kill every process descended from us (as a subreaper, every orphan of
        the run is our child), until none is left. Returns the pids that would not die."""
        deadline = time.monotonic() + 2.0
        while True:
            children = children_of(os.getpid())
            for pid in children:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            while True:
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break
            if not children or time.monotonic() > deadline:
                return children
            time.sleep(0.001)

    def survivors(self):
        """Processes other than us and a live zygote (whose killed children it reaps)."""
        spared = self.zygote.pid if self.zygote is not None and self.zygote.alive() else None
        left = [pid for pid in procs.other_pids() if pid != spared]
        if left and spared is not None:
            with contextlib.suppress(OSError, TimeoutError, wire.ProtocolError):
                self.zygote.call({"op": "reap_all"}, timeout=1.0)
            left = [pid for pid in procs.other_pids() if pid != spared]
        return left

    def remove_ipc(self):
        if self.libc is None:
            return
        calls = {
            "shm": lambda i: self.libc.shmctl(i, _IPC_RMID, None),
            "msg": lambda i: self.libc.msgctl(i, _IPC_RMID, None),
            "sem": lambda i: self.libc.semctl(i, 0, _IPC_RMID),
        }
        for kind, remove in calls.items():
            for ipc_id in sysv_ids(kind):
                remove(ipc_id)

    def leftovers(self):
        """What a next run could still see of this one (empty: proven clean)."""
        problems = []
        pids = self.survivors()
        if pids:
            problems.append(f"processes still alive: {pids[:10]}")
        for folder in _CONTAINER_WIPE:
            try:
                left = os.listdir(folder)
            except FileNotFoundError:
                continue
            except OSError as err:
                problems.append(f"cannot list {folder}: {err}")
                continue
            if left:
                problems.append(f"{folder} not empty: {sorted(left)[:5]}")
        for kind in ("shm", "msg", "sem"):
            if sysv_ids(kind):
                problems.append(f"SysV {kind} objects remain")
        return problems


def process_attributes(pid=0):
    """What a same-user process can change about a process from outside (see
    restore_attributes); ``pid`` 0 is ourselves."""
    limits = {
        name: resource.prlimit(pid, getattr(resource, name))
        for name in dir(resource)
        if name.startswith("RLIMIT_")
    }
    return {
        "rlimits": limits,
        "nice": os.getpriority(os.PRIO_PROCESS, pid),
        "policy": os.sched_getscheduler(pid),
        "affinity": sorted(os.sched_getaffinity(pid)),
    }


def children_of(parent):
    """Live (not zombie) processes whose parent is ``parent``."""
    found = []
    for pid in procs.other_pids():
        fields = procs.proc_stat(pid)
        if fields and int(fields[1]) == parent and fields[0] != "Z":
            found.append(pid)
    return found


def sysv_ids(kind):
    try:
        with open(f"/proc/sysvipc/{kind}") as handle:
            rows = handle.read().splitlines()[1:]
    except OSError:
        return []
    ids = []
    for row in rows:
        fields = row.split()
        if len(fields) > 1 and fields[1].isdigit():
            ids.append(int(fields[1]))
    return ids


def wipe(folder):
    """Delete everything inside ``folder`` (the candidate may have chmod-ed things to 000)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _unlock(entry.path)
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            continue


def _unlock(path, depth=0):
    if depth > 64:
        return
    try:
        os.chmod(path, 0o700)
        for entry in os.scandir(path):
            if entry.is_dir(follow_symlinks=False):
                _unlock(entry.path, depth + 1)
    except OSError:
        pass


def _status_text(status):
    if status is None:
        return "unknown"
    if os.WIFEXITED(status):
        return f"exit {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"status {status}"


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "container"
    base_dir = sys.argv[2] if len(sys.argv) > 2 else None
    Server(mode, base_dir).serve()
