"""The seeded beginner code set, and which code tasks a run picks by default."""

from __future__ import annotations

import pytest

from grpo_env.environments.code_beginner import beginner_task, beginner_tasks
from grpo_env.environments.code_unittest import CodeUnittestEnv
from grpo_env.sandbox.testing import docker_sandbox_or_skip
from grpo_env.training.default_tasks import choose_tasks


def test_seeded_graded_and_held_out():
    train, test = list(beginner_tasks("train")), list(beginner_tasks("test"))
    assert (len(train), len(test)) == (600, 120)
    assert beginner_task(7) == beginner_task(7)  # same seed, same task
    assert {t.metadata["level"] for t in train} == {1, 2, 3}
    assert {t.metadata["kind"] for t in train} == {"function", "program"}
    assert not {t.prompt for t in train} & {t.prompt for t in test}
    assert not {t.id for t in train} & {t.id for t in test}


def test_env_task_set_option():
    env = CodeUnittestEnv(task_set="beginner", split="test")
    assert env.tasks.name == "beginner:test"
    with pytest.raises(ValueError, match="train' and 'test"):
        CodeUnittestEnv(task_set="beginner", split="all")


@pytest.mark.parametrize(
    ("env", "kwargs", "model", "task_set", "says"),
    [
        ("code-unittest", {}, "smollm2-135m-instruct", "beginner", "beginner set"),
        ("code-unittest-v0", {}, "smollm2-135m-instruct", "beginner", "beginner set"),
        ("code-unittest", {}, "/models/qwen", None, "HumanEval"),
        ("code-unittest", {"split": "test"}, "smollm2-135m-instruct", None, "as configured"),
        ("code-unittest", {"task_set": "humaneval"}, "smollm2-135m-instruct", "humaneval", ""),
        ("math", {}, "smollm2-135m-instruct", None, None),
    ],
)
def test_choose_tasks(env, kwargs, model, task_set, says):
    chosen, note = choose_tasks(env, kwargs, model)
    assert chosen.get("task_set") == task_set
    if says is None:
        assert note == ""
    else:
        assert says in note


@pytest.mark.docker
def test_references_pass_and_junk_fails():
    sandbox = docker_sandbox_or_skip(concurrency=2)
    try:
        for split in ("train", "test"):
            env = CodeUnittestEnv(beginner_tasks(split), sandbox=sandbox)
            distinct = {t.prompt: t for t in env.tasks}.values()
            for task in distinct:
                assert env.verify(task, env.gold_completion(task)).score == 1.0, task.id
                junk = "```python\ndef f(*a):\n    return 1\nprint(1)\n```"
                assert env.verify(task, junk).score < 1.0, task.id
    finally:
        sandbox.close()


def test_the_beginner_set_is_evaluated_on_its_held_out_split():
    from grpo_env.training.default_tasks import eval_env_kwargs

    assert eval_env_kwargs({"task_set": "beginner"}, {}) == {
        "task_set": "beginner",
        "split": "test",
    }
    assert eval_env_kwargs({"task_set": "beginner"}, {"split": "train"})["split"] == "train"
    assert eval_env_kwargs({"split": "train"}, {}) == {"split": "train"}
