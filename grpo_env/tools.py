"""Tools: plain Python functions a model calls by writing JSON, and ``ToolEnv``, which runs them.

A tool is a function with type hints and a Google-style docstring (an ``Args:`` line per
parameter); its JSON schema comes from those (``tool_schema``, built on transformers'
``get_json_schema``). The model calls it in the Hermes/Qwen form::

    <tool_call>
    {"name": "multiply", "arguments": {"a": 3, "b": 4}}
    </tool_call>

(or, without the tags, a bare JSON object with ``name`` and ``arguments``). Every call becomes
one ``tool`` message; a malformed call, an unknown tool, bad arguments or a tool that raises
become a tool message saying what was wrong, never a crash, and are counted in
``state["tool_errors"]``.

Plain tools run in the trainer's process and cannot be timed out safely there (no SIGALRM
from worker threads): they must be fast and pure (arithmetic, a lookup). A tool that runs
model-written code must run it in the sandbox (``environments.python_tool``) and be marked
``concurrent``: the calls of one turn then run in parallel. A tool whose own infrastructure
fails (the sandbox is down) raises ``ToolInfraError``: the episode ends and is scored
``infra_error`` (masked by agents, never a 0).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import typing
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from grpo_env.env import VerifiableEnv
from grpo_env.tasks import TaskSource
from grpo_env.tool_calls import (
    ToolCall,
    parse_tool_calls,
    prepare_tool_chat,
    strip_tool_calls,
    supports_tools,
    tools_system_prompt,
)
from grpo_env.types import Task, VerifyResult

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
__all__ = [
    "MAX_CALLS_PER_TURN",
    "MAX_OUTPUT_CHARS",
    "Tool",
    "ToolCall",
    "ToolEnv",
    "ToolInfraError",
    "ToolResult",
    "cap_output",
    "parse_tool_calls",
    "prepare_tool_chat",
    "run_tool_call",
    "strip_tool_calls",
    "supports_tools",
    "tool_schema",
    "tools_system_prompt",
]
MAX_CALLS_PER_TURN = 4
MAX_OUTPUT_CHARS = 4000


class ToolInfraError(RuntimeError):
    """The tool's own infrastructure failed (sandbox down): says nothing about the model."""


class ToolResult(BaseModel):
    """What a call gave back: ``content`` is the tool message the model reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    content: str
    ok: bool
    infra_error: str | None = None


# ----- schemas ---------------------------------------------------------------------------


def tool_schema(fn: Callable[..., Any], name: str | None = None) -> dict[str, Any]:
    """The OpenAI-style function schema of ``fn``, from its signature, hints and docstring.

    Every parameter needs a type hint and an ``Args:`` description (transformers'
    ``get_json_schema`` rules: ``Optional``, ``list[...]``, ``Literal`` become ``nullable``,
    ``array`` and ``enum``). Defaults that JSON can hold are added as ``default``.
    """
    from transformers.utils import get_json_schema

    schema = get_json_schema(fn)
    function = schema["function"]
    function.pop("return", None)  # not part of the OpenAI format; templates would print it
    if name is not None:
        function["name"] = name
    properties = function.get("parameters", {}).get("properties", {})
    for param in inspect.signature(fn).parameters.values():
        if param.name in properties and param.default is not inspect.Parameter.empty:
            # A default JSON cannot hold is left out: the model just omits the argument.
            with contextlib.suppress(TypeError, ValueError):
                properties[param.name]["default"] = json.loads(json.dumps(param.default))
    return schema


class Tool:
    """A function the model may call: its schema, and argument checking against it.

    Args:
        fn: the function (type hints and an ``Args:`` docstring on every parameter).
        name: the name the model uses (default: the function's).
        concurrent: safe to run in parallel with other calls (sandboxed tools are).
    """

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, concurrent: bool = False
    ):
        self.fn = fn
        self.name = name or fn.__name__
        self.concurrent = concurrent
        self.schema = tool_schema(fn, self.name)
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
        self._params: dict[str, TypeAdapter[Any]] = {}
        self._required: list[str] = []
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"tool {self.name}: *args/**kwargs cannot have a schema")
            self._params[param.name] = TypeAdapter(hints.get(param.name, Any))
            if param.default is param.empty:
                self._required.append(param.name)

    def check_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments validated (and coerced where lossless: "3" -> 3) against the
        signature; ``ValueError`` naming every problem otherwise."""
        problems = []
        missing = [p for p in self._required if p not in arguments]
        if missing:
            problems.append(f"missing required argument(s) {', '.join(map(repr, missing))}")
        extra = [a for a in arguments if a not in self._params]
        if extra:
            problems.append(
                f"unexpected argument(s) {', '.join(map(repr, extra))} "
                f"(it takes {', '.join(self._params) or 'no arguments'})"
            )
        checked = {}
        for key, value in arguments.items():
            if key not in self._params:
                continue
            try:
                checked[key] = self._params[key].validate_python(value)
            except ValidationError as err:
                reason = err.errors()[0]["msg"] if err.errors() else str(err)
                problems.append(f"argument {key!r}: {reason} (got {_short(repr(value), 60)})")
        if problems:
            raise ValueError("; ".join(problems))
        return checked

    def __call__(self, **arguments: Any) -> Any:
        return self.fn(**arguments)

    def __repr__(self) -> str:
        return f"Tool({self.name!r}, concurrent={self.concurrent})"


def as_tool(tool: Tool | Callable[..., Any]) -> Tool:
    return tool if isinstance(tool, Tool) else Tool(tool)


# ----- running ---------------------------------------------------------------------------


def cap_output(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """``text`` cut to about ``limit`` characters, keeping its start and its end (where
    errors are) and saying how much was cut."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n[... {cut} characters cut ...]\n{text[len(text) - tail :]}"


def run_tool_call(
    call: ToolCall, tools: Mapping[str, Tool], *, max_output_chars: int = MAX_OUTPUT_CHARS
) -> ToolResult:
    """Run one parsed call. Never raises: every problem is a tool message (``ok=False``);
    a ``ToolInfraError`` also sets ``infra_error``."""

    def error(message: str, name: str = call.name) -> ToolResult:
        return ToolResult(name=name or "?", content=f"Error: {message}", ok=False)

    if call.error is not None:
        return error(
            f"could not read the tool call: {call.error}. Write "
            '<tool_call>{"name": "TOOL", "arguments": {...}}</tool_call> with valid JSON.'
        )
    tool = tools.get(call.name)
    if tool is None:
        known = ", ".join(sorted(tools)) or "none"
        return error(f"unknown tool {_short(call.name, 60)!r}; available tools: {known}.")
    try:
        arguments = tool.check_arguments(call.arguments)
    except ValueError as err:
        return error(f"bad arguments for {tool.name}: {err}.")
    try:
        output = tool(**arguments)
    except ToolInfraError as err:
        return ToolResult(
            name=tool.name,
            content=f"Error: the {tool.name} tool is unavailable (infrastructure failure).",
            ok=False,
            infra_error=f"{tool.name}: {err}",
        )
    except Exception as err:  # the model's call made the tool fail: tell it, don't crash
        return error(f"{tool.name} raised {type(err).__name__}: {_short(str(err), 500)}")
    return ToolResult(name=tool.name, content=cap_output(_text(output), max_output_chars), ok=True)


def _text(output: Any) -> str:
    if output is None:
        return "(no output)"
    if isinstance(output, str):
        return output
    try:
        return json.dumps(output, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(output)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----- the environment -------------------------------------------------------------------


class ToolEnv(VerifiableEnv):
    """An environment whose model may call ``tools`` before giving its final answer.

    Each model turn with tool calls is answered with one ``tool`` message per call; a turn
    without one ends the episode and ``verify_episode`` scores the last assistant message
    (tool calls stripped) with ``verify`` (a rubric, or an override). Tool results and the
    text of earlier turns are never scored.

    Args:
        tasks: a ``TaskSource`` or tasks.
        tools: functions (their schema comes from hints and docstrings) or ``Tool``s.
        max_turns: model turns, tool turns included (default 4).
        max_calls_per_turn: calls run per turn; the rest get an error message (counted).
        max_output_chars: each tool message is cut to about this many characters.
        **kwargs: passed to ``VerifiableEnv`` (``rubric``, ``system_prompt``...).
    """

    def __init__(
        self,
        tasks: TaskSource | Sequence[Task | Mapping[str, Any]],
        tools: Sequence[Tool | Callable[..., Any]],
        *,
        max_turns: int = 4,
        max_calls_per_turn: int = MAX_CALLS_PER_TURN,
        max_output_chars: int = MAX_OUTPUT_CHARS,
        **kwargs: Any,
    ):
        if max_calls_per_turn < 1:
            raise ValueError(f"max_calls_per_turn must be >= 1, got {max_calls_per_turn}")
        built = [as_tool(t) for t in tools]
        names = [t.name for t in built]
        if len(set(names)) != len(names):
            raise ValueError(f"tool names must be unique, got {names}")
        self.tools: dict[str, Tool] = {t.name: t for t in built}
        self.max_calls_per_turn = max_calls_per_turn
        self.max_output_chars = max_output_chars
        super().__init__(tasks, max_turns=max_turns, **kwargs)

    def tool_schemas(self) -> list[dict[str, Any]] | None:
        """The tools' schemas, for the chat template's ``tools=`` (see ``prepare_tool_chat``)."""
        return [t.schema for t in self.tools.values()] or None

    def initial_state(self, task: Task) -> dict[str, Any]:
        return {"tool_calls": 0, "tool_errors": 0}

    def env_response(
        self, task: Task, messages: Messages, state: dict[str, Any] | None = None
    ) -> Messages | str | None:
        """The tool messages answering the last assistant turn; None when it calls no tool
        (the episode ends) or a tool's infrastructure failed (scored ``infra_error``)."""
        state = self.initial_state(task) if state is None else state
        last = messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else ""
        calls = parse_tool_calls(last)
        if not calls:
            return None
        results = self.run_calls(calls)
        state["tool_calls"] = state.get("tool_calls", 0) + len(results)
        state["tool_errors"] = state.get("tool_errors", 0) + sum(
            not r.ok and r.infra_error is None for r in results
        )
        failed = [r.infra_error for r in results if r.infra_error is not None]
        if failed:
            state["infra_error"] = failed[0]
            log.error("tool infrastructure failed on task %s: %s", task.id, failed[0])
            return None
        return [{"role": "tool", "content": r.content} for r in results]

    def run_calls(self, calls: Sequence[ToolCall]) -> list[ToolResult]:
        """Run one turn's calls, in order of the results; calls to ``concurrent`` tools run
        in parallel, the others one by one; calls past ``max_calls_per_turn`` are refused."""
        run, refused = calls[: self.max_calls_per_turn], calls[self.max_calls_per_turn :]

        def one(call: ToolCall) -> ToolResult:
            return run_tool_call(call, self.tools, max_output_chars=self.max_output_chars)

        parallel = [i for i, c in enumerate(run) if self._concurrent(c)]
        results: dict[int, ToolResult] = {}
        if len(parallel) > 1:
            with ThreadPoolExecutor(max_workers=len(parallel)) as pool:
                results.update(
                    zip(parallel, pool.map(one, [run[i] for i in parallel]), strict=True)
                )
        for i, call in enumerate(run):
            if i not in results:
                results[i] = one(call)
        limit = self.max_calls_per_turn
        skipped = [
            ToolResult(
                name=c.name or "?",
                content=f"Error: at most {limit} tool calls per turn; this call was not run.",
                ok=False,
            )
            for c in refused
        ]
        return [results[i] for i in range(len(run))] + skipped

    def _concurrent(self, call: ToolCall) -> bool:
        tool = self.tools.get(call.name) if call.error is None else None
        return tool is not None and tool.concurrent

    def turn_reward(self, task: Task, messages: Messages, state: dict[str, Any]) -> float | None:
        return None

    def final_answer(self, messages: Messages) -> str:
        """The text scored: the last assistant message without its tool calls."""
        for message in reversed(messages):
            if message["role"] == "assistant":
                return strip_tool_calls(message["content"])
        return ""

    def verify_episode(
        self, task: Task, messages: Messages, state: dict[str, Any] | None = None
    ) -> VerifyResult:
        """Score the final answer; ``infra_error`` when a tool's infrastructure failed."""
        reason = (state or {}).get("infra_error")
        if reason:
            return VerifyResult.infra_error(f"tool infrastructure failed: {reason}")
        return self._safe_verify(task, self.final_answer(messages))
