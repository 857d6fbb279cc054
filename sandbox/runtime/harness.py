"""The trusted side of a run: runs the tests and decides the verdict.

Runs inside the sandbox (standard library only), forked fresh for every run by the server.
It never imports or executes the candidate's code. The candidate runs in a separate executor
process; every name the candidate defines appears here as a proxy whose calls cross the
process boundary as plain data (``wire``). The tests themselves (trusted code from the task)
run here, so every comparison, every ``assert`` and the count of passed tests happen in a
process the candidate cannot reach: it runs as the same user, but this process is not
dumpable (no /proc/PID/mem, fd or ptrace access) and holds the only copy of the tests.

What the candidate can still do is choose its answers, crash, hang, flood output or kill this
process. All of those end with tests failed: a case passes only if its trusted code ran to the
end with no incident (executor death, timeout, protocol error, output flood) along the way.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import importlib
import math
import os
import resource
import select
import signal
import sys
import time

from . import bundle, wire

# Modules a candidate imported that the tests may use by the same name (MBPP tests often call
# ``math.isclose`` relying on the solution's ``import math``). The trusted side binds its own
# copy, never the candidate's object; only pure-computation standard modules qualify.
TRUSTED_MODULES = frozenset(
    [
        "math",
        "cmath",
        "re",
        "collections",
        "itertools",
        "functools",
        "heapq",
        "bisect",
        "string",
        "random",
        "datetime",
        "decimal",
        "fractions",
        "statistics",
        "operator",
        "copy",
        "json",
        "typing",
        "array",
        "numbers",
        "unicodedata",
        "textwrap",
        "calendar",
        "enum",
        "dataclasses",
        "hashlib",
        "struct",
    ]
)
# No site module (site-packages are added by hand, .pth files and sitecustomize are not run:
# that also saves ~4 ms per start), no cwd on sys.path, no .pyc writes.
EXECUTOR_FLAGS = ("-S", "-P", "-B")
_POLL_SLICE = 0.25


class CandidateError(Exception):
    """The candidate's code raised an exception that has no builtin twin here."""


class NotPlainData(TypeError):
    """An operation on a candidate object that would let it see or fake an expected value."""


class Incident(BaseException):
    """Something went wrong with the executor during a case (died, timed out, flooded output,
    broke the protocol). A BaseException, so that test code's ``except Exception`` does not
    swallow it; and the case fails even if test code catches it anyway."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


# ----- process plumbing -----------------------------------------------------------------------


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


class Output:
    """The candidate's stdout/stderr, capped in total: past the cap the run ends."""

    def __init__(self, cap: int):
        self.cap = cap
        self.total = 0
        self.streams = {"stdout": bytearray(), "stderr": bytearray()}

    def add(self, stream: str, data: bytes) -> bool:
        """Keep what fits; False once the cap is exceeded."""
        room = self.cap - sum(len(b) for b in self.streams.values())
        if room > 0:
            self.streams[stream] += data[:room]
        self.total += len(data)
        return self.total <= self.cap

    def text(self, stream: str) -> str:
        return bytes(self.streams[stream]).decode("utf-8", errors="replace")

    @property
    def exceeded(self) -> bool:
        return self.total > self.cap


class Context:
    """Where and how the run happens: the server fills it in (container or local mode)."""

    def __init__(self, mode, work_dir, tmp_dir, python, oom_path=None):
        self.mode = mode  # "container": kill(-1) reaches exactly the candidate's processes
        self.work_dir = work_dir
        self.tmp_dir = tmp_dir
        self.python = python
        self.oom_path = oom_path
        self.spare = None  # an executor started ahead of the run, adopted by the first load
        self.zygote = None  # container mode: forks executors (see zygote.py)
        self.site_packages = _SITE_PACKAGES if _SITE_PACKAGES is not None else site_packages()
        self.executor_program = bundle.code_program(list(_EXECUTOR_MODULES), "executor")
        self.executor_code = executor_code()

    def child_env(self):
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.work_dir,
            "TMPDIR": self.tmp_dir,
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
        }

    def rlimits(self, limits):
        cpu = math.ceil(limits["timeout_s"]) + 1
        chosen = [
            (resource.RLIMIT_CORE, 0),
            (resource.RLIMIT_CPU, cpu),
            (resource.RLIMIT_FSIZE, int(limits["max_file_bytes"])),
            (resource.RLIMIT_NOFILE, int(limits["max_open_files"])),
        ]
        if self.mode == "local":  # no cgroup here: address space is the only memory bound
            chosen.append((resource.RLIMIT_AS, int(limits["memory_mb"]) * 1024 * 1024))
        return chosen

    def kill_candidates(self, leader):
        """Kill every process the candidate may have started, then reap ``leader``."""
        if self.mode == "container":
            kill_all_but(self.zygote)
        else:
            kill_session(leader)
        if not leader:
            return None
        try:
            return os.waitpid(leader, 0)[1]
        except ChildProcessError:  # the zygote's child, not ours
            return self.zygote.reap(leader) if self.zygote is not None else None


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


def site_packages():
    """The interpreter's site-packages folders, for executors started without ``site``."""
    import site

    return [p for p in site.getsitepackages() if os.path.isdir(p)]


_SITE_PACKAGES = None
_EXECUTOR_MODULES = ("wire", "executor")
_EXECUTOR_CODE = None


def executor_code():
    """The executor's modules, compiled once per server (see ``bundle.CODE_BOOT``)."""
    global _EXECUTOR_CODE
    if _EXECUTOR_CODE is None:
        sources = sys.modules[__package__].SOURCES
        _EXECUTOR_CODE = bundle.compiled_modules(sources, list(_EXECUTOR_MODULES))
    return _EXECUTOR_CODE


# Modules tests commonly use: imported once in the server, so every forked harness has them
# for free (HumanEval's prompts alone import typing, ~5 ms each time otherwise).
WARM_MODULES = [
    "typing",
    "re",
    "collections",
    "math",
    "random",
    "itertools",
    "functools",
    "heapq",
    "string",
    "copy",
    "hashlib",
    "fractions",
    "decimal",
    "statistics",
    "datetime",
]


def warm_up():
    """Called once by the server before any run: pre-import and pre-compute."""
    global _SITE_PACKAGES
    _SITE_PACKAGES = site_packages()
    executor_code()
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


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


def spawn_executor(ctx):
    """Start an executor; it waits for the solution on fd 3. Returns (pid, request fd,
    reply fd, stdout fd, stderr fd) as seen from here. Forked by the zygote when there is
    one (a millisecond), else a fresh interpreter (~20 ms)."""
    if ctx.zygote is not None and ctx.zygote.alive():
        try:
            return ctx.zygote.spawn()
        except (OSError, TimeoutError, wire.ProtocolError):
            pass  # it was killed or stopped by the candidate: start one the slow way
    req_r, req_w = os.pipe()
    reply_r, reply_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    argv = [ctx.python, *EXECUTOR_FLAGS, "-c", ctx.executor_program]
    try:
        # Limits come with the first request (the executor applies them to itself before
        # any candidate code runs), so an executor can be started ahead of its run.
        pid = spawn(
            argv,
            ctx.child_env(),
            ctx.work_dir,
            [(resource.RLIMIT_CORE, 0)],
            {0: devnull, 1: out_w, 2: err_w, 3: req_r, 4: reply_w},
        )
    finally:
        for fd in (req_r, reply_w, out_w, err_w, devnull):
            os.close(fd)
    # Its modules, precompiled; fits the pipe buffer, so this never blocks.
    view = memoryview(ctx.executor_code)
    while view:
        view = view[os.write(req_w, view) :]
    return pid, req_w, reply_r, out_r, err_r


class Executor:
    """One untrusted interpreter with the candidate's code loaded."""

    def __init__(self, ctx: Context, output: Output, process=None):
        self.ctx, self.output = ctx, output
        self.oom_before = memory_kills(ctx.oom_path)
        self.pid, self.req_w, self.reply_r, self.out_r, self.err_r = (
            process if process is not None else spawn_executor(ctx)
        )
        os.set_blocking(self.req_w, False)
        self.reader = wire.LineReader(self.reply_r)
        self.alive = True
        self.exit_status = None
        self.outgoing = bytearray()

    def request(self, message, deadline):
        """Send ``message`` and wait for the reply, draining output meanwhile. Raises
        ``Incident`` on death, timeout, output flood or a malformed reply."""
        self.outgoing += wire.dumps(message)
        while True:
            try:
                line = self.reader.pop_line()
            except wire.ProtocolError as err:
                raise self.fail("protocol", f"broke the protocol: {err}") from None
            if line is not None:
                try:
                    return wire.loads(line)
                except wire.ProtocolError as err:
                    raise self.fail("protocol", f"broke the protocol: {err}") from None
            if self.reader.eof:
                raise self.died()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.fail("timeout", "timed out")
            self.pump(min(remaining, _POLL_SLICE))

    def pump(self, timeout):
        """One round of I/O: write pending request bytes, read replies and output."""
        readable = [self.reply_r, self.out_r, self.err_r]
        writable = [self.req_w] if self.outgoing else []
        try:
            ready_r, ready_w, _ = select.select(readable, writable, [], max(timeout, 0))
        except InterruptedError:
            return
        if ready_w:
            try:
                sent = os.write(self.req_w, self.outgoing)
                del self.outgoing[:sent]
            except BlockingIOError:
                pass
            except BrokenPipeError:
                self.outgoing.clear()  # it stopped reading; its death shows up on the reply fd
        for fd in ready_r:
            if fd == self.reply_r:
                self.reader.feed()
                continue
            data = os.read(fd, 1 << 16)
            if not data:
                continue
            stream = "stdout" if fd == self.out_r else "stderr"
            if not self.output.add(stream, data):
                raise self.fail("output", f"wrote more than {self.output.cap} bytes of output")

    def drain(self):
        """Collect output already written, without waiting."""
        for fd, stream in ((self.out_r, "stdout"), (self.err_r, "stderr")):
            os.set_blocking(fd, False)
            for _ in range(64):
                try:
                    data = os.read(fd, 1 << 16)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                self.output.add(stream, data)

    def died(self):
        status = self.stop()
        if status is None:
            return Incident("died", "executor vanished")
        kind, text = describe_exit(status, self.oom_before, self.ctx.oom_path)
        return Incident(kind if kind != "exit" else "died", f"the solution's process {text}")

    def fail(self, kind, text):
        self.stop()
        return Incident(kind, f"the solution's process {text}")

    def stop(self):
        """Kill it and everything it started; idempotent. Returns its wait status."""
        if self.alive:
            self.alive = False
            self.drain()
            self.exit_status = self.ctx.kill_candidates(self.pid)
            for fd in (self.req_w, self.reply_r, self.out_r, self.err_r):
                with contextlib.suppress(OSError):
                    os.close(fd)
        return self.exit_status


class Link:
    """What the proxies talk to: the current executor, restarted between cases when a case
    killed it. Records incidents so the case that saw one fails whatever the test code did."""

    def __init__(self, ctx, request, output, run_deadline):
        self.ctx, self.request, self.output = ctx, request, output
        self.run_deadline = run_deadline
        self.case_deadline = run_deadline
        self.executor = None
        self.generation = 0
        self.incident = None  # (kind, detail) of the current case
        self.fatal = None  # an incident that ends the whole run
        self.memory_seen = False
        self.names = {}
        self.loads = 0

    # -- executor lifecycle --

    def start(self, deadline):
        """Start an executor and load the solution. Returns (loaded names, load error text)."""
        self.generation += 1
        self.loads += 1
        spare, self.ctx.spare = self.ctx.spare, None
        self.executor = Executor(self.ctx, self.output, spare)
        first = {
            "code": self.request["code"],
            "setup": self.request["tests"].get("shared_setup", ""),
            "filename": os.path.join(self.ctx.work_dir, "solution.py"),
            "cwd": self.ctx.work_dir,
            "path": self.ctx.site_packages,
            "rlimits": [[int(k), int(v)] for k, v in self.ctx.rlimits(self.request["limits"])],
        }
        try:
            reply = self.executor.request(first, deadline)
        except Incident as incident:
            self._note(incident)
            return None, incident
        if "loaded" in reply and type(reply["loaded"]) is dict:
            return reply["loaded"], None
        error = reply.get("load_error")
        detail = _format_raised(error) if type(error) is dict else "an unreadable load reply"
        self.executor.stop()
        return None, Incident("load", f"the solution raised {detail} while loading")

    def ensure(self):
        if self.executor is not None and self.executor.alive:
            return
        if self.loads >= 1 + len(self.request["tests"]["cases"]):
            raise Incident("died", "the solution's process keeps dying")
        _, error = self.start(self.case_deadline)
        if error is not None:
            raise error

    def stop(self):
        if self.executor is not None:
            self.executor.stop()

    # -- cases --

    def begin_case(self, deadline):
        self.incident = None
        self.case_deadline = min(deadline, self.run_deadline)

    def end_case(self):
        incident, self.incident = self.incident, None
        return incident

    def _note(self, incident):
        if self.incident is None:
            self.incident = (incident.kind, incident.detail)
        if incident.kind == "output":
            self.fatal = (incident.kind, incident.detail)
        if incident.kind == "memory":
            self.memory_seen = True

    # -- the operations proxies need --

    def ask(self, message):
        if self.fatal is not None:
            raise Incident(*self.fatal)
        if self.incident is not None:  # test code swallowed an incident and carried on
            raise Incident(*self.incident)
        if time.monotonic() >= self.case_deadline:
            incident = Incident("timeout", "the test ran out of time")
            self._note(incident)
            raise incident
        self.ensure()
        try:
            reply = self.executor.request(message, self.case_deadline)
        except Incident as incident:
            self._note(incident)
            raise
        if "raised" in reply:
            raise self._raised(reply["raised"])
        if "ok" not in reply:
            incident = self.executor.fail("protocol", "sent a reply with no result")
            self._note(incident)
            raise incident
        try:
            value = wire.decode(reply["ok"], self._remote)
        except wire.ProtocolError as err:
            incident = self.executor.fail("protocol", f"sent a malformed value ({err})")
            self._note(incident)
            raise incident from None
        return value, reply

    def _remote(self, ref_id, type_name):
        return RemoteObject(self, self.generation, ref_id, type_name)

    def _raised(self, info):
        if type(info) is not dict:
            return CandidateError("the solution raised an unreadable exception")
        name = str(info.get("type", "Exception"))[:100]
        message = str(info.get("message", ""))[:2000]
        if name == "MemoryError":
            self.memory_seen = True
        if info.get("base_exception"):
            # SystemExit, KeyboardInterrupt...: leaving instead of answering fails the case.
            incident = Incident("exit", f"the solution raised {name} instead of returning")
            self._note(incident)
            return incident
        builtin = getattr(builtins, name, None) if info.get("builtin") else None
        if isinstance(builtin, type) and issubclass(builtin, Exception):
            try:
                return builtin(message)
            except Exception:
                pass
        return CandidateError(f"{name}: {message}")

    def encode_arg(self, value):
        def ref(obj):
            if isinstance(obj, RemoteObject) and obj._generation == self.generation:
                return obj._ref
            if isinstance(obj, RemoteObject):
                raise NotPlainData("an object from a previous (crashed) run of the solution")
            raise NotPlainData(f"a {type(obj).__name__} cannot be passed to the solution")

        try:
            return wire.encode(value, ref)
        except wire.NotData as err:
            raise NotPlainData(str(err)) from None

    def call(self, target, args, kwargs):
        raw_args = [self.encode_arg(a) for a in args]
        raw_kwargs = {str(k): self.encode_arg(v) for k, v in kwargs.items()}
        message = {"op": "call", "target": target, "args": raw_args, "kwargs": raw_kwargs}
        value, reply = self.ask(message)
        mutated = reply.get("mutated")
        if type(mutated) is dict and mutated:
            self._mirror(args, mutated)
        return value

    def _mirror(self, args, mutated):
        """Apply in-place changes the solution made to list/dict/set arguments."""
        for key, raw in mutated.items():
            try:
                index = int(key)
                original = args[index]
                new = wire.decode(raw, self._remote)
            except (ValueError, IndexError, wire.ProtocolError):
                continue
            kind = type(original)
            if kind is not type(new):
                continue
            if kind is list or kind is bytearray:
                original[:] = new
            elif kind is dict or kind is set:
                original.clear()
                original.update(new)

    def apply(self, target, fn):
        return self.ask({"op": "apply", "fn": fn, "target": target})[0]

    def getattr(self, target, attr):
        return self.ask({"op": "getattr", "target": target, "attr": attr})[0]


class CandidateFunction:
    """A name the solution defines; calling it runs the solution's code in the executor."""

    __slots__ = ("_link", "_name")

    def __init__(self, link, name):
        self._link, self._name = link, name

    def __call__(self, *args, **kwargs):
        return self._link.call(["name", self._name], args, kwargs)

    @property
    def __name__(self):
        return self._name

    def __repr__(self):
        return f"<solution's {self._name}>"


def _refuse(operation):
    def method(self, *args):
        raise NotPlainData(
            f"the solution returned a {self._type_name} object, not plain data; {operation} on "
            "it is not allowed (it would let the solution see or fake the expected value)"
        )

    return method


class RemoteObject:
    """An object that stayed in the executor because it is not plain data. It can be called,
    have attributes read, be iterated, measured (len), printed (str) and tested for truth:
    answers the solution could give as plain data anyway. Comparing, hashing or membership
    tests would hand it the expected value, so they raise."""

    __slots__ = ("_generation", "_link", "_ref", "_type_name")

    def __init__(self, link, generation, ref, type_name):
        self._link, self._generation, self._ref, self._type_name = link, generation, ref, type_name

    def _target(self):
        if self._generation != self._link.generation:
            raise NotPlainData("an object from a previous (crashed) run of the solution")
        return ["ref", self._ref]

    def __call__(self, *args, **kwargs):
        return self._link.call(self._target(), args, kwargs)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self._link.getattr(self._target(), attr)

    def __iter__(self):
        return iter(self._link.apply(self._target(), "list"))

    def __len__(self):
        value = self._link.apply(self._target(), "len")
        if type(value) is not int:
            raise TypeError("len() of the solution's object is not an int")
        return value

    def __bool__(self):
        return self._link.apply(self._target(), "bool") is True

    def __str__(self):
        value = self._link.apply(self._target(), "str")
        return value if type(value) is str else ""

    def __repr__(self):
        return f"<solution's {self._type_name} object>"

    __eq__ = _refuse("comparing")
    __ne__ = _refuse("comparing")
    __lt__ = _refuse("comparing")
    __le__ = _refuse("comparing")
    __gt__ = _refuse("comparing")
    __ge__ = _refuse("comparing")
    __hash__ = _refuse("hashing")
    __contains__ = _refuse("a membership test")
    __index__ = _refuse("using it as an integer")
    __int__ = _refuse("converting it to int")
    __float__ = _refuse("converting it to float")


def _format_raised(info):
    name = str(info.get("type", "Exception"))[:100]
    message = str(info.get("message", ""))[:500]
    return f"{name}: {message}" if message else name


# ----- running a request --------------------------------------------------------------------


def write_files(work_dir, files):
    for rel, content in files.items():
        path = os.path.normpath(os.path.join(work_dir, rel))
        if os.path.isabs(rel) or not path.startswith(work_dir.rstrip("/") + "/"):
            raise ValueError(f"file path {rel!r} leaves the work dir")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)


def trusted_compile(source, filename):
    # optimize=0 keeps assert statements whatever flags the interpreter runs with.
    return compile(source, filename, "exec", dont_inherit=True, optimize=0)


def bind_names(namespace, link, names, suite):
    """Proxies for what the solution defines, as if ``from solution import *`` came first;
    never shadowing a builtin (a solution defining ``sorted`` must not change the tests)."""
    wanted = set(suite.get("entry_points", [])) | set(suite.get("aliases", {}).values())
    for name, info in names.items():
        if type(name) is not str or not name.isidentifier() or type(info) is not dict:
            continue
        if name.startswith("_") and name not in wanted:
            continue
        if hasattr(builtins, name) and name not in wanted:
            continue
        if "module" in info:
            module_name = str(info["module"])
            if module_name in TRUSTED_MODULES:
                namespace[name] = importlib.import_module(module_name)
        elif info.get("callable") is True:
            namespace[name] = CandidateFunction(link, name)
        elif "value" in info:
            try:
                namespace[name] = wire.decode(info["value"], link._remote)
            except wire.ProtocolError:
                continue


def _failure_detail(err, case_name):
    """One line saying why a case failed, pointing at the failing test line."""
    line = ""
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == case_name:
            line = f" (test line {tb.tb_lineno})"
        tb = tb.tb_next
    if isinstance(err, AssertionError):
        message = str(err)
        return f"assertion failed{line}" + (f": {message[:300]}" if message else "")
    return f"{type(err).__name__}{line}: {str(err)[:300]}"


def run_tests(request, ctx, emit):
    limits = request["limits"]
    suite = request["tests"]
    cases = suite["cases"]
    started = time.monotonic()
    run_deadline = started + float(limits["timeout_s"])
    output = Output(int(limits["max_output_bytes"]))
    final = {"compiled": False, "loaded": False, "exit_code": None, "incidents": {}}

    def finish(detail_for_rest, kind, first_index=0):
        for index in range(first_index, len(cases)):
            emit({"case": index, "passed": False, "kind": kind, "detail": detail_for_rest})

    try:
        trusted_compile(request["code"], "solution.py")
        final["compiled"] = True
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as err:
        where = f" (line {err.lineno})" if isinstance(err, SyntaxError) and err.lineno else ""
        final["compile_error"] = f"{type(err).__name__}{where}: {err}"[:500]
        finish(f"the solution does not compile: {final['compile_error']}", "error")
        return _final(final, output)

    compiled_cases = []
    for index, case in enumerate(cases):
        name = f"<test {index}>"
        try:
            compiled_cases.append((name, trusted_compile(case["code"], name)))
        except (SyntaxError, ValueError) as err:
            compiled_cases.append((name, err))

    link = Link(ctx, request, output, run_deadline)
    try:
        names, load_error = link.start(run_deadline)
        if load_error is not None:
            kind = (
                load_error.kind if load_error.kind in ("timeout", "memory", "output") else "error"
            )
            final["load_error"] = load_error.detail
            final["incidents"][kind] = 1
            finish(load_error.detail, kind)
            return _final(final, output, link)
        final["loaded"] = True
        namespace = {"__name__": "__main__", "__builtins__": builtins}
        bind_names(namespace, link, names, suite)
        try:
            link.begin_case(run_deadline)
            for source, label in (
                (suite.get("shared_setup"), "task setup"),
                (suite.get("setup"), "test setup"),
            ):
                if source:
                    exec(trusted_compile(source, f"<{label}>"), namespace)
            for name in suite.get("entry_points", []):
                namespace[name] = CandidateFunction(link, name)
            for alias, target in suite.get("aliases", {}).items():
                namespace[alias] = CandidateFunction(link, target)
        except BaseException as err:  # a broken task, or a setup that called the solution
            final["setup_error"] = _failure_detail(err, "")
            finish(f"test setup failed: {final['setup_error']}", "error")
            return _final(final, output, link)
        link.end_case()

        for index, (name, code) in enumerate(compiled_cases):
            if link.fatal is not None:
                finish(f"not run: {link.fatal[1]}", link.fatal[0], index)
                break
            now = time.monotonic()
            if now >= run_deadline:
                final["incidents"]["timeout"] = final["incidents"].get("timeout", 0) + 1
                finish("not run: the run's time budget was spent", "timeout", index)
                break
            per_case = limits.get("test_timeout_s")
            link.begin_case(now + float(per_case) if per_case else run_deadline)
            emit(_run_case(index, name, code, namespace, link, final))
    finally:
        link.stop()
        final["exit_code"] = _exit_code(link)
    return _final(final, output, link)


def _run_case(index, name, code, namespace, link, final):
    started = time.monotonic()
    kind, detail = "passed", ""
    if isinstance(code, BaseException):
        kind, detail = "error", f"the test does not compile: {code}"
    else:
        try:
            exec(code, namespace)
        except Incident as incident:
            kind, detail = incident.kind, incident.detail
        except BaseException as err:  # the test failed: assertion, solution error, anything
            kind, detail = "failed", _failure_detail(err, name)
    incident = link.end_case()
    if incident is not None:  # counts even if the test code caught it and carried on
        if kind == "passed":
            detail = incident[1]
        kind = incident[0]
    if kind not in ("passed", "failed", "error"):
        final["incidents"][kind] = final["incidents"].get(kind, 0) + 1
    return {
        "case": index,
        "passed": kind == "passed",
        "kind": kind,
        "detail": detail[:600],
        "duration_s": round(time.monotonic() - started, 6),
    }


def _exit_code(link):
    status = link.executor.exit_status if link.executor is not None else None
    if status is None:
        return None
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def _final(final, output, link=None):
    final["stdout"] = output.text("stdout")
    final["stderr"] = output.text("stderr")
    final["output_truncated"] = output.exceeded
    if output.exceeded:
        final["incidents"]["output"] = 1
    if link is not None and link.memory_seen:
        final["incidents"]["memory"] = final["incidents"].get("memory", 0) + 1
    return {"final": final}


def run_command(request, ctx, emit):
    """Program mode: run ``command`` and report how it ended. No tests, no verdict."""
    limits = request["limits"]
    deadline = time.monotonic() + float(limits["timeout_s"])
    output = Output(int(limits["max_output_bytes"]))
    final = {"compiled": None, "loaded": None, "exit_code": None, "incidents": {}}
    argv = list(request["command"])
    if argv and argv[0] in ("python", "python3"):
        argv[0] = ctx.python
    elif argv and "/" not in argv[0]:
        for folder in ctx.child_env()["PATH"].split(":"):
            if os.access(os.path.join(folder, argv[0]), os.X_OK):
                argv[0] = os.path.join(folder, argv[0])
                break
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    devnull = os.open(os.devnull, os.O_RDONLY)
    oom_before = memory_kills(ctx.oom_path)
    try:
        pid = spawn(
            argv,
            ctx.child_env(),
            ctx.work_dir,
            ctx.rlimits(limits),
            {0: devnull, 1: out_w, 2: err_w},
        )
    finally:
        for fd in (out_w, err_w, devnull):
            os.close(fd)
    open_fds = {out_r: "stdout", err_r: "stderr"}
    status = None
    while True:
        if status is None:
            done, status_now = os.waitpid(pid, os.WNOHANG)
            status = status_now if done else None
        if status is not None and not open_fds:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            final["incidents"]["timeout"] = 1
            break
        # Once it has exited, take what is already written; do not wait on its children.
        wait = 0 if status is not None else min(remaining, 0.05)
        ready = select.select(list(open_fds), [], [], wait)[0] if open_fds else []
        if not open_fds:
            time.sleep(min(remaining, 0.005))
        for fd in ready:
            data = os.read(fd, 1 << 16)
            if not data:
                del open_fds[fd]
            elif not output.add(open_fds[fd], data):
                open_fds.clear()
        if output.exceeded or (status is not None and not ready):
            break
    killed = ctx.kill_candidates(pid)  # its children too, even when it already exited
    status = status if status is not None else killed
    for fd in (out_r, err_r):
        os.close(fd)
    if status is not None:
        kind, text = describe_exit(status, oom_before, ctx.oom_path)
        if kind in ("memory", "file_size") and not final["incidents"]:
            final["incidents"][kind] = 1
        final["exit_code"] = (
            os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)
        )
        final["ended"] = text
    return _final(final, output)


def run(request, ctx, emit):
    """Entry point used by the server (in the forked harness process)."""
    write_files(ctx.work_dir, request.get("files", {}))
    if request.get("command"):
        if ctx.spare is not None:  # started ahead for a unit-test run; not needed here
            Executor(ctx, Output(0), ctx.spare).stop()
            ctx.spare = None
        emit(run_command(request, ctx, emit))
        return
    write_files(ctx.work_dir, {"solution.py": request["code"]})
    emit(run_tests(request, ctx, emit))
