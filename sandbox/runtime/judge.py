"""The stdin/stdout judge: the trusted side of a run whose tests are input/output cases.

Each case runs the candidate's program in a fresh executor (forked by the zygote when there is
one) with the case's input on stdin. This process only reads what the program wrote to its
stdout and compares it with the expected output, which never leaves this process: the program
can choose what it prints, crash, hang or flood, never the verdict. Every case ends with all
of the candidate's processes killed, so a case that crashes, times out or floods output fails
alone and the next case starts clean.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import time

from . import procs, wire
from .link import Output, spawn_executor

_DETAIL = 160


def normalized_lines(text):
    """Lines without trailing whitespace (``\\r`` included), trailing blank lines dropped."""
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _number(token):
    try:
        value = float(token)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def compare(got, expected, mode="exact", tolerance=1e-6):
    """(passed, why not). ``exact``: normalized lines equal; ``tokens``: whitespace-separated
    tokens equal; ``float``: tokens, where numbers may differ by ``tolerance`` (abs or rel)."""
    if mode == "exact":
        a, b = normalized_lines(got), normalized_lines(expected)
        if a == b:
            return True, ""
        for number, (x, y) in enumerate(zip(a, b, strict=False), start=1):
            if x != y:
                return False, f"line {number}: expected {_short(y)}, got {_short(x)}"
        return False, f"expected {len(b)} lines, got {len(a)}"
    a, b = got.split(), expected.split()
    if len(a) != len(b):
        return False, f"expected {len(b)} tokens, got {len(a)}"
    for number, (x, y) in enumerate(zip(a, b, strict=False), start=1):
        if x == y:
            continue
        fx, fy = (_number(x), _number(y)) if mode == "float" else (None, None)
        close = fx is not None and fy is not None
        if close and math.isclose(fx, fy, rel_tol=tolerance, abs_tol=tolerance):
            continue
        return False, f"token {number}: expected {_short(y)}, got {_short(x)}"
    return True, ""


def _short(text):
    return repr(text if len(text) <= _DETAIL else text[:_DETAIL] + "...")


def run_io(request, ctx, emit):
    """Run every case; emit one verdict per case; return the final report."""
    limits = request["limits"]
    suite = request["io"]
    run_deadline = time.monotonic() + float(limits["timeout_s"])
    per_case = limits.get("test_timeout_s")
    final = {"compiled": False, "loaded": None, "exit_code": None, "incidents": {}}
    shown = {"stdout": "", "stderr": ""}
    try:
        compile(request["code"], "solution.py", "exec", dont_inherit=True)
        final["compiled"] = True
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as err:
        where = f" (line {err.lineno})" if isinstance(err, SyntaxError) and err.lineno else ""
        final["compile_error"] = f"{type(err).__name__}{where}: {err}"[:500]
        for index in range(len(suite["cases"])):
            detail = f"the program does not compile: {final['compile_error']}"
            emit({"case": index, "passed": False, "kind": "error", "detail": detail})
        return _final(final, shown)
    for index, case in enumerate(suite["cases"]):
        now = time.monotonic()
        if now >= run_deadline:
            final["incidents"]["timeout"] = final["incidents"].get("timeout", 0) + 1
            for rest in range(index, len(suite["cases"])):
                detail = "not run: the run's time budget was spent"
                emit({"case": rest, "passed": False, "kind": "timeout", "detail": detail})
            break
        deadline = min(now + float(per_case), run_deadline) if per_case else run_deadline
        verdict, out, err, exit_code = _run_case(request, ctx, case, deadline, suite)
        verdict["case"] = index
        verdict["duration_s"] = round(time.monotonic() - now, 6)
        kind = verdict["kind"]
        if kind in ("timeout", "memory", "output"):
            final["incidents"][kind] = final["incidents"].get(kind, 0) + 1
        if not verdict["passed"] and not (shown["stdout"] or shown["stderr"]):
            shown = {"stdout": out, "stderr": err}  # the first failure says most
        final["exit_code"] = exit_code
        emit(verdict)
    return _final(final, shown)


def _run_case(request, ctx, case, deadline, suite):
    """(verdict, stdout, stderr, exit code) of one case, its processes all killed after."""
    limits = request["limits"]
    output = Output(int(limits["max_output_bytes"]))
    oom_before = procs.memory_kills(ctx.oom_path)
    spare, ctx.spare = ctx.spare, None
    pid, req_w, reply_r, out_r, err_r = spare if spare is not None else spawn_executor(ctx)
    first = {
        "program": True,
        "stdin": case["input"],
        "code": request["code"],
        "filename": os.path.join(ctx.work_dir, "solution.py"),
        "cwd": ctx.work_dir,
        "path": ctx.site_packages,
        "rlimits": [[int(k), int(v)] for k, v in ctx.rlimits(limits)],
    }
    ended = _pump(wire.dumps(first), req_w, reply_r, out_r, err_r, output, deadline)
    status = ctx.kill_candidates(pid)  # its children too, whatever it left running
    for fd in (req_w, reply_r, out_r, err_r):
        with contextlib.suppress(OSError):
            os.close(fd)
    out, err = output.text("stdout"), output.text("stderr")
    exit_code = None
    if status is not None and os.WIFEXITED(status):
        exit_code = os.WEXITSTATUS(status)
    if ended == "output":
        return _verdict("output", f"wrote more than {output.cap} bytes"), out, err, exit_code
    if ended == "timeout":
        return _verdict("timeout", "the program ran out of time"), out, err, exit_code
    if status is None:
        return _verdict("died", "the program's process vanished"), out, err, exit_code
    kind, text = procs.describe_exit(status, oom_before, ctx.oom_path)
    if kind != "exit":
        return _verdict(kind, f"the program was {text}"), out, err, exit_code
    if exit_code != 0:
        last = err.strip().splitlines()[-1:] or [""]
        detail = f"the program {text}" + (f": {last[0][:300]}" if last[0] else "")
        return _verdict("runtime_error", detail), out, err, exit_code
    passed, why = compare(out, case["output"], suite.get("compare", "exact"), suite["tolerance"])
    if passed:
        return _verdict("passed", ""), out, err, exit_code
    return _verdict("failed", f"wrong answer: {why}"), out, err, exit_code


def _verdict(kind, detail):
    return {"passed": kind == "passed", "kind": kind, "detail": detail[:600]}


def _pump(data, req_w, reply_r, out_r, err_r, output, deadline):
    """Send the first request, then read stdout/stderr until every descriptor the program
    holds is closed (it exited), the deadline passes ("timeout") or it floods ("output")."""
    pending = bytearray(data)
    os.set_blocking(req_w, False)
    streams = {out_r: "stdout", err_r: "stderr", reply_r: None}
    while streams:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return "timeout"
        writable = [req_w] if pending else []
        try:
            ready_r, ready_w, _ = select.select(list(streams), writable, [], min(remaining, 0.25))
        except InterruptedError:
            continue
        if ready_w:
            try:
                del pending[: os.write(req_w, pending)]
            except BlockingIOError:
                pass
            except BrokenPipeError:
                pending.clear()
        for fd in ready_r:
            data = os.read(fd, 1 << 16)
            if not data:
                del streams[fd]
            elif streams[fd] is not None and not output.add(streams[fd], data):
                return "output"
    return "exited"


def _final(final, shown):
    final["stdout"], final["stderr"] = shown["stdout"], shown["stderr"]
    final["output_truncated"] = False
    return {"final": final}
