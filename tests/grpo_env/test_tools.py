"""Tools: schemas from signatures, tool-call parsing, every bad call a tool message, ToolEnv."""

from __future__ import annotations

import json
import threading
from typing import Literal, Optional

import pytest

from grpo_env import Task, VerifyResult
from grpo_env.testing import char_tokenizer
from grpo_env.tools import (
    Tool,
    ToolCall,
    ToolEnv,
    ToolInfraError,
    cap_output,
    parse_tool_calls,
    prepare_tool_chat,
    run_tool_call,
    strip_tool_calls,
    supports_tools,
    tool_schema,
    tools_system_prompt,
)


def multiply(a: int, b: int = 2) -> int:
    """Multiply two integers.

    Args:
        a: the first factor
        b: the second factor
    """
    return a * b


def search(
    query: str,
    tags: list[str],
    mode: Literal["fast", "exact"] = "fast",
    limit: Optional[int] = None,  # noqa: UP045 (Optional is what the test is about)
    lang: str | None = "en",
) -> str:
    """Search the notes.

    Args:
        query: what to look for
        tags: tags every hit must have
        mode: how to match
        limit: most hits returned
        lang: language of the notes
    """
    return f"{query}|{tags}|{mode}|{limit}|{lang}"


def explode(reason: str) -> str:
    """Always fails.

    Args:
        reason: the message of the error
    """
    raise ValueError(reason)


def down() -> str:
    """A tool whose infrastructure is gone."""
    raise ToolInfraError("engine not reachable")


def call(name: str, **arguments) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


TOOLS = {t.name: t for t in map(Tool, (multiply, search, explode, down))}


def run(text: str):
    (parsed,) = parse_tool_calls(text)
    return run_tool_call(parsed, TOOLS)


# ----- schemas ----------------------------------------------------------------------------


def test_schema_comes_from_the_signature_hints_and_docstring():
    schema = tool_schema(search)
    function = schema["function"]
    assert schema["type"] == "function" and function["name"] == "search"
    assert function["description"] == "Search the notes."
    props = function["parameters"]["properties"]
    assert props["query"] == {"type": "string", "description": "what to look for"}
    assert props["tags"]["type"] == "array" and props["tags"]["items"] == {"type": "string"}
    assert props["mode"]["enum"] == ["fast", "exact"] and props["mode"]["default"] == "fast"
    assert props["limit"]["type"] == "integer" and props["limit"]["nullable"] is True
    assert props["lang"]["nullable"] is True and props["lang"]["default"] == "en"
    assert function["parameters"]["required"] == ["query", "tags"]
    assert "return" not in function


def test_schema_name_override_and_bad_functions():
    assert tool_schema(multiply, name="times")["function"]["name"] == "times"

    def undocumented(x: int) -> int:
        """No Args section."""
        return x

    def unhinted(x):
        """Unhinted.

        Args:
            x: something
        """

    for fn in (undocumented, unhinted):
        with pytest.raises(Exception, match="x"):
            Tool(fn)

    def variadic(*xs: int) -> int:
        """Sum.

        Args:
            xs: numbers
        """
        return sum(xs)

    with pytest.raises(TypeError):
        Tool(variadic)


# ----- parsing ----------------------------------------------------------------------------


def test_hermes_calls_are_parsed_in_order():
    text = f"Let me compute.\n{call('multiply', a=3, b=4)}\nand\n{call('search', query='x')}"
    calls = parse_tool_calls(text)
    assert [(c.name, c.arguments) for c in calls] == [
        ("multiply", {"a": 3, "b": 4}),
        ("search", {"query": "x"}),
    ]
    assert all(c.error is None for c in calls)
    assert strip_tool_calls(text).split() == ["Let", "me", "compute.", "and"]


def test_no_call_and_the_plain_fallbacks():
    assert parse_tool_calls("The answer is \\boxed{12}.") == []
    assert parse_tool_calls('A dict {"a": 1} is not a call.') == []
    bare = 'I will call {"name": "multiply", "arguments": {"a": 5}} now'
    assert parse_tool_calls(bare) == [
        ToolCall(
            name="multiply", arguments={"a": 5}, raw='{"name": "multiply", "arguments": {"a": 5}}'
        )
    ]
    assert strip_tool_calls(bare) == "I will call  now"
    fenced = '```json\n{"name": "multiply", "parameters": {"a": 6}}\n```'
    assert [(c.name, c.arguments) for c in parse_tool_calls(fenced)] == [("multiply", {"a": 6})]
    # OpenAI style: arguments as a JSON string
    as_string = '<tool_call>{"name": "multiply", "arguments": "{\\"a\\": 7}"}</tool_call>'
    assert parse_tool_calls(as_string)[0].arguments == {"a": 7}


def test_malformed_calls_are_calls_with_an_error():
    cases = {
        "<tool_call>{not json}</tool_call>": "not valid JSON",
        '<tool_call>{"name": "multiply", "arguments": {"a": 1}': "not valid JSON",  # cut off
        "<tool_call>[1, 2]</tool_call>": "JSON object",
        '<tool_call>{"arguments": {}}</tool_call>': "no 'name'",
        '<tool_call>{"name": "multiply", "arguments": [1]}</tool_call>': "'arguments' must be",
        '<tool_call>{"name": "multiply", "arguments": "{bad"}</tool_call>': "not valid JSON",
    }
    for text, reason in cases.items():
        (parsed,) = parse_tool_calls(text)
        assert parsed.error is not None and reason in parsed.error, text


# ----- running: every error path is a tool message --------------------------------------


def test_a_good_call_runs_and_arguments_are_coerced():
    assert run(call("multiply", a=3, b=4)).content == "12"
    assert run(call("multiply", a="5")).content == "10"  # "5" -> 5, default b
    result = run(call("search", query="q", tags=["t"], mode="exact", limit=3))
    assert result.ok and result.content == "q|['t']|exact|3|en"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<tool_call>{oops}</tool_call>", "could not read the tool call"),
        (call("divide", a=1), "unknown tool 'divide'; available tools: down, explode, multiply"),
        (call("multiply", b=2), "missing required argument(s) 'a'"),
        (call("multiply", a=1, c=2), "unexpected argument(s) 'c' (it takes a, b)"),
        (call("multiply", a="three"), "argument 'a': Input should be a valid integer"),
        (call("multiply", a=1.5), "argument 'a'"),
        (call("search", query="q", tags="t"), "argument 'tags'"),
        (call("search", query="q", tags=[], mode="slow"), "argument 'mode'"),
        (call("explode", reason="no luck"), "explode raised ValueError: no luck"),
    ],
)
def test_every_bad_call_is_a_tool_message(text, expected):
    result = run(text)
    assert not result.ok and result.infra_error is None
    assert result.content.startswith("Error: ") and expected in result.content


def test_an_infra_failure_is_flagged_not_blamed_on_the_model():
    result = run(call("down"))
    assert not result.ok and result.infra_error == "down: engine not reachable"
    assert "unavailable" in result.content


def test_output_is_capped_keeping_both_ends():
    text = "".join(f"{i:05d}\n" for i in range(5000))
    capped = cap_output(text, 600)
    assert len(capped) < 700 and "characters cut" in capped
    assert capped.startswith("00000") and capped.rstrip().endswith("04999")
    assert cap_output("short", 600) == "short"

    def loud() -> str:
        """Prints a lot."""
        return text

    (parsed,) = parse_tool_calls(call("loud"))
    assert len(run_tool_call(parsed, {"loud": Tool(loud)}, max_output_chars=300).content) < 400


# ----- ToolEnv ----------------------------------------------------------------------------

TASK = Task(id="t", prompt="What is 6 * 7?", answer="42")


def exact(task: Task, completion: str) -> VerifyResult:
    return VerifyResult(score=float(completion.strip() == task.answer))


def make_env(tools=(multiply, explode, down), **kwargs) -> ToolEnv:
    return ToolEnv([TASK], tools=list(tools), rubric=exact, **kwargs)


def transcript(*turns: str) -> list[dict[str, str]]:
    messages = TASK.messages()
    for i, turn in enumerate(turns):
        messages.append({"role": "assistant" if i % 2 == 0 else "tool", "content": turn})
    return messages


def test_env_answers_each_call_with_a_tool_message_and_counts():
    env = make_env()
    state = env.initial_state(TASK)
    turn = call("multiply", a=6, b=7) + call("nope") + "<tool_call>{bad</tool_call>"
    reply = env.env_response(TASK, transcript(turn), state)
    assert [m["role"] for m in reply] == ["tool", "tool", "tool"]
    assert reply[0]["content"] == "42" and "unknown tool" in reply[1]["content"]
    assert "could not read" in reply[2]["content"]
    assert state == {"tool_calls": 3, "tool_errors": 2}
    env.env_response(TASK, transcript(call("explode", reason="x")), state)
    assert state == {"tool_calls": 4, "tool_errors": 3}
    assert env.turn_reward(TASK, transcript("42"), state) is None


def test_no_tool_call_ends_the_episode_and_only_the_final_answer_is_scored():
    env = make_env()
    state = env.initial_state(TASK)
    assert env.env_response(TASK, transcript("42"), state) is None
    messages = transcript(call("multiply", a=6, b=7), "42", "42")
    assert env.verify_episode(TASK, messages, state).score == 1.0
    # the right value only in a tool's output, or inside a tool call, is not an answer
    assert (
        env.verify_episode(
            TASK, transcript(call("multiply", a=6, b=7), "42", "I'm done."), state
        ).score
        == 0.0
    )
    assert env.verify_episode(TASK, transcript(call("multiply", a=42, b=1)), state).score == 0.0


def test_calls_past_the_cap_are_refused_and_counted():
    env = make_env(max_calls_per_turn=2)
    state = env.initial_state(TASK)
    reply = env.env_response(TASK, transcript(call("multiply", a=1) * 3), state)
    assert [m["content"] for m in reply[:2]] == ["2", "2"]
    assert "at most 2 tool calls per turn" in reply[2]["content"]
    assert state == {"tool_calls": 3, "tool_errors": 1}


def test_an_infra_failure_ends_the_episode_as_infra_error():
    env = make_env()
    state = env.initial_state(TASK)
    assert env.env_response(TASK, transcript(call("down")), state) is None
    assert state["infra_error"] == "down: engine not reachable" and state["tool_errors"] == 0
    result = env.verify_episode(TASK, transcript(call("down"), "x", "42"), state)
    assert result.is_infra_error and result.score == 0.0


def test_concurrent_tools_run_in_parallel_and_keep_their_order():
    barrier = threading.Barrier(2, timeout=30)  # passes only if both calls run at once

    def wait(tag: str) -> str:
        """Wait for the other calls.

        Args:
            tag: echoed back
        """
        barrier.wait()
        return tag

    env = make_env(tools=[Tool(wait, concurrent=True), multiply])
    turn = call("wait", tag="a") + call("multiply", a=2) + call("wait", tag="b")
    state = env.initial_state(TASK)
    reply = env.env_response(TASK, transcript(turn), state)
    barrier_left = barrier.broken
    assert [m["content"] for m in reply] == ["a", "4", "b"], reply
    assert not barrier_left and state["tool_errors"] == 0


def test_tool_schemas_and_unique_names():
    env = make_env()
    assert [s["function"]["name"] for s in env.tool_schemas()] == ["multiply", "explode", "down"]
    with pytest.raises(ValueError, match="unique"):
        make_env(tools=[multiply, Tool(explode, name="multiply")])


# ----- chat templates ---------------------------------------------------------------------

# A template in the shape of Qwen2.5's: tools in the system turn, tool results in user turns.
TOOL_TEMPLATE = (
    "{% if tools %}<tools>{% for t in tools %}{{ t | tojson }}{% endfor %}</tools>{% endif %}"
    "{% for m in messages %}{% if m['role'] == 'tool' %}<tool_response>{{ m['content'] }}"
    "</tool_response>{% else %}{{ m['role'] }}: {{ m['content'] }}{% endif %}{% endfor %}"
)
STRICT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role') }}{% endif %}{{ m['content'] }}{% endfor %}"
)


def test_supports_tools_reads_the_template():
    alphabet = "abcdefghijklmnopqrstuvwxyz_:{}<>/ "
    assert supports_tools(char_tokenizer(alphabet, chat_template=TOOL_TEMPLATE))
    assert not supports_tools(char_tokenizer(alphabet))  # drops the tools silently
    assert not supports_tools(char_tokenizer(alphabet, chat_template=STRICT_TEMPLATE))


def test_prepare_tool_chat_falls_back_to_the_system_prompt():
    schemas = make_env().tool_schemas()
    messages = [
        *TASK.messages("Be brief."),
        {"role": "assistant", "content": call("multiply", a=1)},
    ]
    messages.append({"role": "tool", "content": "2"})
    with_tools = char_tokenizer("abc", chat_template=TOOL_TEMPLATE)
    assert prepare_tool_chat(with_tools, messages, schemas) == (messages, schemas)

    plain = char_tokenizer("abc", chat_template=STRICT_TEMPLATE)
    out, tools = prepare_tool_chat(plain, messages, schemas)
    assert tools is None and [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert (
        out[0]["content"].startswith("Be brief.\n\n") and '"name": "multiply"' in out[0]["content"]
    )
    assert out[-1]["content"] == "<tool_response>\n2\n</tool_response>"
    assert plain.apply_chat_template(out, tokenize=False)  # renders now
    assert messages[-1]["role"] == "tool"  # the caller's list is untouched
    prompt = tools_system_prompt(schemas)
    assert "<tool_call>" in prompt and all(json.dumps(s) in prompt for s in schemas)
