"""Math task files: JSON lines in GSM8K form or MATH form, and the small shipped dataset.

GSM8K form: ``{"question": ..., "answer": "...worked solution...\\n#### 72"}``
MATH form:  ``{"problem": ..., "solution": "... \\boxed{\\frac{5}{6}} ..."}`` or
            ``{"problem": ..., "answer": "\\frac{5}{6}"}`` (``answer`` wins over ``solution``)

Optional fields: ``id`` (default: file stem and line number), ``level``, ``type``/``subject``
(kept in the task's metadata). A bad row raises ``TaskFileError`` naming the file, the line
and the field.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from grpo_env.environments.math.extraction import last_boxed
from grpo_env.tasks import JsonlTaskSource, TaskFieldError
from grpo_env.types import Task

ShippedSplit = Literal["train", "test"]
_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_KEPT_METADATA = ("level", "type", "subject", "source")


def parse_math_row(row: dict[str, Any], default_id: str) -> Task:
    """One JSON object in GSM8K or MATH form -> a ``Task`` whose ``answer`` is the final
    answer (the worked solution stays in ``metadata["solution"]``)."""
    task_id = _id(row, default_id)
    metadata = {key: row[key] for key in _KEPT_METADATA if key in row}
    if "question" in row:
        question = _text(row, "question")
        solution = _text(row, "answer")
        match = _GSM8K_FINAL.search(solution)
        if not match or not match.group(1).strip():
            raise TaskFieldError("answer", "a GSM8K answer must end with '#### <final answer>'")
        final = match.group(1).strip()
        metadata.update(format="gsm8k", solution=solution)
        return Task(id=task_id, prompt=question, answer=final, metadata=metadata)
    if "problem" in row:
        problem = _text(row, "problem")
        if "answer" in row:
            final = _text(row, "answer")
        elif "solution" in row:
            solution = _text(row, "solution")
            boxed = last_boxed(solution)
            if not boxed:
                raise TaskFieldError(
                    "solution", "no \\boxed{...} final answer in the solution (or add 'answer')"
                )
            final = boxed
            metadata["solution"] = solution
        else:
            raise TaskFieldError(
                "answer", "missing: a MATH row needs 'answer' or a 'solution' with \\boxed{...}"
            )
        metadata["format"] = "math"
        return Task(id=task_id, prompt=problem, answer=final, metadata=metadata)
    raise TaskFieldError(
        "problem",
        "missing: expected 'question' + 'answer' (GSM8K form) or 'problem' + "
        "'answer'/'solution' (MATH form)",
    )


def _id(row: dict[str, Any], default_id: str) -> str:
    if "id" not in row:
        return default_id
    value = row["id"]
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise TaskFieldError("id", f"expected a non-empty string or integer, got {value!r}")
    return str(value)


def _text(row: dict[str, Any], field: str) -> str:
    value = row[field]
    # Final answers are often numbers in JSON ({"answer": 72}); anything else is a mistake.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value) if isinstance(value, float) else str(value)
    if not isinstance(value, str):
        raise TaskFieldError(field, f"expected a string, got {type(value).__name__}")
    if not value.strip():
        raise TaskFieldError(field, "is empty")
    return value


def load_math_jsonl(path: str | Path) -> JsonlTaskSource:
    """A GSM8K- or MATH-form JSON-lines file (the two forms may be mixed)."""
    return JsonlTaskSource(path, parser=parse_math_row)


def shipped_math_tasks(split: ShippedSplit = "train") -> JsonlTaskSource:
    """The small dataset shipped with grpo-env (original problems in both forms), so that
    ``math-v0`` works offline. ``test`` is held out: no problem appears in both."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data = resources.files("grpo_env.environments.math") / "data" / f"{split}.jsonl"
    with resources.as_file(data) as path:
        return load_math_jsonl(Path(path))
