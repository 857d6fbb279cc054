"""Token-in, token-out chat: the env's turns as token deltas, never re-tokenising the model.

A multi-turn episode's training sequence is the prompt's ids, then for each turn the exact
ids the model sampled, then the env's tokens: whatever the chat template writes after the
model's turn (the rest of its end-of-turn, e.g. the ``\\n`` after ``<|im_end|>``), the env's
messages, and the opening of the next assistant turn. Rendering the whole transcript again and
tokenising it would not give the same ids: BPE merges differently across turn boundaries, and
some templates rewrite earlier turns (Qwen3 drops the ``<think>`` blocks of earlier assistant
turns; others render the last assistant turn differently once another message follows).

So the env's tokens are rendered as a *delta*: the env's messages appended to a fixed dummy
conversation whose assistant turn is a marker; everything the template writes after the marker
is the delta. Whatever the template does to earlier turns happens to the dummy, never to tokens
already in the sequence. When the model ended its turn with the template's end-of-turn token
(an EOS), that token is already in the sequence and is cut from the front of the delta.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grpo_env.tool_calls import prepare_tool_chat, renders_tool_role, tool_messages_as_user

Messages = list[dict[str, str]]

# Plain words: a template may trim or escape content, but leaves these alone.
_BASE_USER = "grpoenvdeltabaseuser"
_MARKER = "grpoenvdeltamarker"


def render_prompt(
    tokenizer: Any, messages: Sequence[dict[str, str]], tools: list[dict] | None = None
) -> list[int]:
    """The prompt's token ids: the chat template with the assistant turn opened. ``tools``
    (function schemas) go to templates that render them; for the others they join the system
    prompt (``grpo_env.tool_calls.prepare_tool_chat``)."""
    if getattr(tokenizer, "chat_template", None):
        messages, native = prepare_tool_chat(tokenizer, messages, tools)
        kwargs: dict[str, Any] = {"tools": native} if native else {}
        text = tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True, **kwargs
        )
        # The template already holds the special tokens (BOS, turn markers).
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])
    # A base model without a template: plain text, turns separated by blank lines.
    text = "\n\n".join(m["content"] for m in messages) + "\n\n"
    return list(tokenizer(text)["input_ids"])


def env_delta_text(
    tokenizer: Any, messages: Sequence[dict[str, str]], ended_with: str | None
) -> str:
    """The text the template writes after a model turn: the end of that turn, ``messages``
    (the env's), and the next assistant turn's opening. ``ended_with``: the text of the end
    token the model emitted (already in the sequence, so left out), or None."""
    if not getattr(tokenizer, "chat_template", None):
        return "\n\n" + "\n\n".join(m["content"] for m in messages) + "\n\n"
    base = [{"role": "user", "content": _BASE_USER}, {"role": "assistant", "content": _MARKER}]
    if any(m["role"] == "tool" for m in messages) and not renders_tool_role(tokenizer):
        messages = tool_messages_as_user(messages)
    text = tokenizer.apply_chat_template(
        base + [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
    )
    if text.count(_MARKER) != 1:
        raise ValueError(
            "the chat template does not render an assistant turn's content verbatim, once: "
            "the env's tokens cannot be rendered as a delta"
        )
    delta = text[text.index(_MARKER) + len(_MARKER) :]
    if ended_with and delta.startswith(ended_with):
        delta = delta[len(ended_with) :]
    return delta


class ChatTokens:
    """Turns an episode's messages into token ids for one tokenizer (see the module doc)."""

    def __init__(self, tokenizer: Any, eos_token_ids: Sequence[int]):
        self.tokenizer = tokenizer
        self.eos_token_ids = frozenset(eos_token_ids)

    def prompt(
        self, messages: Sequence[dict[str, str]], tools: list[dict] | None = None
    ) -> list[int]:
        return render_prompt(self.tokenizer, messages, tools)

    def env_turn(self, messages: Sequence[dict[str, str]], model_ids: Sequence[int]) -> list[int]:
        """The env's tokens after a model turn that sampled ``model_ids``."""
        ended_with = None
        if model_ids and model_ids[-1] in self.eos_token_ids:
            ended_with = self.tokenizer.decode([model_ids[-1]], skip_special_tokens=False)
        text = env_delta_text(self.tokenizer, messages, ended_with)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
