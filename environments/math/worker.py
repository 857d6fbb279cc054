"""Checker processes: ``python -m grpo_env.environments.math.worker --zygote FD``.

The zygote imports everything and warms up, says ``{"ready": true}`` on stdout, then forks a
worker for every request on its control socket (see ``processes``). A worker reads one JSON
request per line and writes one JSON response per line on the pipes it was given; anything
a library prints goes to stderr, so the protocol channel stays clean.

Requests:
- ``{"op": "check", "gold", "completion", "last_number_fallback", "prose_conclusion",
  "question", "answer_kind"}``: a math check (``pool.check_request`` builds it).
- ``{"op": "load_dataset", "dataset", "config"}``: build a reasoning-gym dataset once (its
  import takes seconds and must not count against a check's time limit).
- ``{"op": "dataset_check", "dataset", "config", "entry", "completion", ...}``: score with
  reasoning-gym's own ``score_answer``.

Responses: ``{"result": VerifyResult}``, or ``{"exhausted": reason}`` when the check ran out
of memory or recursion depth (the pool reports a timeout and replaces this worker).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import sys
from typing import Any, TextIO

from grpo_env.types import Status, VerifyResult

_DATASETS: dict[str, Any] = {}


def _load_dataset(name: str, config: dict[str, Any]) -> Any:
    key = json.dumps([name, config], sort_keys=True)
    if key not in _DATASETS:
        import reasoning_gym

        # score_answer reads only the entry, so a one-item dataset is enough to score with.
        _DATASETS[key] = reasoning_gym.create_dataset(name, seed=0, size=1, **config)
    return _DATASETS[key]


def handle(request: dict[str, Any]) -> dict[str, Any]:
    from grpo_env.environments.math import checker

    op = request.get("op")
    try:
        if op == "check":
            result = checker.check_completion(
                request["gold"],
                request["completion"],
                last_number_fallback=bool(request.get("last_number_fallback", False)),
                prose_conclusion=bool(request.get("prose_conclusion", False)),
                question=request.get("question"),
                answer_kind=request.get("answer_kind", "expression"),
            )
        elif op == "load_dataset":
            _load_dataset(request["dataset"], request.get("config", {}))
            return {"loaded": True}
        elif op == "dataset_check":
            dataset = _load_dataset(request["dataset"], request.get("config", {}))
            entry = request["entry"]
            result = checker.check_with_scorer(
                str(entry.get("answer", "")),
                request["completion"],
                lambda answer: dataset.score_answer(answer=answer, entry=entry),
                last_number_fallback=bool(request.get("last_number_fallback", False)),
                prose_conclusion=bool(request.get("prose_conclusion", False)),
            )
        else:
            return {"protocol_error": f"unknown op {op!r}"}
    except MemoryError:
        return {"exhausted": "the check ran out of memory"}
    except RecursionError:
        return {"exhausted": "the answer is nested too deeply to check"}
    except Exception as err:  # the input broke the checker: a verdict, not a crash
        result = VerifyResult(
            score=0.0,
            status=Status.ERROR,
            components={"correct": 0.0},
            details={"reason": f"checker raised {type(err).__name__}: {err}"[:500]},
        )
    return {"result": result.model_dump(mode="json")}


def serve(requests: TextIO, channel: TextIO) -> None:
    """Answer requests until the request pipe closes."""
    for line in requests:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as err:
            response: dict[str, Any] = {"protocol_error": f"bad request: {err}"}
        else:
            response = handle(request)
            response["id"] = request.get("id")
        channel.write(json.dumps(response) + "\n")
        channel.flush()


def _warm_up() -> None:
    from grpo_env.environments.math.checker import check_completion

    check_completion("\\frac{1}{2}", "The answer is $\\boxed{0.5}$.")
    check_completion("x^2 - 1", "\\boxed{(x-1)(x+1)}")
    check_completion("[1, 2)", "\\boxed{1 \\le x < 2}")


def _run_worker(request_fd: int, response_fd: int, memory_mb: int) -> None:
    """In a freshly forked child: limit memory, say ready, serve."""
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    requests = os.fdopen(request_fd, "r", encoding="utf-8")
    channel = os.fdopen(response_fd, "w", encoding="utf-8")
    channel.write(json.dumps({"ready": True}) + "\n")
    channel.flush()
    serve(requests, channel)


def zygote(control_fd: int) -> None:
    # Keep the real stdout for the ready message; point fd 1 at stderr for everything else.
    ready = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    control = socket.socket(fileno=control_fd)
    _warm_up()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps dead workers
    ready.write(json.dumps({"ready": True}) + "\n")
    ready.close()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1024, 2)
        except (OSError, ConnectionError):
            return
        if not message:
            return  # the pool is gone
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        memory_mb = int(json.loads(message).get("memory_mb", 0))
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _run_worker(fds[0], fds[1], memory_mb)
            except BaseException:
                status = 1
            finally:
                os._exit(status)
        for fd in fds:
            os.close(fd)
        control.send(json.dumps({"pid": pid}).encode())


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "--zygote":
        raise SystemExit("usage: python -m grpo_env.environments.math.worker --zygote FD")
    zygote(int(args[1]))


if __name__ == "__main__":
    main()
