"""``code-feedback-v0``: a code-unittest task over several attempts, with test feedback.

Each attempt (a model turn) runs in the sandbox as soon as it is written (``env_response``),
so the feedback is real: which tests failed and their messages, or why the code did not
run. The episode ends when every test passes, the sandbox fails, or ``max_turns`` is reached.
The reward is the share of tests the final attempt passes (``all_or_nothing``: 1 only when
all pass); ``turn_penalty`` multiplies it by ``(1 - turn_penalty) ** (attempts - 1)``, so a
solution found sooner earns more. ``turn_reward`` is the share passed at each attempt.

Every attempt's result is kept in the episode's state, keyed by its text: the final verify
reuses it instead of running the code again.

The feedback names the failing tests, so a model could special-case them on its next attempt
(the tests are the reward): ``feedback="count"`` says only how many failed.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from grpo_env.env import scripted_turn
from grpo_env.types import Task, VerifyResult

from .code_unittest import CodeUnittestEnv

Messages = list[dict[str, str]]
Feedback = Literal["tests", "count"]
CODE_FEEDBACK_SYSTEM_PROMPT = (
    "You are an expert Python programmer. Answer with working Python code in a single "
    "```python code block. If tests fail, you will be told which; then reply with the whole "
    "corrected code in a single ```python code block."
)


class CodeFeedbackEnv(CodeUnittestEnv):
    """Code tasks over several attempts, each answered with the test results.

    Args:
        task_set: ``beginner`` (default: the set the embedded model solves some of) or
            ``humaneval``; the other task options are those of ``code-unittest``.
        max_turns: attempts (default 3).
        turn_penalty: share of the reward lost per extra attempt (0: none).
        feedback: ``tests`` (failing tests and their messages) or ``count`` (only how many).
        max_failures_shown: failing tests named in one feedback message.
        **kwargs: those of ``CodeUnittestEnv`` (sandbox, split, tasks_path, limits...).
    """

    def __init__(
        self,
        *args: Any,
        task_set: Literal["humaneval", "beginner"] = "beginner",
        max_turns: int = 3,
        turn_penalty: float = 0.0,
        feedback: Feedback = "tests",
        max_failures_shown: int = 5,
        system_prompt: str | None = CODE_FEEDBACK_SYSTEM_PROMPT,
        **kwargs: Any,
    ):
        if not 0.0 <= turn_penalty < 1.0:
            raise ValueError(f"turn_penalty must be in [0, 1), got {turn_penalty}")
        if feedback not in ("tests", "count"):
            raise ValueError(f"feedback must be 'tests' or 'count', got {feedback!r}")
        super().__init__(
            *args, task_set=task_set, max_turns=max_turns, system_prompt=system_prompt, **kwargs
        )
        self.turn_penalty = turn_penalty
        self.feedback = feedback
        self.max_failures_shown = max_failures_shown

    # ----- the multi-turn contract ----------------------------------------------------------

    def initial_state(self, task: Task) -> dict[str, Any]:
        return {"attempts": 0, "sandbox_runs": 0, "results": {}}

    def env_response(
        self, task: Task, messages: Messages, state: dict[str, Any] | None = None
    ) -> str | None:
        """Run the attempt; the feedback, or None when all tests pass or the sandbox failed."""
        state = self.initial_state(task) if state is None else state
        result = self.attempt(task, _last_assistant(messages), state)
        state["attempts"] = _attempts(messages)
        if result.is_infra_error:
            state["infra_error"] = str(result.details.get("reason", "sandbox error"))
            return None
        if result.details.get("sandbox_status") == "passed":
            return None
        return self.feedback_message(result)

    def turn_reward(self, task: Task, messages: Messages, state: dict[str, Any]) -> float | None:
        """The share of tests this attempt passes (None when the sandbox failed)."""
        result = self.attempt(task, _last_assistant(messages), state)
        return None if result.is_infra_error else float(result.components["tests_passed"])

    def verify_episode(
        self, task: Task, messages: Messages, state: dict[str, Any] | None = None
    ) -> VerifyResult:
        """The final attempt's score (its kept result), less the penalty for extra turns."""
        state = self.initial_state(task) if state is None else state
        result = self.attempt(task, _last_assistant(messages), state)
        if result.is_infra_error:
            return result
        attempts = max(_attempts(messages), 1)
        factor = (1.0 - self.turn_penalty) ** (attempts - 1)
        return result.model_copy(
            update={
                "score": result.score * factor,
                "details": {**result.details, "attempts": attempts, "turn_factor": factor},
            }
        )

    def gold_action(self, task: Task, messages: list[dict[str, str]]) -> str | None:
        """The next turn of the gold episode (``grpo-env envs check`` plays it)."""
        return scripted_turn(self.gold_turns(task), messages)

    def gold_turns(self, task: Task) -> list[str] | None:
        """A gold episode: the reference solution at the first attempt."""
        gold = self.gold_completion(task)
        return None if gold is None else [gold]

    # ----- attempts and feedback ------------------------------------------------------------

    def attempt(self, task: Task, completion: str, state: dict[str, Any]) -> VerifyResult:
        """The verdict on one attempt: kept in ``state``, so it runs in the sandbox once."""
        results: dict[str, VerifyResult] = state.setdefault("results", {})
        key = hashlib.sha256(completion.encode("utf-8")).hexdigest()
        if key not in results:
            results[key] = result = self.verify(task, completion)
            ran = "sandbox_status" in result.details or result.is_infra_error
            state["sandbox_runs"] = state.get("sandbox_runs", 0) + int(ran)
        return results[key]

    def feedback_message(self, result: VerifyResult) -> str:
        """What the model is told after a failing attempt."""
        details = result.details
        again = "Reply with the whole corrected code in a single ```python code block."
        if details.get("sandbox_status") is None:  # no code block: nothing ran
            return f"I found no ```python code block in your reply. {again}"
        status = details["sandbox_status"]
        passed, total = details.get("tests_passed", 0), details.get("tests_total", 0)
        lines = [f"Your code passed {passed} of {total} tests."]
        if status == "timeout":
            lines.append("It ran past the time limit.")
        elif status in ("error", "memory_exceeded", "output_exceeded"):
            lines.append(f"It did not run properly ({status}): {details.get('error', '')[:300]}")
        if self.feedback == "tests":
            failed = details.get("failed_tests", [])[: self.max_failures_shown]
            if failed:
                lines.append("Failing tests:")
                lines += [_describe_failure(f) for f in failed]
            stderr = str(details.get("stderr", "")).strip()
            if stderr:
                lines.append(f"stderr:\n{stderr[-500:]}")
        lines.append(again)
        return "\n".join(lines)


def _describe_failure(failure: dict[str, Any]) -> str:
    detail = str(failure.get("detail", "")).strip()
    kind = failure.get("kind", "failed")
    return f"- {failure.get('name', '?')}: {kind}" + (f": {detail[:300]}" if detail else "")


def _last_assistant(messages: Messages) -> str:
    for message in reversed(messages):
        if message["role"] == "assistant":
            return message["content"]
    return ""


def _attempts(messages: Messages) -> int:
    return sum(m["role"] == "assistant" for m in messages)
