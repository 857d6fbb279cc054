"""One JSONL reader for task files and append-only logs: file and line for every problem,
a torn last line dropped with a warning (and removed before appending), a torn line
anywhere else an error naming it."""

from __future__ import annotations

import json
import logging

import pytest

from grpo_env.environments.code_tasks import mbpp_tasks
from grpo_env.environments.math.data import load_math_jsonl
from grpo_env.evaluation.compare import read_results
from grpo_env.evaluation.evaluate import SampleRecord, read_records
from grpo_env.jsonl import JsonlError, read_jsonl, repair_torn_tail
from grpo_env.tasks import TaskFileError
from grpo_env.training.run_log import RunLog

MATH_ROW = {"question": "What is 1 + 1?", "answer": "It is 2.\n#### 2"}
CODE_ROW = {"prompt": "Add two numbers.", "tests": ["assert add(1, 2) == 3"]}


def latin1_file(path, row):
    """Line 2 holds 'é' in Latin-1 (0xe9), as an editor on another platform may save it."""
    good = json.dumps(row)
    bad = json.dumps({**row, "id": "x"}, ensure_ascii=False).replace('"x"', '"caf\u00e9"')
    path.write_bytes(good.encode() + b"\n" + bad.encode("latin-1") + b"\n")
    return path


@pytest.mark.parametrize(
    ("load", "row"), [(load_math_jsonl, MATH_ROW), (mbpp_tasks, CODE_ROW)], ids=["math", "code"]
)
def test_a_task_file_that_is_not_utf8_names_file_line_and_byte(tmp_path, load, row):
    path = latin1_file(tmp_path / "tasks.jsonl", row)
    with pytest.raises(TaskFileError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: not UTF-8 text (byte 0xe9 at column")
    assert caught.value.line == 2


def test_a_task_file_never_drops_a_cut_last_line(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(MATH_ROW) + "\n" + json.dumps(MATH_ROW)[:20])
    with pytest.raises(TaskFileError, match=r"tasks.jsonl:2: not valid JSON"):
        load_math_jsonl(path)


def sample(i: int) -> str:
    record = SampleRecord(
        env="toy",
        model="m",
        task_id=f"t{i}",
        sample=0,
        task={"id": f"t{i}", "prompt": "p"},
        prompt=[{"role": "user", "content": "p"}],
        completion="c",
        tokens=1,
        truncated=False,
        reward=1.0,
        status="ok",
        components={},
        answer="c",
        details={"a": {"b": 1}},
        temperature=0.0,
        max_new_tokens=4,
    )
    return record.model_dump_json()


# A crash can cut a line anywhere: inside a string, or just after an inner "}".
CUTS = {"inside": lambda line: line[:30], "after-brace": lambda line: line[: line.index("}") + 1]}


@pytest.mark.parametrize("cut", sorted(CUTS))
def test_a_torn_last_sample_is_dropped_with_a_warning(tmp_path, caplog, cut):
    path = tmp_path / "samples.jsonl"
    path.write_text(sample(0) + "\n" + sample(1) + "\n" + CUTS[cut](sample(2)))
    with caplog.at_level(logging.WARNING):
        records = read_records(path)
    assert [r.task_id for r in records] == ["t0", "t1"]
    assert any(f"{path}:3: the last line is incomplete" in r.getMessage() for r in caplog.records)


def test_a_torn_line_before_the_last_is_an_error_naming_it(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(sample(0)[:40] + "\n" + sample(1) + "\n")
    with pytest.raises(ValueError, match=r"samples.jsonl:1: not valid JSON"):
        read_records(path)


@pytest.mark.parametrize("end", [b"\n", b""], ids=["newline", "last-line"])
def test_a_samples_file_that_is_not_utf8_names_file_and_line(tmp_path, end):
    path = tmp_path / "samples.jsonl"
    latin1 = sample(1).encode().replace(b'"c"', b'"\xe9"')
    path.write_bytes(sample(0).encode() + b"\n" + latin1 + end)
    with pytest.raises(JsonlError, match=r"samples.jsonl:2: not UTF-8 text \(byte 0xe9"):
        read_records(path)


def test_a_last_line_cut_inside_a_character_is_torn(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_bytes(sample(0).encode() + b"\n" + '{"completion": "caf\u00e9'.encode()[:-1])
    assert len(read_records(path)) == 1


def test_a_complete_last_line_without_newline_is_kept(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text(sample(0) + "\n" + sample(1))
    assert len(read_records(path)) == 2


def test_repair_removes_the_torn_tail_so_appends_start_on_their_own_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": {"b"')
    repair_torn_tail(path, read_jsonl(path, append_only=True))
    with path.open("a") as handle:
        handle.write('{"a": 3}\n')
    assert [row for _, row in read_jsonl(path).rows] == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_compare_results_with_a_torn_tail_are_read_and_repaired(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"agent": "grpo", "se')
    assert read_results(tmp_path) == []
    assert (tmp_path / "results.jsonl").read_text() == ""


def test_resuming_a_run_rewrites_a_torn_metrics_line(tmp_path, caplog):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"step": 1, "r": 0.5}\n{"step": 2, "r": 0.7}\n{"step": 3, "r"')
    log = RunLog(tmp_path, tensorboard=False)
    with caplog.at_level(logging.WARNING):
        log.truncate_after(2)
    log.metrics(3, {"r": 0.9})
    assert [row["step"] for _, row in read_jsonl(metrics).rows] == [1, 2, 3]
    assert "incomplete" in caplog.text
