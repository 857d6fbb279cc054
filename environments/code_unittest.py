"""``code-unittest-v0``: Python written by the model, run against unit tests in a sandbox.

The reward is the fraction of the task's tests that pass (``all_or_nothing=True``: 1 only
when all pass). Components: ``tests_passed`` (that fraction) and ``compiled`` (1 when the
extracted code compiles). Statuses: ``ok`` when it ran (whatever it scored), ``invalid_format``
when no code block was found, ``timeout``, ``error`` (did not compile or load, memory or output
limit), and ``infra_error`` when the sandbox itself failed: masked by agents, never a 0.

A group of G completions is scored concurrently in the sandbox's warm pool (``score_many``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from grpo_env import Status, Task, TaskSource, VerifiableEnv, VerifyResult
from grpo_env.env import describe_crash
from grpo_env.sandbox import (
    ExecutionRequest,
    ExecutionResult,
    ExecutionStatus,
    IOSuite,
    Limits,
    Sandbox,
    TestSuite,
)
from grpo_env.sandbox.commands import make_sandbox
from grpo_env.sandbox.engines import parse_hosts

from .code_tasks import Split, humaneval_tasks, mbpp_tasks

log = logging.getLogger(__name__)

Extract = Literal["fenced", "whole", "auto"]
CODE_SYSTEM_PROMPT = (
    "You are an expert Python programmer. Answer with working Python code in a single "
    "```python code block."
)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
_OPEN_FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n", re.IGNORECASE)
_PYTHON_TAGS = {"", "python", "python3", "py"}
_STATUS = {
    ExecutionStatus.PASSED: Status.OK,
    ExecutionStatus.FAILED: Status.OK,
    ExecutionStatus.TIMEOUT: Status.TIMEOUT,
    ExecutionStatus.MEMORY_EXCEEDED: Status.ERROR,
    ExecutionStatus.OUTPUT_EXCEEDED: Status.ERROR,
    ExecutionStatus.ERROR: Status.ERROR,
}


def extract_code(text: str, mode: Extract = "fenced") -> str | None:
    """The code to run: the last fenced block tagged python/py (or untagged); ``whole``: the
    text as is; ``auto``: fenced if there is a block, else the whole text. None: no code."""
    if mode == "whole":
        return text
    blocks = [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in _PYTHON_TAGS]
    if blocks:
        return blocks[-1]
    # A completion cut off by the token limit: an opened python block that never closed.
    opened = list(_OPEN_FENCE.finditer(text))
    if opened and "```" not in text[opened[-1].end() :]:
        return text[opened[-1].end() :]
    return text if mode == "auto" else None


class CodeUnittestEnv(VerifiableEnv):
    """Reward = share of unit tests the model's Python passes, run in a sandbox.

    Args:
        tasks: a ``TaskSource`` or tasks whose ``tests`` is a ``TestSuite`` dict. Default:
            HumanEval's ``split``, or the MBPP-style JSONL file ``tasks_path``.
        split: ``train`` or ``test`` (held out) of the task set; HumanEval also ``all``.
        task_set: ``humaneval`` (131 train / 33 held-out problems) or ``beginner`` (the
            seeded beginner set of ``code_beginner``: 600 train / 120 held-out tasks that
            small models solve some of the time). ``grpo-env train`` picks ``beginner`` for
            the embedded default model when no task option is given.
        tasks_path: a JSONL file of tasks, in the shape ``tasks_format`` names.
        tasks_format: ``mbpp`` (``prompt``, ``tests``, optional ``setup``), ``humaneval``,
            ``apps`` (APPS/TACO), ``codecontests`` or ``livecodebench`` (see
            ``code_datasets``). Stdin/stdout tasks run the model's program once per case.
        extract: ``fenced`` (last ```python block; none found = invalid_format), ``whole``
            (the completion is the code) or ``auto``.
        all_or_nothing: reward 1 only when every test passes.
        sandbox: ``docker``, ``local-unsafe`` (no isolation!) or a ``Sandbox`` instance.
        concurrency: sandboxes running at once (a group of G is scored in parallel).
        image: Docker image (default: $GRPO_ENV_SANDBOX_IMAGE or grpo-env-sandbox:1).
        docker_hosts: Docker engines to spread the sandboxes over (URLs: ``unix://``,
            ``tcp://``, ``ssh://``; a list or a comma-separated string). Default:
            $GRPO_ENV_DOCKER_HOSTS, else the environment's engine. Each needs the image.
        timeout_s, memory_mb: limits of one run (see ``grpo_env.sandbox.Limits``).
        case_timeout_s: limit of each test or stdin/stdout case (default: what is left of
            the run's), so one hanging case does not use up the others' time.
    """

    def __init__(
        self,
        tasks: TaskSource | Iterable[Task | Mapping[str, Any]] | None = None,
        *,
        split: Split = "train",
        tasks_path: str | Path | None = None,
        tasks_format: str = "mbpp",
        task_set: Literal["humaneval", "beginner"] = "humaneval",
        extract: Extract = "fenced",
        all_or_nothing: bool = False,
        sandbox: str | Sandbox = "docker",
        concurrency: int = 2,
        image: str | None = None,
        docker_hosts: str | Sequence[str] | None = None,
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        case_timeout_s: float | None = None,
        system_prompt: str | None = CODE_SYSTEM_PROMPT,
        **kwargs: Any,
    ):
        if extract not in ("fenced", "whole", "auto"):
            raise ValueError(f"extract must be 'fenced', 'whole' or 'auto', got {extract!r}")
        if tasks is None:
            tasks = _default_tasks(split, tasks_path, tasks_format, task_set)
        super().__init__(tasks, system_prompt=system_prompt, **kwargs)
        self.extract = extract
        self.all_or_nothing = all_or_nothing
        self.limits = Limits(
            timeout_s=timeout_s, memory_mb=memory_mb, test_timeout_s=case_timeout_s
        )
        self._sandbox_spec = sandbox
        self._concurrency = concurrency
        self._image = image
        self._docker_hosts = parse_hosts(docker_hosts)  # a bad URL fails here, not mid-run
        self._sandbox: Sandbox | None = None if isinstance(sandbox, str) else sandbox

    # ----- the sandbox ----------------------------------------------------------------------

    @property
    def sandbox(self) -> Sandbox:
        """Created on first use, so listing or showing the env needs no Docker."""
        if self._sandbox is None:
            assert isinstance(self._sandbox_spec, str)
            self._sandbox = make_sandbox(
                self._sandbox_spec,
                concurrency=self._concurrency,
                image=self._image,
                docker_hosts=self._docker_hosts,
            )
        return self._sandbox

    def health_check(self) -> None:
        """The sandbox's own check: the engine answers and the image exists."""
        self.sandbox.check()

    def close(self) -> None:
        if isinstance(self._sandbox_spec, str) and self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        super().close()

    # ----- scoring ----------------------------------------------------------------------------

    @property
    def reward_components(self) -> tuple[str, ...]:
        return ("tests_passed", "compiled")

    def request(self, task: Task, code: str) -> ExecutionRequest:
        """The sandbox request that checks ``code`` against ``task``'s tests."""
        tests = task.tests
        if isinstance(tests, TestSuite | IOSuite):
            tests = tests.model_dump()
        if not isinstance(tests, Mapping):
            raise ValueError(f"task {task.id} has no test suite (tests={task.tests!r})")
        if tests.get("kind") == "stdio":
            io = IOSuite.model_validate(tests)
            return ExecutionRequest(code=code, io=io, limits=self.limits)
        suite = TestSuite.model_validate(tests)
        return ExecutionRequest(code=code, tests=suite, limits=self.limits)

    def verify(self, task: Task, completion: str) -> VerifyResult:
        return self.score_many(task, [completion])[0]

    def score_many(self, task: Task, completions: Sequence[str]) -> list[VerifyResult]:
        """Score a group: its runs go to the sandbox pool together, so they run in parallel."""
        codes = [extract_code(c, self.extract) for c in completions]
        try:
            todo = [(i, self.request(task, c)) for i, c in enumerate(codes) if c is not None]
            ran = self.sandbox.run_many([request for _, request in todo]) if todo else []
        except Exception as err:  # a broken task or sandbox says nothing about the policy
            reason = f"verifier raised {describe_crash(err)}"
            log.debug("scoring task %s failed", task.id, exc_info=True)
            return [self._infra_error(task, reason) for _ in completions]
        results: list[VerifyResult] = [_no_code() for _ in completions]
        for (index, _), outcome in zip(todo, ran, strict=True):
            results[index] = self._to_verify(task, outcome)
        return results

    def _to_verify(self, task: Task, result: ExecutionResult) -> VerifyResult:
        if result.is_sandbox_error:
            return self._infra_error(task, f"sandbox error: {result.error}", result.backend)
        fraction = result.pass_fraction
        passed_all = result.status is ExecutionStatus.PASSED
        score = float(passed_all) if self.all_or_nothing else fraction
        failed = [t for t in result.tests if not t.passed]
        return VerifyResult(
            score=score,
            status=_STATUS[result.status],
            components={"tests_passed": fraction, "compiled": float(bool(result.compiled))},
            details={
                "sandbox_status": result.status.value,
                "tests_passed": result.tests_passed,
                "tests_total": result.tests_total,
                "failed_tests": [
                    {"name": t.name, "kind": t.kind, "detail": t.detail} for t in failed[:5]
                ],
                "error": result.error[:500],
                "stdout": result.stdout[-1000:],
                "stderr": result.stderr[-1000:],
                "duration_s": result.duration_s,
            },
        )

    def _infra_error(self, task: Task, reason: str, backend: str = "") -> VerifyResult:
        # The one log line of this sample (the sandbox itself does not log it again).
        log.error("infra_error on task %s: %s", task.id, reason)
        details = {"backend": backend} if backend else {}
        return VerifyResult.infra_error(reason, **details)

    def gold_completion(self, task: Task) -> str | None:
        if not isinstance(task.answer, str) or not task.answer.strip():
            return None
        return f"```python\n{task.answer.rstrip()}\n```"


def _default_tasks(
    split: Split, tasks_path: str | Path | None, tasks_format: str, task_set: str
) -> TaskSource:
    if tasks_path:
        return _tasks_from(tasks_path, tasks_format)
    if task_set == "beginner":
        if split == "all":
            raise ValueError("the beginner set has splits 'train' and 'test' only")
        from .code_beginner import beginner_tasks

        return beginner_tasks(split)
    if task_set != "humaneval":
        raise ValueError(f"task_set must be 'humaneval' or 'beginner', got {task_set!r}")
    return humaneval_tasks(split)


def _tasks_from(path: str | Path, shape: str) -> TaskSource:
    if shape == "mbpp":
        return mbpp_tasks(path)
    from .code_datasets import code_dataset

    return code_dataset(path, shape)


def _no_code() -> VerifyResult:
    return VerifyResult(
        score=0.0,
        status=Status.INVALID_FORMAT,
        components={"tests_passed": 0.0, "compiled": 0.0},
        details={"reason": "no ```python code block in the completion"},
    )
