"""Adversarial probes: a verifier with a hole fails them, a sound one passes (issue 10)."""

from __future__ import annotations

from grpo_env import Task, VerifiableEnv
from grpo_env.checks import run_env_checks
from grpo_env.probes import (
    adversarial_probes,
    failed_probes,
    near_misses,
    prompt_text,
    question_expressions,
    run_probes,
)

TASK = Task(id="t", prompt="State the final answer: 4 + 7 =", answer="11")


class _ReferenceEnv(VerifiableEnv):
    def reference_answer(self, task: Task) -> str | None:
        return task.answer

    def gold_completion(self, task: Task) -> str | None:
        return f"<answer>{task.answer}</answer>"


def _holey(task: Task, completion: str) -> float:
    # The classic hole: any completion that mentions the reference scores.
    return float(task.answer in completion)


def _strict(task: Task, completion: str) -> float:
    return float(completion.strip() == f"<answer>{task.answer}</answer>")


def test_question_expressions_find_arithmetic_and_math_spans():
    assert question_expressions("What is 65 - 52 + 7 =") == ["65 - 52 + 7"]
    assert question_expressions("Compute $\\sin 60^\\circ$ for $x$ in $3$") == [
        "\\sin 60^\\circ"
    ]  # a lone symbol or number is not the question
    assert question_expressions("Tom has 3 apples.") == []


def test_near_misses():
    assert near_misses("11") == ["12", "10", "110"]
    assert near_misses("-0.5") == ["0.5", "-1.5", "-5"]
    assert near_misses("0") == ["1", "-1", "10"]
    assert near_misses("x^2 + 1") == ["x^2 + 1 + 1"]


def test_probes_cover_what_the_issue_names():
    probes = adversarial_probes(prompt_text(TASK), "11", "<answer>11</answer>")
    names = " | ".join(p.name for p in probes)
    for expected in (
        "prompt echoed",
        "question restated",
        "contradicting relation",
        "second answer",
        "near miss 12",
        "near miss 10",
        "near miss 110",
        "empty",
        "long junk",
        "in the gold format",
    ):
        assert expected in names
    junk = next(p for p in probes if p.name == "long junk answer").completion
    assert len(junk) > 1000 and " 11 " not in f" {junk} "


def test_a_holey_verifier_fails_and_a_strict_one_passes():
    holey = _ReferenceEnv([TASK], rubric=_holey)
    failed = failed_probes(run_probes(holey, TASK))
    assert failed and any("contradicting" in o.probe.name for o in failed)
    strict = _ReferenceEnv([TASK], rubric=_strict)
    assert failed_probes(run_probes(strict, TASK)) == []


def test_envs_without_a_reference_are_not_probed():
    env = VerifiableEnv([TASK], rubric=_strict)
    assert run_probes(env, TASK) == []


def test_env_check_reports_the_first_probe_that_scored(monkeypatch):
    from grpo_env import registry

    monkeypatch.setattr(
        registry.envs, "make", lambda env_id, **kw: _ReferenceEnv([TASK], rubric=_holey)
    )
    outcomes = {o.name: o for o in run_env_checks("holey-v0")}
    probe = outcomes["adversarial probes score 0"]
    assert probe.passed is False
    assert "probes scored; first: task t" in probe.detail
