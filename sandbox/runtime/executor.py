"""The untrusted side: loads the candidate's code and answers the harness's calls.

Runs inside the sandbox in its own fresh interpreter (standard library only). Everything here
after the candidate's code starts is under the candidate's control: it may rewrite this module,
write anything to any descriptor it holds, or exit. That is fine by design: the harness treats
whatever comes back as the candidate's answer in plain data and judges it on its own side, so
this process can only ever choose its answers, never the verdict.

Protocol (one JSON object per line; requests on fd 3, replies on fd 4):
  first request  {"code", "setup", "filename", "cwd", "rlimits"}
                 -> {"loaded": {name: info}} | {"load_error": ...}
  {"op": "call", "target", "args", "kwargs"}  -> {"ok": value, "mutated": {i: value}} | {"raised"}
  {"op": "getattr", "target", "attr"}         -> {"ok": value} | {"raised": ...}
  {"op": "apply", "fn", "target"}             -> {"ok": value} | {"raised": ...}
     where fn is one of list, str, len, bool: the questions about an object that is not plain
     data whose answer the candidate could have given as plain data anyway.

Program mode (stdin/stdout cases): the first request holds ``"program": true`` and the case's
``stdin``; the code runs once as ``__main__`` with that input on fd 0, and the process exits
with the program's exit code. Nothing is replied: the harness reads stdout and judges it.
"""

import contextlib
import os
import sys

from . import wire

REQUEST_FD, REPLY_FD = 3, 4
_MUTABLE = (list, dict, set, bytearray)
_APPLY = {"list": list, "str": str, "len": len, "bool": bool}


class _Refs:
    """Objects that are not plain data, kept here and named by number on the wire."""

    def __init__(self):
        self.objects = []

    def add(self, obj):
        self.objects.append(obj)
        return len(self.objects) - 1

    def get(self, ref_id, _type_name=""):
        if not 0 <= ref_id < len(self.objects):
            raise LookupError(f"no object #{ref_id} in this executor (it may have restarted)")
        return self.objects[ref_id]


def _send(message):
    data = wire.dumps(message)
    view = memoryview(data)
    while view:
        written = os.write(REPLY_FD, view)
        view = view[written:]


def _describe(err):
    return {
        "type": type(err).__name__,
        "builtin": type(err).__module__ == "builtins",
        "base_exception": not isinstance(err, Exception),
        "message": _safe_str(err)[:2000],
    }


def _safe_str(obj):
    try:
        return str(obj)
    except BaseException:
        return "<unprintable>"


def _encode_reply(value, refs):
    try:
        return {"ok": wire.encode(value, refs.add)}
    except (RecursionError, wire.NotData):
        return {"ok": {"$": "ref", "v": refs.add(value), "type": "object"}}


def _confine(request):
    """Apply the run's limits to ourselves before any candidate code runs (the harness may
    have started us before it knew them). Lowering a limit needs no privilege."""
    import resource

    for limit, value in request.get("rlimits", []):
        hard = resource.getrlimit(limit)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(limit, (value, value))
    os.chdir(request["cwd"])
    sys.path.extend(request.get("path", []))


def _load(request, refs):
    module = type(sys)("solution")
    module.__file__ = request["filename"]
    sys.modules["solution"] = module
    namespace = module.__dict__
    try:
        if request.get("setup"):
            exec(compile(request["setup"], "<task setup>", "exec"), namespace)
        exec(compile(request["code"], request["filename"], "exec"), namespace)
    except BaseException as err:  # SystemExit at import time is a failure to load too
        _send({"load_error": _describe(err)})
        return None
    names = {}
    for name, value in list(namespace.items()):
        if name.startswith("__"):
            continue
        if isinstance(value, type(sys)):
            names[name] = {"module": _safe_str(getattr(value, "__name__", ""))[:200]}
        elif callable(value):
            names[name] = {"callable": True}
        else:
            names[name] = {"value": _encode_reply(value, refs)["ok"]}
    _send({"loaded": names})
    return namespace


def _run_program(request):
    """Run the candidate's code as a program on this case's input. Never returns."""
    data = str(request.get("stdin", "")).encode("utf-8")
    # A seekable in-memory file: input of any size, read()/readline()/open(0) all work.
    fd = os.memfd_create("stdin")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    os.dup2(fd, 0)
    os.close(fd)
    os.close(REQUEST_FD)
    main_module = type(sys)("__main__")
    main_module.__file__ = request["filename"]
    sys.modules["__main__"] = main_module
    sys.argv = [request["filename"]]
    code = 0
    try:
        exec(compile(request["code"], request["filename"], "exec"), main_module.__dict__)
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            code = code or 1
    os._exit(code)


def _exit_code(value):
    if value is None:
        return 0
    if type(value) is int:
        return value & 0xFF
    with contextlib.suppress(BaseException):
        sys.stderr.write(f"{value}\n")
    return 1


def _target(request, namespace, refs):
    kind, key = request["target"]
    if kind == "name":
        if key not in namespace:
            raise NameError(f"name {key!r} is not defined by the solution")
        return namespace[key]
    return refs.get(key)


def _serve(namespace, refs, reader):
    while True:
        line = _next_line(reader)
        if line is None:
            return
        request = wire.loads_trusted(line)
        op = request.get("op")
        try:
            target = _target(request, namespace, refs)
            if op == "call":
                raw_args = request["args"]
                args = [wire.decode(a, refs.get) for a in raw_args]
                kwargs = {k: wire.decode(v, refs.get) for k, v in request["kwargs"].items()}
                result = target(*args, **kwargs)
                reply = _encode_reply(result, refs)
                reply["mutated"] = _mutated(args, raw_args, refs)
            elif op == "getattr":
                reply = _encode_reply(getattr(target, request["attr"]), refs)
            elif op == "apply":
                reply = _encode_reply(_APPLY[request["fn"]](target), refs)
            else:
                raise wire.ProtocolError(f"unknown op {op!r}")
        except BaseException as err:
            reply = {"raised": _describe(err)}
        _send(reply)


def _mutated(args, raw_args, refs):
    """The arguments the call changed in place, so the harness can mirror the change."""
    changed = {}
    for index, (arg, raw) in enumerate(zip(args, raw_args, strict=True)):
        if type(arg) in _MUTABLE:
            try:
                after = wire.encode(arg, refs.add)
            except (wire.NotData, RecursionError):
                continue
            if after != raw:
                changed[str(index)] = after
    return changed


def _next_line(reader):
    while True:
        line = reader.pop_line()
        if line is not None:
            return line
        if not reader.feed():
            return None


def main():
    # Prefer this process when the container runs out of memory (it can lower this back to 0,
    # not below; the harness survives either way because it is smaller).
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass
    reader = wire.LineReader(REQUEST_FD)
    first = _next_line(reader)
    if first is None:
        return
    refs = _Refs()
    request = wire.loads_trusted(first)
    _confine(request)
    if request.get("program"):
        _run_program(request)
    namespace = _load(request, refs)
    if namespace is not None:
        _serve(namespace, refs, reader)
    # os._exit: no atexit hooks, nothing the candidate registered runs after the last reply.
    os._exit(0)
