"""Code dataset loaders: the shipped samples load and their reference solutions pass; a bad row
is an error that names the file, the line and the field."""

from __future__ import annotations

import json

import pytest

from grpo_env.environments.code_datasets import PARSERS, code_dataset, sample
from grpo_env.environments.code_unittest import CodeUnittestEnv
from grpo_env.sandbox import IOSuite, TestSuite
from grpo_env.sandbox.testing import docker_sandbox_or_skip
from grpo_env.tasks import TaskFileError

SHAPES = ("humaneval", "apps", "codecontests", "livecodebench")


@pytest.fixture(scope="module")
def docker_sandbox():
    sandbox = docker_sandbox_or_skip(concurrency=2)
    yield sandbox
    sandbox.close()


@pytest.mark.parametrize("shape", SHAPES)
def test_samples_load_with_references(shape):
    tasks = list(sample(shape))
    assert len(tasks) >= 2
    for task in tasks:
        assert task.answer, task.id
        if task.tests.get("kind") == "stdio":
            IOSuite.model_validate(task.tests)
        else:
            TestSuite.model_validate(task.tests)


def test_sample_kinds():
    apps = {t.id: t for t in sample("apps")}
    assert apps["apps-sum"].metadata["format"] == "stdio"
    assert apps["apps-reverse-lines"].tests["cases"][0]["input"] == "3\na\nb\nc\n"
    assert apps["taco-call"].metadata["format"] == "calls"
    lcb = {t.id: t for t in sample("livecodebench")}
    assert lcb["lcb-functional-twosum"].metadata["format"] == "calls"
    cc = next(iter(sample("codecontests")))
    assert len(cc.tests["cases"]) == 3  # public + private
    assert cc.tests["compare"] == "float"
    assert code_dataset(sample("codecontests").path, "codecontests", "exact")[0].tests[
        "compare"
    ] == ("exact")


@pytest.mark.docker
@pytest.mark.parametrize("shape", SHAPES)
def test_sample_references_pass_and_wrong_programs_fail(docker_sandbox, shape):
    env = CodeUnittestEnv(sample(shape), sandbox=docker_sandbox)
    for task in sample(shape):
        good = env.verify(task, env.gold_completion(task))
        assert good.score == 1.0, (task.id, good.details)
        bad = env.verify(task, "```python\nprint(0)\ndef f(*a):\n    return 0\n```")
        assert bad.score < 1.0, (task.id, bad.details)


@pytest.mark.parametrize(
    ("shape", "row", "field"),
    [
        ("apps", {"question": "q", "input_output": "{oops"}, "input_output"),
        (
            "apps",
            {"question": "q", "input_output": {"inputs": ["1"], "outputs": []}},
            "input_output",
        ),
        ("apps", {"input_output": {"inputs": ["1"], "outputs": ["1"]}}, "question"),
        (
            "apps",
            {"question": "q", "input_output": {"inputs": [1], "outputs": ["1"]}},
            "input_output",
        ),
        ("apps", {"question": "q", "input_output": {"inputs": [], "outputs": []}}, "input_output"),
        ("codecontests", {"description": "d", "public_tests": {"input": ["1"]}}, "public_tests"),
        ("codecontests", {"description": "d"}, "public_tests"),
        (
            "livecodebench",
            {"question_content": "q", "public_test_cases": "[1]"},
            "public_test_cases",
        ),
        (
            "livecodebench",
            {
                "question_content": "q",
                "public_test_cases": json.dumps(
                    [{"input": "1", "output": "1", "testtype": "functional"}]
                ),
            },
            "metadata",
        ),
        ("humaneval", {"prompt": "p", "test": "x = 1", "entry_point": "f"}, "test"),
        (
            "humaneval",
            {"prompt": "p", "test": "def check(c): assert c()", "entry_point": "1f"},
            "entry_point",
        ),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, shape, row, field):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(TaskFileError) as err:
        list(code_dataset(path, shape))
    assert (err.value.path, err.value.line, err.value.field) == (str(path), 1, field), err.value
    assert str(path) in str(err.value) and ":1:" in str(err.value)


def test_unknown_shape():
    with pytest.raises(ValueError, match="unknown dataset shape"):
        code_dataset("x.jsonl", "kaggle")
    assert set(SHAPES) <= set(PARSERS)
