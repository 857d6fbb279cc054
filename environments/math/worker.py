"""A checker worker process: ``python -m grpo_env.environments.math.worker``.

It reads one JSON request per line on stdin and writes one JSON response per line on the
stdout it was started with (anything a library prints goes to stderr instead, so the
protocol channel stays clean). It warms its imports before announcing ``{"ready": ...}``,
so the first real check is not charged for importing sympy.

Requests:
- ``{"op": "check", "gold", "completion", "last_number_fallback"}``: a math check.
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
import sys
from typing import Any, TextIO

from grpo_env.types import Status, VerifyResult

_DATASETS: dict[str, Any] = {}


def _dataset_key(name: str, config: dict[str, Any]) -> str:
    return json.dumps([name, config], sort_keys=True)


def _load_dataset(name: str, config: dict[str, Any]) -> Any:
    key = _dataset_key(name, config)
    if key not in _DATASETS:
        import reasoning_gym

        # score_answer reads only the entry, so a one-item dataset is enough to score with.
        _DATASETS[key] = reasoning_gym.create_dataset(name, seed=0, size=1, **config)
    return _DATASETS[key]


def handle(request: dict[str, Any]) -> dict[str, Any]:
    from grpo_env.environments.math.checker import check_completion, check_with_scorer

    op = request.get("op")
    try:
        if op == "check":
            result = check_completion(
                request["gold"],
                request["completion"],
                last_number_fallback=bool(request.get("last_number_fallback", False)),
            )
        elif op == "load_dataset":
            _load_dataset(request["dataset"], request.get("config", {}))
            return {"loaded": True}
        elif op == "dataset_check":
            dataset = _load_dataset(request["dataset"], request.get("config", {}))
            entry = request["entry"]
            result = check_with_scorer(
                str(entry.get("answer", "")),
                request["completion"],
                lambda answer: dataset.score_answer(answer=answer, entry=entry),
                last_number_fallback=bool(request.get("last_number_fallback", False)),
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


def _limit_memory(megabytes: int) -> None:
    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _warm_up() -> None:
    from grpo_env.environments.math.checker import check_completion

    check_completion("\\frac{1}{2}", "The answer is $\\boxed{0.5}$.")
    check_completion("x^2 - 1", "\\boxed{(x-1)(x+1)}")


def serve(stdin: TextIO, channel: TextIO) -> None:
    for line in stdin:
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


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    memory_mb = int(args[0]) if args else 0
    # Keep the real stdout for the protocol; point fd 1 at stderr for everything else.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _limit_memory(memory_mb)
    _warm_up()
    channel.write(json.dumps({"ready": True}) + "\n")
    channel.flush()
    serve(sys.stdin, channel)


if __name__ == "__main__":
    main()
