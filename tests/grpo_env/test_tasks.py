"""Task sources: JSONL error messages, in-memory lists, reasoning-gym splits."""

from __future__ import annotations

import json

import pytest

from grpo_env import (
    JsonlTaskSource,
    ListTaskSource,
    ReasoningGymSource,
    Task,
    TaskFieldError,
    TaskFileError,
)


def write_lines(tmp_path, lines: list[str], name: str = "tasks.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_reads_every_line_with_default_ids(tmp_path):
    path = write_lines(
        tmp_path,
        [
            json.dumps({"prompt": "What is 2+2?", "answer": "4"}),
            "",
            json.dumps({"id": "custom", "prompt": "Hi", "metadata": {"level": 3}}),
        ],
    )
    source = JsonlTaskSource(path)
    assert len(source) == 2
    assert source[0].id == "tasks-1" and source[0].answer == "4"
    assert source.get("custom").metadata == {"level": 3}


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ("{not json", None, "not valid JSON"),
        ("[1, 2]", None, "expected a JSON object, got list"),
        (json.dumps({"answer": "4"}), "prompt", "Field required"),
        (json.dumps({"prompt": ""}), "prompt", "prompt is empty"),
        (json.dumps({"prompt": 42}), "prompt", "valid"),
        (json.dumps({"prompt": "q", "colour": "red"}), "colour", "Extra inputs"),
    ],
)
def test_jsonl_bad_line_names_file_line_and_field(tmp_path, line, field, problem):
    good = json.dumps({"prompt": "ok"})
    path = write_lines(tmp_path, [good, good, line, good])
    with pytest.raises(TaskFileError) as caught:
        JsonlTaskSource(path)
    err = caught.value
    assert err.line == 3 and err.path == str(path) and err.field == field
    assert problem in err.problem
    assert str(err).startswith(f"{path}:3:")


def test_jsonl_duplicate_id_names_both_lines(tmp_path):
    path = write_lines(
        tmp_path,
        [json.dumps({"id": "a", "prompt": "x"}), json.dumps({"id": "a", "prompt": "y"})],
    )
    with pytest.raises(TaskFileError, match=r":2: field 'id': 'a' already used on line 1"):
        JsonlTaskSource(path)


def test_jsonl_custom_parser_errors_are_located(tmp_path):
    def gsm8k(row, default_id):
        answer = row["answer"]
        if "####" not in answer:
            raise TaskFieldError("answer", "must end with '#### <number>'")
        return Task(id=default_id, prompt=row["question"], answer=answer.split("####")[-1].strip())

    path = write_lines(
        tmp_path,
        [
            json.dumps({"question": "1+1?", "answer": "1+1=2 #### 2"}),
            json.dumps({"question": "2+2?", "answer": "4"}),
        ],
    )
    with pytest.raises(TaskFileError, match=r":2: field 'answer': must end with"):
        JsonlTaskSource(path, parser=gsm8k)
    path = write_lines(tmp_path, [json.dumps({"answer": "#### 2"})], name="b.jsonl")
    with pytest.raises(TaskFileError, match=r"b.jsonl:1: field 'question': missing"):
        JsonlTaskSource(path, parser=gsm8k)


def test_jsonl_missing_or_empty_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl"):
        JsonlTaskSource(tmp_path / "nope.jsonl")
    with pytest.raises(TaskFileError, match="no tasks"):
        JsonlTaskSource(write_lines(tmp_path, ["", "  "]))


def test_list_source_accepts_tasks_and_dicts():
    source = ListTaskSource([Task(id="a", prompt="x"), {"prompt": "y"}], name="mine")
    assert [t.id for t in source] == ["a", "mine-1"]
    with pytest.raises(ValueError, match=r"mine\[0\]: field 'prompt'"):
        ListTaskSource([{"answer": 1}], name="mine")
    with pytest.raises(ValueError, match="appears twice"):
        ListTaskSource([Task(id="a", prompt="x"), Task(id="a", prompt="y")])


CHAIN_SUM = {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}


def test_reasoning_gym_is_deterministic_per_seed():
    a = ReasoningGymSource("chain_sum", split="train", size=50, seed=3, **CHAIN_SUM)
    b = ReasoningGymSource("chain_sum", split="train", size=50, seed=3, **CHAIN_SUM)
    c = ReasoningGymSource("chain_sum", split="train", size=50, seed=4, **CHAIN_SUM)
    assert [t.prompt for t in a] == [t.prompt for t in b]
    assert [t.prompt for t in a] != [t.prompt for t in c]
    assert a[49].answer == str(eval(a[49].metadata["entry_metadata"]["expression"]))


def test_reasoning_gym_held_out_split_never_overlaps_train():
    train = ReasoningGymSource("chain_sum", split="train", size=3000, seed=0, **CHAIN_SUM)
    test = ReasoningGymSource("chain_sum", split="test", size=200, seed=0, **CHAIN_SUM)
    train_questions = {t.prompt for t in train}
    test_questions = [t.prompt for t in test]
    assert len(test_questions) == len(set(test_questions)) == 200
    assert not train_questions & set(test_questions)
    # The partition is by content, so another seed's train split cannot leak either.
    other_train = ReasoningGymSource("chain_sum", split="train", size=3000, seed=9, **CHAIN_SUM)
    assert not {t.prompt for t in other_train} & set(test_questions)


def test_reasoning_gym_uses_its_own_scorer():
    source = ReasoningGymSource("chain_sum", split="test", size=5, seed=0, **CHAIN_SUM)
    task = source[0]
    assert source.score_answer(task, task.answer) == 1.0
    assert source.score_answer(task, "not a number") == 0.0


def test_reasoning_gym_errors():
    with pytest.raises(ValueError, match="no_such_dataset"):
        ReasoningGymSource("no_such_dataset")
    with pytest.raises(ValueError, match="split"):
        ReasoningGymSource("chain_sum", split="validation")  # type: ignore[arg-type]
    tiny = ReasoningGymSource(
        "chain_sum", split="test", size=500, min_terms=2, max_terms=2, min_digits=1, max_digits=1
    )
    with pytest.raises(ValueError, match="too small"):
        tiny[499]
    with pytest.raises(IndexError):
        tiny[500]
