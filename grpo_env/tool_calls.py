"""Tools in the model's text: how calls are read, and how tools reach the prompt.

Calls come in the Hermes/Qwen ``<tool_call>{json}</tool_call>`` form, or as a bare
``{"name": ..., "arguments": {...}}`` object (a fallback for models without the tags). The
schemas go into the chat template's ``tools=`` where the template renders it, else into the
system prompt (``prepare_tool_chat``).

Parsing never raises: a call that cannot be read is a ``ToolCall`` with ``error`` set, which
``grpo_env.tools.run_tool_call`` turns into a tool message telling the model what was wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCED_JSON = re.compile(r"```(?:json)?[ \t]*\n(\{.*?\})\s*```", re.DOTALL)
_BARE_START = re.compile(r"\{\s*\"name\"\s*:")
Messages = list[dict[str, str]]


class ToolCall(BaseModel):
    """One call parsed from the model's text; ``error`` is set when it could not be parsed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = ""
    arguments: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    raw: str = ""


def parse_tool_calls(text: str) -> list[ToolCall]:
    """The calls in a model's turn, in order: ``<tool_call>{json}</tool_call>`` blocks (an
    unclosed last block counts: a generation cut off mid-call is a malformed call), else
    bare or ```json-fenced objects ``{"name": ..., "arguments": {...}}``. Empty: no call."""
    blocks = [m.group(1) for m in _TAGGED.finditer(text)]
    if blocks:
        return [_call_from_json(block.strip()) for block in blocks]
    calls = []
    for candidate in _json_objects(text):
        call = _call_from_json(candidate)
        if call.error is None:
            calls.append(call)
    return calls


def strip_tool_calls(text: str) -> str:
    """``text`` without its tool calls: what is left to score as a final answer."""
    if "<tool_call>" in text:
        return _TAGGED.sub("", text)
    for candidate in _json_objects(text):
        if _call_from_json(candidate).error is None:
            text = text.replace(candidate, "")
    return text


def _json_objects(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCED_JSON.finditer(text)]
    decoder = json.JSONDecoder()
    position = 0
    while match := _BARE_START.search(text, position):
        try:
            _, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            position = match.end()
            continue
        if not any(text[match.start() : end] in f for f in found):
            found.append(text[match.start() : end])
        position = end
    return found


def _call_from_json(raw: str) -> ToolCall:
    def bad(reason: str) -> ToolCall:
        return ToolCall(error=reason, raw=raw)

    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        return bad(f"the call is not valid JSON ({err.msg} at character {err.pos})")
    if not isinstance(data, dict):
        return bad("the call must be a JSON object with 'name' and 'arguments'")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        return bad("the call has no 'name' (a string)")
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI style: the arguments as a JSON string
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as err:
            return bad(f"'arguments' is a string but not valid JSON ({err.msg})")
    if not isinstance(arguments, dict):
        return bad("'arguments' must be a JSON object of argument names to values")
    return ToolCall(name=name, arguments=arguments, raw=raw)


# ----- chat templates --------------------------------------------------------------------

_PROBE_NAME = "grpo_env_probe_tool"
_PROBE_RESULT = "grpo_env_probe_result"
TOOLS_PROMPT_HEADER = (
    "You can call tools. To call one, write a JSON object with the tool's name and its "
    "arguments between <tool_call></tool_call> tags, for example:\n"
    '<tool_call>\n{"name": "TOOL_NAME", "arguments": {"ARGUMENT": "VALUE"}}\n</tool_call>\n'
    "Each result comes back between <tool_response></tool_response> tags. Answer without a "
    "tool call when you are done. The tools, as JSON schemas:"
)


def supports_tools(tokenizer: Any) -> bool:
    """Whether ``tokenizer``'s chat template renders ``tools=`` and ``tool`` messages (Qwen2.5,
    Hermes, Llama 3.1 do; many small models' templates drop both silently)."""
    return _renders_probe(tokenizer, with_schema=True)


def renders_tool_role(tokenizer: Any) -> bool:
    """Whether the chat template renders a ``tool`` message's content (with or without support
    for ``tools=``); where it does not, tool results are sent as user turns."""
    return _renders_probe(tokenizer, with_schema=False)


def _renders_probe(tokenizer: Any, *, with_schema: bool) -> bool:
    if not getattr(tokenizer, "chat_template", None):
        return False
    probe = {
        "type": "function",
        "function": {
            "name": _PROBE_NAME,
            "description": "probe",
            "parameters": {"type": "object", "properties": {}},
        },
    }
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "call"},
        {"role": "tool", "content": _PROBE_RESULT},
    ]
    kwargs = {"tools": [probe]} if with_schema else {}
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)
    except Exception:  # templates raise on roles they do not know
        return False
    return _PROBE_RESULT in text and (not with_schema or _PROBE_NAME in text)


def tools_system_prompt(schemas: Sequence[Mapping[str, Any]]) -> str:
    """The tools described in words and schemas, for templates without ``tools=``."""
    lines = [json.dumps(schema, ensure_ascii=False) for schema in schemas]
    return TOOLS_PROMPT_HEADER + "\n" + "\n".join(lines)


def prepare_tool_chat(
    tokenizer: Any, messages: Sequence[Mapping[str, str]], schemas: Sequence[Mapping] | None
) -> tuple[Messages, list[dict[str, Any]] | None]:
    """``(messages, tools)`` to pass to ``tokenizer.apply_chat_template``.

    Where the template supports tools, both go through unchanged. Otherwise the schemas join
    the system prompt (``tools_system_prompt``), ``tools`` is None, and, where the template
    does not render the ``tool`` role either, each ``tool`` message becomes a ``user`` message
    wrapped in ``<tool_response>`` tags.
    """
    out = [dict(m) for m in messages]
    if not schemas:
        return out, None
    if supports_tools(tokenizer):
        return out, [dict(s) for s in schemas]
    prompt = tools_system_prompt(schemas)
    if out and out[0]["role"] == "system":
        out[0]["content"] = f"{out[0]['content']}\n\n{prompt}"
    else:
        out.insert(0, {"role": "system", "content": prompt})
    return (out if renders_tool_role(tokenizer) else tool_messages_as_user(out)), None


def tool_messages_as_user(messages: Sequence[Mapping[str, str]]) -> Messages:
    """``tool`` messages as ``user`` messages wrapped in ``<tool_response>`` tags (Hermes'
    convention), for templates that do not render the ``tool`` role."""
    out = [dict(m) for m in messages]
    for message in out:
        if message["role"] == "tool":
            message["role"] = "user"
            message["content"] = f"<tool_response>\n{message['content']}\n</tool_response>"
    return out
