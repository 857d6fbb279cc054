"""The reasoning format ``<think>…</think><answer>…</answer>``: a checker and an environment.

Strict (the default): the completion is exactly one ``<think>`` block followed by exactly one
``<answer>`` block, both non-empty, with nothing but whitespace around them. Any tag-like
variant (``<Think>``, ``< answer >``, ``<answer id=1>``) counts as a tag and breaks the
format, so nested, repeated, unclosed or reordered tags all fail.

Partial credit (opt-in) gives a quarter for each of: a well-formed think block, a well-formed
answer block, the two in order with no other tags, and nothing outside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from grpo_env import JsonlTaskSource, Status, Task, TaskSource, VerifiableEnv, VerifyResult
from grpo_env.rubric import Criterion, Rubric

FORMAT_SYSTEM_PROMPT = (
    "Think about the question, then answer. Respond in exactly this format and nothing else:\n"
    "<think>\nyour reasoning\n</think>\n<answer>\nyour final answer\n</answer>"
)

# Anything that looks like an opening or closing think/answer tag, however it is spelt.
_TAG = re.compile(r"<\s*(/?)\s*(think|answer)\b[^<>]*>", re.IGNORECASE)
_CANONICAL = ["<think>", "</think>", "<answer>", "</answer>"]
PARTS = ("think", "answer", "order", "clean")


@dataclass(frozen=True)
class FormatCheck:
    """The verdict on one completion's format."""

    ok: bool
    think: str | None
    answer: str | None
    parts: dict[str, float]
    problems: tuple[str, ...]

    @property
    def partial_score(self) -> float:
        return sum(self.parts.values()) / len(self.parts)


def check_format(text: str) -> FormatCheck:
    """Check ``text`` against the think/answer format (see the module docstring)."""
    tags = list(_TAG.finditer(text))
    problems: list[str] = []
    for tag in tags:
        if tag.group(0) not in _CANONICAL:
            problems.append(f"non-canonical tag {tag.group(0)!r} at offset {tag.start()}")

    def kind(tag: re.Match[str]) -> str:
        return f"<{tag.group(1)}{tag.group(2).lower()}>"

    def block(name: str) -> str | None:
        opens = [t for t in tags if kind(t) == f"<{name}>"]
        closes = [t for t in tags if kind(t) == f"</{name}>"]
        if len(opens) != 1 or len(closes) != 1:
            problems.append(
                f"expected one <{name}> and one </{name}>, found {len(opens)} and {len(closes)}"
            )
            return None
        if closes[0].start() < opens[0].end():
            problems.append(f"</{name}> comes before <{name}>")
            return None
        return text[opens[0].end() : closes[0].start()]

    think, answer = block("think"), block("answer")
    think_ok = think is not None and bool(think.strip())
    answer_ok = answer is not None and bool(answer.strip())
    if think is not None and not think_ok:
        problems.append("think block is empty")
    if answer is not None and not answer_ok:
        problems.append("answer block is empty")

    order_ok = [t.group(0) for t in tags] == _CANONICAL
    if not order_ok and think is not None and answer is not None:
        problems.append("tags are not exactly <think></think><answer></answer> in that order")
    clean_ok = order_ok and all(
        not segment.strip()
        for segment in (
            text[: tags[0].start()],
            text[tags[1].end() : tags[2].start()],
            text[tags[3].end() :],
        )
    )
    if order_ok and not clean_ok:
        problems.append("text outside the think and answer blocks")

    parts = {
        "think": float(think_ok),
        "answer": float(answer_ok),
        "order": float(order_ok),
        "clean": float(clean_ok),
    }
    ok = all(parts.values()) and not problems
    return FormatCheck(
        ok=ok,
        think=think.strip() if think_ok and think is not None else None,
        answer=answer.strip() if answer_ok and answer is not None else None,
        parts=parts,
        problems=tuple(problems),
    )


def format_result(text: str, *, partial_credit: bool = False) -> VerifyResult:
    """``check_format`` as a ``VerifyResult`` (score 1/0, or the partial score)."""
    check = check_format(text)
    score = 1.0 if check.ok else (check.partial_score if partial_credit else 0.0)
    return VerifyResult(
        score=score,
        status=Status.OK if check.ok else Status.INVALID_FORMAT,
        components=dict(check.parts),
        details={"problems": list(check.problems), "answer": check.answer},
    )


def default_format_tasks() -> TaskSource:
    """A few dozen short questions shipped with the package (answers are for reference)."""
    data = resources.files("grpo_env.environments") / "data" / "format_prompts.jsonl"
    with resources.as_file(data) as path:
        return JsonlTaskSource(Path(path))


class FormatEnv(VerifiableEnv):
    """``format-v0``: reward for answering in the think/answer format, whatever the answer."""

    def __init__(
        self,
        tasks: TaskSource | None = None,
        *,
        partial_credit: bool = False,
        system_prompt: str | None = FORMAT_SYSTEM_PROMPT,
        **kwargs: Any,
    ):
        self.partial_credit = partial_credit
        rubric = Rubric([Criterion("format", self._score_format)])
        super().__init__(
            tasks if tasks is not None else default_format_tasks(),
            rubric=rubric,
            system_prompt=system_prompt,
            **kwargs,
        )

    def _score_format(self, task: Task, completion: str) -> VerifyResult:
        return format_result(completion, partial_credit=self.partial_credit)

    def gold_completion(self, task: Task) -> str | None:
        answer = task.answer if task.answer not in (None, "") else "done"
        return f"<think>\nLet me work this out.\n</think>\n<answer>\n{answer}\n</answer>"
