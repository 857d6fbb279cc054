"""Math task files: GSM8K and MATH forms, and errors that say which file, line and field."""

from __future__ import annotations

import json

import pytest

from grpo_env.environments.math import MathEnv
from grpo_env.environments.math.data import load_math_jsonl
from grpo_env.tasks import TaskFileError


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_both_forms_load_with_their_final_answers(tmp_path):
    path = _write(
        tmp_path / "mixed.jsonl",
        [
            {"question": "2 + 2?", "answer": "Two and two.\n#### 4"},
            {"problem": "Half of 1?", "solution": "It is $\\boxed{\\frac{1}{2}}$.", "level": 1},
            {"id": "p3", "problem": "6 x 7?", "answer": 42, "solution": "\\boxed{41}"},
            "",
            {"problem": "Thousand?", "answer": "1,000", "type": "Prealgebra"},
        ],
    )
    tasks = load_math_jsonl(path)
    assert [t.answer for t in tasks] == ["4", "\\frac{1}{2}", "42", "1,000"]
    assert [t.id for t in tasks] == ["mixed-1", "mixed-2", "p3", "mixed-5"]
    assert tasks[0].metadata["format"] == "gsm8k"
    assert tasks[0].metadata["solution"].startswith("Two and two.")
    assert tasks[1].metadata == {
        "level": 1,
        "format": "math",
        "solution": tasks[1].metadata["solution"],
    }
    assert tasks[3].metadata["type"] == "Prealgebra"


def test_math_env_reads_a_path(tmp_path):
    path = _write(tmp_path / "gsm.jsonl", [{"question": "3 * 3?", "answer": "#### 9"}])
    env = MathEnv(path=path)
    env.reset(seed=0)
    _, reward, _, _, _ = env.step("3 * 3 = 9.\n#### 9")
    assert reward == 1.0


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ({"question": "2 + 2?", "answer": "It is 4."}, "answer", "#### <final answer>"),
        ({"question": "2 + 2?"}, "answer", "missing"),
        ({"question": ["2 + 2?"], "answer": "#### 4"}, "question", "expected a string"),
        ({"question": "  ", "answer": "#### 4"}, "question", "is empty"),
        ({"problem": "Half?", "solution": "It is one half."}, "solution", "\\boxed"),
        ({"problem": "Half?"}, "answer", "missing"),
        ({"prompt": "Half?", "answer": "1/2"}, "problem", "'question'"),
        ({"id": "", "problem": "Half?", "answer": "1/2"}, "id", "non-empty"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, row, field, problem):
    good = {"question": "1 + 1?", "answer": "#### 2"}
    path = _write(tmp_path / "bad.jsonl", [good, row])
    with pytest.raises(TaskFileError) as caught:
        load_math_jsonl(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (str(path), 2, field)
    assert problem in error.problem
    assert f"{path}:2" in str(error)


def test_bad_json_and_duplicate_ids(tmp_path):
    path = _write(tmp_path / "broken.jsonl", ['{"question": "1?", "answer": "#### 1"}', "{oops"])
    with pytest.raises(TaskFileError, match=r"broken.jsonl:2: not valid JSON"):
        load_math_jsonl(path)
    dup = {"id": "a", "problem": "1?", "answer": "1"}
    path = _write(tmp_path / "dup.jsonl", [dup, dup])
    with pytest.raises(TaskFileError, match=r"dup.jsonl:2: field 'id': 'a' already used on line 1"):
        load_math_jsonl(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="task file not found"):
        MathEnv(path=tmp_path / "nope.jsonl")
