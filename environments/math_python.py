"""``math-python-v0``: math problems with a ``python`` tool, run in the Docker sandbox.

The tasks and the checker are the math environments' (``environments.math``): the shipped
GSM8K/MATH-style set, a JSONL file (``path=...``), or a reasoning-gym dataset
(``dataset="gsm_symbolic"``...). The model may call ``python`` (stdout/stderr back, cut to
``max_output_chars``, stopped after ``timeout_s``) for up to ``max_turns - 1`` turns, then
answers without a tool call; only that last message, tool calls removed, is checked, so an
answer hidden in a tool call or left in a tool's output earns nothing.

A sandbox that fails ends the episode with ``infra_error`` (masked by agents, never a 0).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from grpo_env.env import scripted_turn
from grpo_env.environments.math.data import ShippedSplit
from grpo_env.environments.math.env import MathEnv, ReasoningGymMathEnv
from grpo_env.sandbox import Sandbox
from grpo_env.tasks import TaskSource
from grpo_env.tools import ToolEnv, strip_tool_calls
from grpo_env.types import Task, VerifyResult

from .python_tool import PythonSandboxTool

MATH_PYTHON_SYSTEM_PROMPT = (
    "Solve the problem. You may run Python to calculate: call the `python` tool with a "
    "complete program that print()s the values you need, and you get back what it printed "
    "(each call starts from scratch). When you know the answer, reply without a tool call "
    "and end with the final answer alone in a box, like \\boxed{42}: just the number, "
    "expression, set or interval, without units."
)


class MathPythonEnv(ToolEnv):
    """Math with a sandboxed ``python`` tool; the final answer is scored by the math checker.

    Args:
        tasks: a ``TaskSource`` or task dicts (``answer`` = the final answer).
        dataset: a reasoning-gym dataset (``gsm_symbolic``, ``chain_sum``...) instead of the
            shipped set; ``size``, ``seed`` and extra keyword arguments configure it.
        path: a GSM8K- or MATH-form JSONL file (as ``math-v0``).
        split: ``train`` or ``test`` (held out) of the shipped set or the reasoning-gym one.
        max_turns: model turns, tool turns included (default 4: up to 3 rounds of tool use).
        sandbox: ``docker`` (default), ``local-unsafe`` (no isolation!) or a ``Sandbox``.
        concurrency: programs running at once; timeout_s, memory_mb: limits of one program.
        max_calls_per_turn: tool calls run per turn (the rest are refused, counted as errors).
        max_output_chars: each tool message is cut to about this many characters.
        last_number_fallback: the math checker's option (off: the answer must be boxed).
    """

    def __init__(
        self,
        tasks: TaskSource | Iterable[Task | Mapping[str, Any]] | None = None,
        *,
        dataset: str | None = None,
        path: str | Path | None = None,
        split: ShippedSplit | None = None,
        size: int | None = None,
        seed: int = 0,
        max_turns: int = 4,
        sandbox: str | Sandbox = "docker",
        concurrency: int = 2,
        image: str | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 256,
        max_calls_per_turn: int = 4,
        max_output_chars: int = 2000,
        last_number_fallback: bool = False,
        system_prompt: str | None = MATH_PYTHON_SYSTEM_PROMPT,
        render_mode: str | None = None,
        max_completion_chars: int = 100_000,
        **config: Any,
    ):
        checker: MathEnv | ReasoningGymMathEnv
        if dataset is not None:
            if tasks is not None or path is not None:
                raise ValueError("pass dataset, or tasks/path, not both")
            checker = ReasoningGymMathEnv(
                dataset,
                split=split or "train",
                size=size,
                seed=seed,
                last_number_fallback=last_number_fallback,
                **config,
            )
        else:
            if config or size is not None:
                raise ValueError(f"options for reasoning-gym need dataset=...: {sorted(config)}")
            checker = MathEnv(
                tasks, path=path, split=split, last_number_fallback=last_number_fallback
            )
        self.checker = checker  # a single-turn math env: tasks, checker, probes' scoring
        self.python_tool = PythonSandboxTool(
            sandbox,
            concurrency=concurrency,
            image=image,
            timeout_s=timeout_s,
            memory_mb=memory_mb,
            max_output_chars=max_output_chars,
        )
        super().__init__(
            checker.tasks,
            tools=[self.python_tool.tool()],
            max_turns=max_turns,
            max_calls_per_turn=max_calls_per_turn,
            max_output_chars=max_output_chars,
            system_prompt=system_prompt,
            render_mode=render_mode,
            max_completion_chars=max_completion_chars,
        )

    # ----- scoring: the math env's checker on the final answer -----------------------------

    @property
    def reward_components(self) -> tuple[str, ...]:
        return self.checker.reward_components

    def verify(self, task: Task, completion: str) -> VerifyResult:
        return self.checker.verify(task, strip_tool_calls(completion))

    def score_many(self, task: Task, completions: Sequence[str]) -> list[VerifyResult]:
        return self.checker.score_many(task, [strip_tool_calls(c) for c in completions])

    def reference_answer(self, task: Task) -> str | None:
        return self.checker.reference_answer(task)

    def gold_completion(self, task: Task) -> str | None:
        """A final answer given without the tool (one turn)."""
        return self.checker.gold_completion(task)

    def gold_action(self, task: Task, messages: list[dict[str, str]]) -> str | None:
        """The next turn of the gold episode (``grpo-env envs check`` plays it)."""
        return scripted_turn(self.gold_turns(task), messages)

    def gold_turns(self, task: Task) -> list[str] | None:
        """A gold episode: one ``python`` call that prints the answer, then the boxed answer."""
        answer = self.reference_answer(task)
        if answer is None:
            return None
        call = {"name": "python", "arguments": {"code": f"print({answer!r})"}}
        return [
            f"Let me check with Python.\n<tool_call>\n{json.dumps(call)}\n</tool_call>",
            f"The program printed the answer.\nThe final answer is $\\boxed{{{answer}}}$.",
        ]

    # ----- the sandbox ----------------------------------------------------------------------

    def health_check(self) -> None:
        self.python_tool.check()

    def close(self) -> None:
        self.python_tool.close()
        super().close()
