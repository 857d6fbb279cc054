"""Code datasets from local JSONL files, in the shapes they are published in (no hub at run time).

- ``humaneval``: ``task_id``, ``prompt``, ``test`` (a ``def check(candidate)``), ``entry_point``,
  optional ``canonical_solution``. One test per assert in ``check``.
- ``apps`` (APPS and TACO): ``question``, ``input_output`` (JSON text or object with
  ``inputs``/``outputs``, and ``fn_name`` for call-based tasks), optional ``starter_code``,
  ``solutions`` (JSON text or list; the first is the reference), ``problem_id``/``id``.
- ``codecontests``: ``name``, ``description``, ``public_tests``/``private_tests`` (and
  ``generated_tests``), each ``{"input": [...], "output": [...]}``; ``solutions``
  ``{"language": [...], "solution": [...]}`` (language 3 = Python 3) for the reference.
- ``livecodebench``: ``question_id``, ``question_title``, ``question_content``,
  ``public_test_cases``/``private_test_cases`` (JSON text: a list of ``{"input", "output",
  "testtype"}``; ``functional`` cases call ``metadata.func_name`` on ``Solution()``, one JSON
  argument per input line), optional ``starter_code``. The hub's compressed
  ``private_test_cases`` must be decoded to JSON first.

Stdin/stdout outputs are compared as each dataset's own judge does, by default: ``apps`` and
``codecontests`` token-wise with numbers within 1e-6 (``float``), ``livecodebench`` line by line
(``exact``); ``compare=`` overrides it. Stdin/stdout tasks carry an ``IOSuite`` as ``tests``
(``{"kind": "stdio", ...}``); the rest a ``TestSuite``. A bad row is an error naming the file,
the line and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from grpo_env.sandbox.iocases import CaseDataError, call_suite, io_suite
from grpo_env.sandbox.models import Compare, IOSuite, TestSuite
from grpo_env.sandbox.testfile import TestFileError, suite_from_check
from grpo_env.tasks import JsonlTaskSource, TaskFieldError, TaskSource
from grpo_env.types import Task

from .code_tasks import CODE_INSTRUCTION

SAMPLES = Path(__file__).parent / "data"
STDIO_INSTRUCTION = (
    "{question}\n\nWrite a Python 3 program that reads the input from standard input and "
    "prints the answer to standard output. Reply with the complete program in a single "
    "```python code block."
)
CALL_INSTRUCTION = (
    "{question}\n\nWrite the Python 3 function `{fn_name}`{starter}. Reply with the code in a "
    "single ```python code block."
)


def _text(row: dict[str, Any], *names: str) -> str:
    for name in names:
        if name in row:
            value = row[name]
            if not isinstance(value, str) or not value.strip():
                raise TaskFieldError(name, "must be a non-empty string")
            return value
    raise KeyError(names[0])


def _json_field(row: dict[str, Any], name: str) -> Any:
    value = row[name]
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as err:
            raise TaskFieldError(name, f"not valid JSON text: {err.msg}") from None
    return value


def _suite(field: str, build: Callable[[], IOSuite | TestSuite]) -> IOSuite | TestSuite:
    try:
        return build()
    except CaseDataError as err:
        raise TaskFieldError(field, err.why) from None
    except (TestFileError, ValueError) as err:
        raise TaskFieldError(field, str(err)) from None


def _task(task_id: Any, prompt: str, suite: IOSuite | TestSuite, answer: Any, source: str) -> Task:
    return Task(
        id=str(task_id),
        prompt=prompt,
        answer=answer if isinstance(answer, str) and answer.strip() else None,
        tests=suite.model_dump(),
        metadata={"source": source, "format": "stdio" if isinstance(suite, IOSuite) else "calls"},
    )


# ----- HumanEval-style ------------------------------------------------------------------------


def humaneval_row_parser(row: dict[str, Any], default_id: str) -> Task:
    prompt = _text(row, "prompt")
    entry = _text(row, "entry_point")
    if not entry.isidentifier():
        raise TaskFieldError("entry_point", "must be a Python identifier")
    test = _text(row, "test")
    suite = _suite("test", lambda: suite_from_check(test, entry, shared_setup=prompt))
    solution = row.get("canonical_solution")
    task = _task(
        row.get("task_id", default_id),
        CODE_INSTRUCTION.format(prompt=prompt),
        suite,
        prompt + solution if isinstance(solution, str) else None,
        "humaneval-jsonl",
    )
    task.metadata.update(entry_point=entry, format="check")
    return task


# ----- APPS / TACO ------------------------------------------------------------------------------


def apps_row_parser(row: dict[str, Any], default_id: str, compare: Compare = "float") -> Task:
    question = _text(row, "question")
    data = _json_field(row, "input_output")
    if not isinstance(data, dict):
        raise TaskFieldError("input_output", "must be an object with inputs and outputs")
    fn_name = data.get("fn_name")
    inputs, outputs = data.get("inputs"), data.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise TaskFieldError("input_output", "needs lists `inputs` and `outputs`")
    if len(inputs) != len(outputs):
        raise TaskFieldError("input_output", f"{len(inputs)} inputs but {len(outputs)} outputs")
    starter = row.get("starter_code") or ""
    if fn_name:
        if not isinstance(fn_name, str) or not fn_name.isidentifier():
            raise TaskFieldError("input_output", "fn_name must be a Python identifier")
        suite = _suite("input_output", lambda: call_suite(fn_name, inputs, outputs))
        shown = f", starting from:\n```python\n{starter.rstrip()}\n```\n" if starter else ""
        prompt = CALL_INSTRUCTION.format(question=question.strip(), fn_name=fn_name, starter=shown)
    else:
        suite = _suite("input_output", lambda: io_suite(inputs, outputs, compare))
        prompt = STDIO_INSTRUCTION.format(question=question.strip())
    solutions = _json_field(row, "solutions") if "solutions" in row else []
    if not isinstance(solutions, list):
        raise TaskFieldError("solutions", "must be a list of programs (or its JSON text)")
    task_id = row.get("problem_id", row.get("id", default_id))
    return _task(task_id, prompt, suite, solutions[0] if solutions else None, "apps")


# ----- CodeContests ---------------------------------------------------------------------------

_PYTHON3 = 3


def codecontests_row_parser(
    row: dict[str, Any], default_id: str, compare: Compare = "float"
) -> Task:
    description = _text(row, "description")
    inputs: list[Any] = []
    outputs: list[Any] = []
    for field in ("public_tests", "private_tests", "generated_tests"):
        tests = row.get(field)
        if tests is None:
            continue
        if not isinstance(tests, dict):
            raise TaskFieldError(field, 'must be {"input": [...], "output": [...]}')
        given, expected = tests.get("input"), tests.get("output")
        if not isinstance(given, list) or not isinstance(expected, list):
            raise TaskFieldError(field, 'needs lists "input" and "output"')
        if len(given) != len(expected):
            raise TaskFieldError(field, f"{len(given)} inputs but {len(expected)} outputs")
        inputs += given
        outputs += expected
    if not inputs:
        raise TaskFieldError("public_tests", "no test cases in public/private/generated tests")
    suite = _suite("public_tests", lambda: io_suite(inputs, outputs, compare))
    answer = None
    solutions = row.get("solutions")
    if isinstance(solutions, dict):
        pairs = zip(solutions.get("language", []), solutions.get("solution", []), strict=False)
        answer = next((code for lang, code in pairs if lang == _PYTHON3), None)
    task_id = row.get("name", default_id)
    prompt = STDIO_INSTRUCTION.format(question=description.strip())
    return _task(task_id, prompt, suite, answer, "codecontests")


# ----- LiveCodeBench ----------------------------------------------------------------------------


def livecodebench_row_parser(
    row: dict[str, Any], default_id: str, compare: Compare = "exact"
) -> Task:
    question = _text(row, "question_content")
    cases: list[dict[str, Any]] = []
    for field in ("public_test_cases", "private_test_cases"):
        if field not in row:
            continue
        value = _json_field(row, field)
        if not isinstance(value, list) or not all(
            isinstance(c, dict) and isinstance(c.get("input"), str) and "output" in c for c in value
        ):
            raise TaskFieldError(field, 'must be a list of {"input", "output"} cases')
        cases += value
    if not cases:
        raise TaskFieldError("public_test_cases", "no test cases")
    functional = [c.get("testtype") == "functional" for c in cases]
    starter = row.get("starter_code") or ""
    if any(functional):
        if not all(functional):
            raise TaskFieldError("public_test_cases", "mixes functional and stdin cases")
        meta = _json_field(row, "metadata") if "metadata" in row else {}
        fn_name = meta.get("func_name") if isinstance(meta, dict) else None
        if not isinstance(fn_name, str) or not fn_name.isidentifier():
            raise TaskFieldError("metadata", "functional cases need metadata.func_name")
        try:
            args = [[json.loads(line) for line in c["input"].split("\n") if line] for c in cases]
            expected = [json.loads(c["output"]) for c in cases]
        except json.JSONDecodeError as err:
            why = f"a functional case is not JSON: {err.msg}"
            raise TaskFieldError("public_test_cases", why) from None
        suite = _suite("public_test_cases", lambda: call_suite(fn_name, args, expected))
        shown = f", starting from:\n```python\n{starter.rstrip()}\n```\n" if starter else ""
        prompt = CALL_INSTRUCTION.format(question=question.strip(), fn_name=fn_name, starter=shown)
    else:
        given = [c["input"] for c in cases]
        outputs = [c["output"] for c in cases]
        suite = _suite("public_test_cases", lambda: io_suite(given, outputs, compare))
        prompt = STDIO_INSTRUCTION.format(question=question.strip())
    task_id = row.get("question_id", default_id)
    return _task(task_id, prompt, suite, row.get("solution"), "livecodebench")


# ----- entry points -----------------------------------------------------------------------------

PARSERS: dict[str, Callable[..., Task]] = {
    "humaneval": humaneval_row_parser,
    "apps": apps_row_parser,
    "taco": apps_row_parser,
    "codecontests": codecontests_row_parser,
    "livecodebench": livecodebench_row_parser,
}


def code_dataset(path: str | Path, shape: str, compare: Compare | None = None) -> TaskSource:
    """Tasks from a JSONL file in one of the shapes of the module docstring; ``compare``
    overrides the shape's own way of comparing stdout."""
    if shape not in PARSERS:
        raise ValueError(f"unknown dataset shape {shape!r}: use one of {', '.join(PARSERS)}")
    parser = PARSERS[shape]
    if compare is not None and shape != "humaneval":
        parser = partial(parser, compare=compare)
    return JsonlTaskSource(path, parser=parser)


def sample(shape: str) -> TaskSource:
    """The small sample of ``shape`` shipped with the package (for tests and docs)."""
    name = "apps" if shape == "taco" else shape
    return code_dataset(SAMPLES / f"code_{name}_sample.jsonl", shape)
