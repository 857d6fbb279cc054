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
import importlib
import math
import os
import resource
import select
import sys
import time

from . import bundle, judge, procs, wire
from .link import (
    EXECUTOR_FLAGS,
    CandidateFunction,
    Executor,
    Incident,
    Link,
    Output,
    spawn_executor,
)

__all__ = ["EXECUTOR_FLAGS", "Context", "run", "spawn_executor", "warm_up"]


def _words(text):
    return text.split()


# Modules a candidate imported that the tests may use by the same name (MBPP tests often call
# ``math.isclose`` relying on the solution's ``import math``). The trusted side binds its own
# copy, never the candidate's object; only pure-computation standard modules qualify.
TRUSTED_MODULES = frozenset(
    _words(
        """math cmath re collections itertools functools heapq bisect string random datetime
        decimal fractions statistics operator copy json typing array numbers unicodedata
        textwrap calendar enum dataclasses hashlib struct"""
    )
)
_POLL_SLICE = 0.25


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
            procs.kill_all_but(self.zygote)
        else:
            procs.kill_session(leader)
        if not leader:
            return None
        try:
            return os.waitpid(leader, 0)[1]
        except ChildProcessError:  # the zygote's child, not ours
            return self.zygote.reap(leader) if self.zygote is not None else None


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
WARM_MODULES = _words(
    """typing re collections math random itertools functools heapq string copy hashlib
    fractions decimal statistics datetime"""
)


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
    oom_before = procs.memory_kills(ctx.oom_path)
    try:
        pid = procs.spawn(
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
        kind, text = procs.describe_exit(status, oom_before, ctx.oom_path)
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
    if request.get("io"):
        emit(judge.run_io(request, ctx, emit))
        return
    emit(run_tests(request, ctx, emit))
