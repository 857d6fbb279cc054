"""math-python: the python tool in the Docker sandbox, and episodes scored by the math checker."""

from __future__ import annotations

import json
import threading

import pytest

import grpo_env
from grpo_env import Task
from grpo_env.environments.math_python import MathPythonEnv
from grpo_env.environments.python_tool import PythonSandboxTool
from grpo_env.probes import failed_probes, run_probes
from grpo_env.sandbox import DockerSandbox
from grpo_env.sandbox.testing import docker_sandbox_or_skip

TASK = Task(id="apples", prompt="Tom has 17 boxes of 23 apples. How many apples?", answer="391")


def call(code: str) -> str:
    return (
        f"<tool_call>\n{json.dumps({'name': 'python', 'arguments': {'code': code}})}\n</tool_call>"
    )


class CountingSandbox:
    """The real sandbox; each run waits until another is in flight (proves concurrency)."""

    name = "docker"

    def __init__(self, inner):
        self.inner = inner
        self.barrier = threading.Barrier(2, timeout=60)

    def run(self, request):
        self.barrier.wait()
        return self.inner.run(request)

    def run_many(self, requests):
        return self.inner.run_many(requests)

    def check(self):
        self.inner.check()

    def close(self):
        pass


@pytest.fixture(scope="module")
def docker_sandbox():
    sandbox = docker_sandbox_or_skip(concurrency=2)
    yield sandbox
    sandbox.close()


@pytest.fixture
def env(docker_sandbox):
    env = MathPythonEnv([TASK], sandbox=docker_sandbox, timeout_s=2.0, max_output_chars=500)
    yield env
    env.close()


def play(env, turns):
    """A scripted episode through the multi-turn methods: (messages, state, replies)."""
    state = env.initial_state(TASK)
    messages = TASK.messages(env.system_prompt)
    replies = []
    for turn in turns:
        messages.append({"role": "assistant", "content": turn})
        reply = env.env_response(TASK, messages, state)
        replies.append(reply)
        if reply is None:
            break
        messages += reply
    return messages, state, replies


# ----- the python tool in Docker ----------------------------------------------------------


@pytest.mark.docker
def test_python_tool_returns_stdout_and_stderr(docker_sandbox):
    tool = PythonSandboxTool(docker_sandbox, timeout_s=2.0)
    out = tool.python("import sys\nprint(17 * 23)\nprint('careful', file=sys.stderr)")
    assert out == "stdout:\n391\nstderr:\ncareful"
    assert "ZeroDivisionError" in tool.python("1 / 0") and "(exit code 1)" in tool.python("1/0")
    assert tool.python("x = 1") == "(no output: print() the values you want to see)"


@pytest.mark.docker
def test_python_tool_timeout_output_cap_and_no_network(docker_sandbox):
    tool = PythonSandboxTool(docker_sandbox, timeout_s=1.0, max_output_chars=400)
    assert "ran past the 1 s limit" in tool.python("print('start', flush=True)\nwhile True: pass")
    flood = tool.python("for i in range(10**6): print(i)")
    assert len(flood) < 500 and "characters cut" in flood and flood.startswith("stdout:\n0\n1\n")
    offline = tool.python(
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=1)\n"
        "    print('ONLINE')\nexcept OSError as err:\n    print('offline', err)"
    )
    assert "offline" in offline and "ONLINE" not in offline


@pytest.mark.docker
def test_several_python_calls_in_one_turn_run_concurrently(docker_sandbox):
    counting = CountingSandbox(docker_sandbox)
    env = MathPythonEnv([TASK], sandbox=counting, timeout_s=5.0)
    turn = call("print(17 * 23)") + call("print(23 * 17)")
    _, state, replies = play(env, [turn])
    assert [m["content"] for m in replies[0]] == ["stdout:\n391", "stdout:\n391"]
    assert not counting.barrier.broken and state == {"tool_calls": 2, "tool_errors": 0}


# ----- episodes ---------------------------------------------------------------------------


@pytest.mark.docker
def test_a_tool_call_then_a_boxed_answer_scores(env):
    messages, state, replies = play(
        env, ["Let me compute.\n" + call("print(17 * 23)"), "So there are \\boxed{391} apples."]
    )
    assert replies[0] == [{"role": "tool", "content": "stdout:\n391"}] and replies[1] is None
    result = env.verify_episode(TASK, messages, state)
    assert result.score == 1.0 and result.status == "ok"
    assert state == {"tool_calls": 1, "tool_errors": 0}


@pytest.mark.docker
def test_the_gold_episode_scores(env):
    turns = env.gold_turns(TASK)
    messages, state, _ = play(env, turns)
    assert len(turns) == 2 and env.verify_episode(TASK, messages, state).score == 1.0


@pytest.mark.docker
@pytest.mark.parametrize(
    "final",
    [
        "Tom has 17 boxes of 23 apples. How many apples?",  # the question restated
        "\\boxed{17 \\cdot 23}",  # the question's expression, not a value
        "stdout:\n391",  # the tool's output dumped, no answer given
        "stdout:\n17\n391\n\\boxed{17} or \\boxed{391}",  # two answers
        call("print('\\\\boxed{391}')"),  # an answer inside a tool call, never run
    ],
)
def test_answers_that_are_not_answers_score_zero(env, final):
    # The tool printed the right value, boxed: only the model's last message counts.
    messages, state, _ = play(env, [call("print('\\\\boxed{391}')"), final])
    assert "\\boxed{391}" in messages[3]["content"]
    result = env.verify_episode(TASK, messages, state)
    assert result.score == 0.0 and not result.is_infra_error


def test_a_sandbox_that_is_down_is_infra_error_not_zero():
    sandbox = DockerSandbox(image="grpo-env-no-such-image:0", concurrency=1)
    env = MathPythonEnv([TASK], sandbox=sandbox)
    try:
        messages, state, replies = play(env, [call("print(1)"), "\\boxed{391}"])
        assert replies == [None] and "sandbox error" in state["infra_error"]
        result = env.verify_episode(TASK, messages, state)
        assert result.is_infra_error and result.score == 0.0
    finally:
        sandbox.close()


def test_probes_score_zero_and_the_env_is_registered():
    env = grpo_env.make("math-python").unwrapped  # no Docker needed until a tool runs
    try:
        assert env.max_turns == 4 and [s["function"]["name"] for s in env.tool_schemas()] == [
            "python"
        ]
        env.reset(seed=0)
        outcomes = run_probes(env, env.task)
        assert outcomes and not failed_probes(outcomes)
        assert env.verify(env.task, env.gold_completion(env.task)).score == 1.0
    finally:
        env.close()


def test_reasoning_gym_tasks():
    env = MathPythonEnv(dataset="chain_sum", size=5)
    task = env.tasks[0]
    assert env.verify(task, f"\\boxed{{{task.answer}}}").score == 1.0
    with pytest.raises(ValueError):
        MathPythonEnv(size=5)


def test_gymnasium_checker_passes():
    from gymnasium.utils.env_checker import check_env

    env = MathPythonEnv([TASK])
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()
