"""code-feedback: attempts run in the sandbox, failing tests come back, the final one is scored."""

from __future__ import annotations

import pytest

import grpo_env
from grpo_env import Task
from grpo_env.environments.code_feedback import CodeFeedbackEnv
from grpo_env.sandbox import DockerSandbox, TestCase, TestSuite
from grpo_env.sandbox.testing import docker_sandbox_or_skip

TASK = Task(
    id="add",
    prompt="Write a Python function `add(a, b)` that returns a + b.",
    answer="def add(a, b):\n    return a + b\n",
    tests=TestSuite(
        cases=[
            TestCase(name="add(0, 0)", code="assert add(0, 0) == 0"),
            TestCase(name="add(2, 3)", code="assert add(2, 3) == 5"),
            TestCase(name="add(-1, 1)", code="assert add(-1, 1) == 0"),
            TestCase(name="add(4, 4)", code="assert add(4, 4) == 8"),
        ],
        entry_points=["add"],
    ).model_dump(),
)
WRONG = "```python\ndef add(a, b):\n    return a * b\n```"  # passes add(0, 0) only
RIGHT = f"```python\n{TASK.answer}```"


@pytest.fixture(scope="module")
def docker_sandbox():
    sandbox = docker_sandbox_or_skip(concurrency=2)
    yield sandbox
    sandbox.close()


def make(sandbox, **kwargs) -> CodeFeedbackEnv:
    return CodeFeedbackEnv([TASK], sandbox=sandbox, **kwargs)


def play(env, turns):
    state = env.initial_state(TASK)
    messages = TASK.messages(env.system_prompt)
    replies, rewards = [], []
    for turn in turns:
        messages.append({"role": "assistant", "content": turn})
        reply = env.env_response(TASK, messages, state)
        replies.append(reply)
        rewards.append(env.turn_reward(TASK, messages, state))
        if reply is None:
            break
        messages.append({"role": "user", "content": reply})
    return messages, state, replies, rewards


@pytest.mark.docker
def test_a_failing_attempt_gets_the_failing_tests_then_the_fix_scores_one(docker_sandbox):
    env = make(docker_sandbox)
    messages, state, replies, rewards = play(env, [WRONG, RIGHT])
    feedback = replies[0]
    assert feedback.startswith("Your code passed 1 of 4 tests.")
    for name in ("add(2, 3)", "add(-1, 1)", "add(4, 4)"):
        assert f"- {name}: failed" in feedback
    assert "- add(0, 0)" not in feedback and "```python" in feedback
    assert replies[1] is None and rewards == [0.25, 1.0]
    result = env.verify_episode(TASK, messages, state)
    assert result.score == 1.0 and result.status == "ok" and result.details["attempts"] == 2
    # the final verify reused the attempt's result: two runs for two attempts
    assert state["attempts"] == 2 and state["sandbox_runs"] == 2


@pytest.mark.docker
def test_the_final_attempt_is_scored_and_extra_turns_can_cost(docker_sandbox):
    env = make(docker_sandbox, max_turns=3)
    messages, state, _, _ = play(env, [WRONG, WRONG])
    assert env.verify_episode(TASK, messages, state).score == 0.25

    penalised = make(docker_sandbox, turn_penalty=0.5)
    messages, state, _, _ = play(penalised, ["no code yet", WRONG, RIGHT])
    result = penalised.verify_episode(TASK, messages, state)
    assert result.score == 0.25 and result.components["tests_passed"] == 1.0
    messages, state, _, _ = play(penalised, [RIGHT])
    assert penalised.verify_episode(TASK, messages, state).score == 1.0


@pytest.mark.docker
def test_feedback_for_no_code_broken_code_and_count_only(docker_sandbox):
    env = make(docker_sandbox)
    _, _, replies, rewards = play(env, ["I think it is a + b.", "```python\ndef add(a, b:\n```"])
    assert replies[0].startswith("I found no ```python code block") and rewards[0] == 0.0
    assert "passed 0 of 4" in replies[1] and "did not run properly (error)" in replies[1]

    quiet = make(docker_sandbox, feedback="count")
    _, _, replies, _ = play(quiet, [WRONG])
    assert "passed 1 of 4" in replies[0] and "add(2, 3)" not in replies[0]


def test_a_sandbox_that_is_down_ends_the_episode_as_infra_error():
    sandbox = DockerSandbox(image="grpo-env-no-such-image:0", concurrency=1)
    env = make(sandbox)
    try:
        messages, state, replies, rewards = play(env, [RIGHT])
        assert replies == [None] and rewards == [None] and state["infra_error"]
        result = env.verify_episode(TASK, messages, state)
        assert result.is_infra_error and result.score == 0.0
    finally:
        sandbox.close()


def test_registered_with_the_beginner_set_and_a_gold_episode():
    env = grpo_env.make("code-feedback").unwrapped  # no Docker until an attempt runs
    try:
        assert env.max_turns == 3 and env.tasks.name == "beginner:train"
        task = env.tasks[0]
        assert env.gold_turns(task) == [env.gold_completion(task)]
    finally:
        env.close()
    with pytest.raises(ValueError):
        CodeFeedbackEnv([TASK], turn_penalty=1.0)


def test_gymnasium_checker_passes():
    from gymnasium.utils.env_checker import check_env

    env = CodeFeedbackEnv([TASK], sandbox=DockerSandbox(image="grpo-env-no-such-image:0"))
    try:
        check_env(env, skip_render_check=True)  # random text: no code block, no sandbox run
    finally:
        env.close()
