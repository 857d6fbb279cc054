"""The math environments: a completion's final answer, checked against the task's answer.

- ``MathEnv`` (``math-v0``): tasks from a JSON-lines file in GSM8K or MATH form, or the small
  dataset shipped with grpo-env.
- ``ReasoningGymMathEnv`` (``math-chain-sum-v0``, ``math-countdown-v0``...): procedural
  tasks from reasoning-gym with a hash-split held-out set. Where many answers are right
  (countdown: any expression that reaches the target) reasoning-gym's own ``score_answer``
  judges instead of answer equivalence.

``math-chain-sum`` also scores the steps of an answer for process supervision
(``step_rewards``): every distinct intermediate result written after an ``=`` that is a
left-to-right partial sum of the question's terms earns 1, a wrong one 0, the question's own
numbers are no steps, and a final step carries the verdict (``environments.math.chain_steps``).

Reward components: ``correct`` (1 or 0); with ``require_format=True`` also ``format`` (the
think/answer format of ``format-v0``), which gates ``correct`` and adds ``format_weight``.
Checks run in the shared worker pool with a hard time limit; ``score_many`` checks a whole
GRPO group concurrently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from grpo_env.env import VerifiableEnv
from grpo_env.environments.format import check_format, format_result
from grpo_env.environments.math.answer_form import ANSWER_KINDS, AnswerKind
from grpo_env.environments.math.chain_steps import chain_sum_steps, chain_terms
from grpo_env.environments.math.data import ShippedSplit, load_math_jsonl, shipped_math_tasks
from grpo_env.environments.math.pool import (
    DEFAULT_TIMEOUT_S,
    CheckerPool,
    check_request,
    shared_pool,
)
from grpo_env.environments.math.sources import BlockIndexedReasoningGymSource
from grpo_env.probes import prompt_text
from grpo_env.rubric import Criterion, CriterionFn, Rubric
from grpo_env.tasks import ReasoningGymSource, Split, TaskSource
from grpo_env.types import Task, VerifyResult

MATH_SYSTEM_PROMPT = (
    "Solve the problem step by step. End with the final answer alone in a box, like "
    "\\boxed{42}: just the number, expression, set or interval, without units."
)
MATH_FORMAT_SYSTEM_PROMPT = (
    "Think about the problem, then answer. Respond in exactly this format and nothing else:\n"
    "<think>\nyour reasoning\n</think>\n<answer>\n\\boxed{your final answer}\n</answer>"
)
# reasoning-gym datasets whose answers are not unique: their own scorer decides.
SELF_SCORED_DATASETS = frozenset({"countdown"})
# Generators too slow to scan in order (countdown solves each puzzle): generated on demand.
SLOW_GENERATORS = frozenset({"countdown"})
# reasoning-gym datasets whose task is to compute a number: the answer must be a numeral.
NUMBER_DATASETS = frozenset({"chain_sum", "basic_arithmetic", "gsm_symbolic"})
Scorer = Literal["auto", "math", "reasoning_gym"]


class _MathRewardEnv(VerifiableEnv):
    """What the math environments share: rubric, pool, concurrent group scoring, gold."""

    def __init__(
        self,
        tasks: TaskSource | Iterable[Task | Mapping[str, Any]],
        *,
        require_format: bool,
        format_weight: float,
        system_prompt: str | None,
        timeout: float,
        last_number_fallback: bool,
        prose_conclusion: bool,
        pool: CheckerPool | None,
        render_mode: str | None,
        max_completion_chars: int,
        answer_kind: AnswerKind | None,
    ):
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        if answer_kind is not None and answer_kind not in ANSWER_KINDS:
            raise ValueError(f"answer_kind must be one of {ANSWER_KINDS}, got {answer_kind!r}")
        self.answer_kind = answer_kind
        self.require_format = require_format
        self.format_weight = format_weight
        self.timeout = timeout
        self.last_number_fallback = last_number_fallback
        self.prose_conclusion = prose_conclusion
        self._pool = pool
        if system_prompt is None:
            system_prompt = MATH_FORMAT_SYSTEM_PROMPT if require_format else MATH_SYSTEM_PROMPT
        super().__init__(
            tasks,
            rubric=self._build_rubric(self._check_correct),
            system_prompt=system_prompt,
            render_mode=render_mode,
            max_completion_chars=max_completion_chars,
        )

    # ----- what subclasses define -----------------------------------------------------------

    def _request(self, task: Task, completion: str) -> dict[str, Any]:
        raise NotImplementedError

    def _preload(self) -> dict[str, Any] | None:
        return None

    def reference_answer(self, task: Task) -> str | None:
        return None if task.answer is None else str(task.answer)

    def task_answer_kind(self, task: Task) -> AnswerKind:
        """What the task's answer must be: the env's ``answer_kind`` when given, else a
        number for GSM8K-form tasks and any equivalent expression otherwise."""
        if self.answer_kind is not None:
            return self.answer_kind
        return "number" if task.metadata.get("format") == "gsm8k" else "expression"

    def _check_request(self, task: Task, completion: str) -> dict[str, Any]:
        return check_request(
            str(task.answer),
            completion,
            last_number_fallback=self.last_number_fallback,
            prose_conclusion=self.prose_conclusion,
            question=prompt_text(task),
            answer_kind=self.task_answer_kind(task),
        )

    # ----- scoring --------------------------------------------------------------------------

    @property
    def pool(self) -> CheckerPool:
        return self._pool if self._pool is not None else shared_pool()

    def _build_rubric(self, correct: CriterionFn) -> Rubric:
        if not self.require_format:
            return Rubric([Criterion("correct", correct)])
        return Rubric(
            [
                Criterion("format", self._check_format, weight=self.format_weight),
                Criterion("correct", correct, gated_by=("format",)),
            ]
        )

    def _check_format(self, task: Task, completion: str) -> VerifyResult:
        return format_result(completion)

    def _check_correct(self, task: Task, completion: str) -> VerifyResult:
        request = self._request(task, completion)
        return _as_criterion(self.pool.run(request, timeout=self.timeout, preload=self._preload()))

    def score_many(self, task: Task, completions: Sequence[str]) -> list[VerifyResult]:
        """Score a GRPO group: format checks here, correctness checks concurrently in the
        pool (each distinct completion once), then the same rubric as ``step``."""
        if self.max_turns != 1:
            return super().score_many(task, completions)
        distinct = list(dict.fromkeys(completions))
        if self.require_format:
            distinct = [c for c in distinct if check_format(c).ok]
        results = self.pool.run_many(
            [self._request(task, c) for c in distinct],
            timeout=self.timeout,
            preload=self._preload(),
        )
        known = dict(zip(distinct, map(_as_criterion, results), strict=True))
        rubric = self._build_rubric(lambda _task, completion: known[completion])
        return [rubric.score(task, c) for c in completions]

    def gold_completion(self, task: Task) -> str | None:
        answer = self.reference_answer(task)
        if answer is None:
            return None
        final = f"The final answer is $\\boxed{{{answer}}}$."
        if self.require_format:
            return f"<think>\nI know how to solve this.\n</think>\n<answer>\n{final}\n</answer>"
        return f"Let me solve this step by step.\n{final}"


class MathEnv(_MathRewardEnv):
    """``math-v0``: math word problems and competition problems with a reference answer.

    Args:
        tasks: a ``TaskSource`` or task dicts (``answer`` = the final answer).
        path: a JSON-lines file in GSM8K form (``question``, ``answer`` ending ``#### N``) or
            MATH form (``problem`` with ``answer``, or ``solution`` with ``\\boxed{}``).
        split: ``"train"`` or ``"test"`` (held out) of the shipped dataset, used when neither
            ``tasks`` nor ``path`` is given (default ``"train"``).
        require_format: demand ``<think>…</think><answer>…</answer>``; adds the ``format``
            component, which gates ``correct``.
        format_weight: reward for the format itself (0: it only gates).
        system_prompt: replaces the default instruction to box the final answer.
        timeout: wall-clock limit of one check, in seconds.
        last_number_fallback: accept the last number of an answer with no marked answer.
        prose_conclusion: with no marked answer, read the value the closing sentence
            concludes with ("Hence $y \\le 3$ is the answer."); off by default, since the
            reward should be for the answer format the prompt asked for (on: for ``eval`` of
            models prompted otherwise).
        pool: the checker pool (default: the shared one).
        answer_kind: ``"number"`` or ``"expression"`` (see
            ``environments.math.answer_form``); default: a number for GSM8K-form tasks, any
            equivalent expression for MATH-form tasks.
    """

    def __init__(
        self,
        tasks: TaskSource | Iterable[Task | Mapping[str, Any]] | None = None,
        *,
        path: str | Path | None = None,
        split: ShippedSplit | None = None,
        require_format: bool = False,
        format_weight: float = 0.0,
        system_prompt: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        last_number_fallback: bool = False,
        prose_conclusion: bool = False,
        pool: CheckerPool | None = None,
        render_mode: str | None = None,
        max_completion_chars: int = 100_000,
        answer_kind: AnswerKind | None = None,
    ):
        if tasks is not None and path is not None:
            raise ValueError("pass tasks or path, not both")
        if split is not None and (tasks is not None or path is not None):
            raise ValueError(
                "split selects the shipped dataset; with your own tasks or path, pass the "
                "file of the split you want"
            )
        if path is not None:
            tasks = load_math_jsonl(path)
        elif tasks is None:
            tasks = shipped_math_tasks(split or "train")
        super().__init__(
            tasks,
            require_format=require_format,
            format_weight=format_weight,
            system_prompt=system_prompt,
            timeout=timeout,
            last_number_fallback=last_number_fallback,
            prose_conclusion=prose_conclusion,
            pool=pool,
            render_mode=render_mode,
            max_completion_chars=max_completion_chars,
            answer_kind=answer_kind,
        )

    def _request(self, task: Task, completion: str) -> dict[str, Any]:
        if task.answer is None or not str(task.answer).strip():
            raise ValueError(f"task {task.id} has no reference answer")
        return self._check_request(task, completion)


class ReasoningGymMathEnv(_MathRewardEnv):
    """Procedural math from reasoning-gym (``math-gsm-symbolic-v0``, ``math-chain-sum-v0``...).

    Args:
        dataset: reasoning-gym dataset name (``chain_sum``, ``countdown``...).
        split: ``"train"``, or ``"test"`` for the held-out questions (a fixed hash partition
            of the generator's stream: no question is in both).
        size: number of tasks (default 10,000 train / 200 test).
        seed: generator seed.
        test_fraction: share of the stream held out.
        scorer: ``"math"`` (answer equivalence), ``"reasoning_gym"`` (the dataset's own
            ``score_answer``, full marks only) or ``"auto"`` (reasoning-gym's for datasets
            with many right answers, such as countdown).
        answer_kind: what the answer must be (default: ``"number"`` for the arithmetic
            datasets chain_sum, basic_arithmetic and gsm_symbolic, else ``"expression"``).
        **config: passed to ``reasoning_gym.create_dataset`` (``min_terms=2``...).

    The other arguments are those of ``MathEnv``.
    """

    def __init__(
        self,
        dataset: str,
        *,
        split: Split = "train",
        size: int | None = None,
        seed: int = 0,
        test_fraction: float = 0.1,
        scorer: Scorer = "auto",
        require_format: bool = False,
        format_weight: float = 0.0,
        system_prompt: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        last_number_fallback: bool = False,
        prose_conclusion: bool = False,
        pool: CheckerPool | None = None,
        render_mode: str | None = None,
        max_completion_chars: int = 100_000,
        answer_kind: AnswerKind | None = None,
        **config: Any,
    ):
        if scorer not in ("auto", "math", "reasoning_gym"):
            raise ValueError(f"scorer must be 'auto', 'math' or 'reasoning_gym', got {scorer!r}")
        if scorer == "auto":
            scorer = "reasoning_gym" if dataset in SELF_SCORED_DATASETS else "math"
        self.dataset = dataset
        self.scorer = scorer
        self.config = _jsonable(config, f"reasoning-gym config of {dataset}")
        source_class = (
            BlockIndexedReasoningGymSource if dataset in SLOW_GENERATORS else ReasoningGymSource
        )
        source = source_class(
            dataset, split=split, size=size, seed=seed, test_fraction=test_fraction, **config
        )
        super().__init__(
            source,
            require_format=require_format,
            format_weight=format_weight,
            system_prompt=system_prompt,
            timeout=timeout,
            last_number_fallback=last_number_fallback,
            prose_conclusion=prose_conclusion,
            pool=pool,
            render_mode=render_mode,
            max_completion_chars=max_completion_chars,
            answer_kind=answer_kind or ("number" if dataset in NUMBER_DATASETS else None),
        )

    def _request(self, task: Task, completion: str) -> dict[str, Any]:
        if self.scorer == "math":
            return self._check_request(task, completion)
        entry = {
            "question": task.prompt if isinstance(task.prompt, str) else "",
            "answer": task.answer,
            "metadata": task.metadata.get("entry_metadata", {}),
        }
        return {
            "op": "dataset_check",
            "dataset": self.dataset,
            "config": self.config,
            "entry": _jsonable(entry, f"task {task.id}"),
            "completion": completion,
            "last_number_fallback": self.last_number_fallback,
            "prose_conclusion": self.prose_conclusion,
        }

    def step_rewards(
        self, task: Task, completion: str, result: VerifyResult
    ) -> list[tuple[int, float]] | None:
        """chain_sum: the intermediate results and the verdict (``chain_steps``); other
        datasets have no steps."""
        if self.dataset != "chain_sum":
            return None
        expression = task.metadata.get("entry_metadata", {}).get("expression")
        if expression is None:  # "... problem: 4 - 1 - 7 ="
            expression = prompt_text(task).rsplit(":", 1)[-1].split("=")[0]
        return chain_sum_steps(chain_terms(expression), completion, result.score)

    def _preload(self) -> dict[str, Any] | None:
        if self.scorer == "math":
            return None
        return {"op": "load_dataset", "dataset": self.dataset, "config": self.config}


def _as_criterion(result: VerifyResult) -> VerifyResult:
    # The rubric names the component "correct" itself; the checker's own copy would
    # come back as "correct/correct".
    return result.model_copy(update={"components": {}})


def _jsonable(value: Any, what: str) -> Any:
    """``value`` as plain JSON data (it crosses to the worker process as JSON)."""
    try:
        return json.loads(json.dumps(value, default=_to_builtin))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} cannot be sent to the checker: {err}") from err


def _to_builtin(value: Any) -> Any:
    # numpy scalars and arrays from reasoning-gym metadata
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
