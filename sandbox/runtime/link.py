"""The link between the trusted harness and the untrusted executor, and the proxies through
which test code reaches the solution.

Every call crosses the process boundary as plain data (``wire``): what comes back is decoded
into builtin objects only, or stays behind in the executor as a ``RemoteObject`` that cannot
be compared. Anything that goes wrong with the executor (death, timeout, flood, protocol
error) becomes an ``Incident``, which fails the current test whatever the test code does.
"""

import builtins
import contextlib
import os
import resource
import select
import time

from . import procs, wire

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
        pid = procs.spawn(
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

    def __init__(self, ctx, output, process=None):
        self.ctx, self.output = ctx, output
        self.oom_before = procs.memory_kills(ctx.oom_path)
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
        kind, text = procs.describe_exit(status, self.oom_before, self.ctx.oom_path)
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
