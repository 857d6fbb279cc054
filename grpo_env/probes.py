"""Adversarial probes: completions that a sound verifier must score 0.

GRPO finds any hole in a verifier within a few dozen steps (on ``math-chain-sum`` it learned
that restating the question, ``4 + 7 ≈ 99``, scored as the answer 11). Every env with a
reference answer (``VerifiableEnv.reference_answer``) gets these probes in
``grpo-env envs check``; a user's own env gets them through ``run_probes``:

- the prompt echoed back, and the question's own expression restated (bare, boxed, stated);
- the reference followed by a contradicting relation (``11 = 12``, ``4 + 7 ≈ 12``);
- the reference next to a second, different answer;
- near misses: the reference ± 1 and × 10 (for a number), ``+ 1`` appended otherwise;
- empty answers, and a long junk answer that never states the reference.

Where the env has a gold completion that contains the reference, each answer probe is also
written into it in place of the reference, so envs that demand a format are probed past it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from grpo_env.types import Status, Task

if TYPE_CHECKING:
    from grpo_env.env import VerifiableEnv

# Runs of arithmetic in prose ("... problem: 65 - 52 + 7 ="): numbers joined by operators.
_ARITHMETIC_RUN = re.compile(
    r"[(\[]*\s*-?\d[\d.,]*\s*[)\]]*(?:\s*(?:[+\-*/×÷^·x])\s*[(\[]*\s*-?\d[\d.,]*\s*[)\]]*)+"
)
_MATH_SPANS = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True)
class Probe:
    name: str
    completion: str


@dataclass(frozen=True)
class ProbeOutcome:
    probe: Probe
    score: float
    status: Status

    @property
    def passed(self) -> bool:
        # An infra_error is no reward either, but it hides what the verifier would say.
        return self.score <= 0.0 and self.status is not Status.INFRA_ERROR


def prompt_text(task: Task) -> str:
    """The question as the model reads it: the prompt, or its last user message."""
    if isinstance(task.prompt, str):
        return task.prompt
    users = [m.content for m in task.prompt if m.role == "user"]
    return users[-1] if users else task.prompt[-1].content


def question_expressions(question: str) -> list[str]:
    """The expressions a prompt asks about: its ``$…$`` / ``\\(…\\)`` math that is more than
    a lone number or symbol, and runs of plain arithmetic (``65 - 52 + 7``)."""
    found: list[str] = []
    for match in _MATH_SPANS.finditer(question):
        span = next(g for g in match.groups() if g is not None).strip()
        if len(re.sub(r"\s", "", span)) > 1 and not _PLAIN_NUMBER.fullmatch(span):
            found.append(span)
    outside = _MATH_SPANS.sub(" ", question)
    for match in _ARITHMETIC_RUN.finditer(outside):
        run = match.group(0).strip().rstrip(",.")
        if run and not _PLAIN_NUMBER.fullmatch(run):
            found.append(run)
    return list(dict.fromkeys(found))


def near_misses(reference: str) -> list[str]:
    """Wrong answers close to ``reference``: ± 1 and × 10 for a number, else ``+ 1``."""
    try:
        value = Decimal(reference.replace(",", "").strip())
    except InvalidOperation:
        return [f"{reference} + 1"]
    if not value.is_finite():
        return [f"{reference} + 1"]
    misses = [value + 1, value - 1, value * 10 if value != 0 else Decimal(10)]
    return [_plain(m) for m in misses]


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def adversarial_probes(
    question: str, reference: str, gold_completion: str | None = None, *, seed: int = 0
) -> list[Probe]:
    """The probes for one task (see the module docstring). Each must score 0."""
    misses = near_misses(reference)
    wrong = misses[0]
    answers: list[tuple[str, str]] = []
    for i, expression in enumerate(question_expressions(question)[:3]):
        answers += [
            (f"question restated #{i}", expression),
            (f"question restated #{i} with a wrong value", f"{expression} \\approx {wrong}"),
        ]
    answers += [
        ("reference then a contradicting relation", f"{reference} = {wrong}"),
        ("reference then a contradicting approximation", f"{reference} ≈ {wrong}"),
        ("reference or a second answer", f"{reference} or {wrong}"),
        *((f"near miss {miss}", miss) for miss in misses),
        ("empty answer", ""),
    ]
    probes = [Probe("prompt echoed", question), Probe("empty completion", "")]
    for name, answer in answers:
        probes.append(Probe(f"{name} (boxed)", f"\\boxed{{{answer}}}"))
        probes.append(Probe(f"{name} (stated)", f"The answer is {answer}."))
        if answer:
            probes.append(Probe(f"{name} (bare)", answer))
        if gold_completion and reference and reference in gold_completion:
            probes.append(
                Probe(f"{name} (in the gold format)", gold_completion.replace(reference, answer))
            )
    probes.append(
        Probe("two different boxed answers", f"\\boxed{{{reference}}} \\boxed{{{wrong}}}")
    )
    probes.append(Probe("long junk answer", junk_text(reference, seed=seed)))
    return probes


def junk_text(reference: str, *, seed: int = 0, words: int = 400) -> str:
    """Rambling text with numbers, none of which is the reference."""
    rng = random.Random(seed)
    vocabulary = ["the", "so", "we", "answer", "maybe", "is", "then", "=", "+", "value", "x"]
    out: list[str] = []
    for _ in range(words):
        if rng.random() < 0.3:
            number = str(rng.randint(0, 999))
            out.append(number if number != reference.strip() else str(int(number) + 1))
        else:
            out.append(rng.choice(vocabulary))
    return " ".join(out)


def run_probes(env: VerifiableEnv, task: Task, *, seed: int = 0) -> list[ProbeOutcome]:
    """Score every probe of ``task`` with ``env`` (one ``score_many`` call). Empty when the
    env declares no reference answer for the task."""
    reference = env.reference_answer(task)
    if reference is None:
        return []
    probes = adversarial_probes(prompt_text(task), reference, env.gold_completion(task), seed=seed)
    results = env.score_many(task, [p.completion for p in probes])
    return [ProbeOutcome(p, float(r.score), r.status) for p, r in zip(probes, results, strict=True)]


def failed_probes(outcomes: Sequence[ProbeOutcome]) -> list[ProbeOutcome]:
    return [o for o in outcomes if not o.passed]
