"""``VerifiableEnv``: a Gymnasium environment whose reward is a verifier's verdict.

An episode is a conversation about one task. ``reset`` picks the task and returns the prompt
as chat messages; ``step(completion)`` appends the model's turn and, when the episode ends,
scores it: ``info["verify"]`` is the ``VerifyResult`` and the reward is its score.

Single-turn environments override only ``verify`` (or pass a ``rubric``). Multi-turn
environments also override ``env_response``, which answers the model's turn or returns None
to end the episode; ``max_turns`` bounds the conversation (``truncated=True`` when reached).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import gymnasium as gym

from grpo_env.rubric import Criterion, CriterionFn, Rubric
from grpo_env.spaces import ChatSpace, UnicodeText
from grpo_env.tasks import ListTaskSource, TaskSource
from grpo_env.types import Task, VerifyResult

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
_RESET_OPTIONS = ("task_id", "task", "index")


class EpisodeError(RuntimeError):
    """``step`` called without a running episode."""


class VerifiableEnv(gym.Env[Messages, str]):
    """Base class of every grpo-env environment.

    Args:
        tasks: a ``TaskSource``, or an iterable of ``Task`` / dicts.
        rubric: how completions are scored: a ``Rubric``, or one function
            ``fn(task, completion) -> float | VerifyResult``. Subclasses may override
            ``verify`` instead.
        system_prompt: prepended to every prompt (unless the task brings its own).
        max_turns: model turns before the episode is truncated (1 = single-turn).
        max_completion_chars: the action space's length bound.
        render_mode: ``"ansi"`` to get the conversation from ``render()``.
    """

    # render_fps is meaningless for text but Gymnasium's checker warns without one.
    metadata = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012

    def __init__(
        self,
        tasks: TaskSource | Iterable[Task | Mapping[str, Any]],
        *,
        rubric: Rubric | CriterionFn | None = None,
        system_prompt: str | None = None,
        max_turns: int = 1,
        max_completion_chars: int = 100_000,
        render_mode: str | None = None,
    ):
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode {render_mode!r} not supported; use one of "
                f"{self.metadata['render_modes']} or None"
            )
        self.tasks = tasks if isinstance(tasks, TaskSource) else ListTaskSource(tasks)
        if rubric is not None and not isinstance(rubric, Rubric):
            rubric = Rubric([Criterion("score", rubric)])
        self.rubric = rubric
        self.system_prompt = system_prompt
        self.max_turns = max_turns
        self.render_mode = render_mode
        # A transcript holds the prompt (possibly few-shot messages) and two messages per turn.
        self.observation_space = ChatSpace(max_messages=2 * max_turns + 64)
        self.action_space = UnicodeText(max_completion_chars)
        self._task: Task | None = None
        self._messages: Messages = []
        self._turns = 0
        self._done = True

    # ----- hooks for subclasses -------------------------------------------------------------

    def verify(self, task: Task, completion: str) -> VerifyResult:
        """Score the model's final completion for ``task``. Override, or pass a rubric."""
        if self.rubric is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no rubric: pass rubric=... or override verify()"
            )
        return self.rubric.score(task, completion)

    def env_response(self, task: Task, messages: Messages) -> str | None:
        """Multi-turn hook: the environment's reply to the model's last turn, or None to end
        the episode. ``messages`` is the transcript so far (a copy). Single-turn: None."""
        return None

    def gold_completion(self, task: Task) -> str | None:
        """A completion that should earn full reward, when the task has a known answer
        (used by ``grpo-env envs check`` and tests). None when there is none."""
        return None

    def reference_answer(self, task: Task) -> str | None:
        """The task's reference final answer, where it has one (``42``, ``\\frac{1}{2}``).
        Envs that declare one get the adversarial probes of ``grpo-env envs check``
        (``grpo_env.probes``): the question restated, near misses and junk must score 0."""
        return None

    def health_check(self) -> None:
        """Raise (one clear message) if the verifier's infrastructure cannot score now: a
        sandbox engine down, an image missing. Called before a run generates anything."""
        return None

    def score_many(self, task: Task, completions: Sequence[str]) -> list[VerifyResult]:
        """Score several single-turn completions of one task (a GRPO group).

        The default scores them one by one through ``verify``; environments whose verifier is
        slow (sandboxes, process pools) override this to score them concurrently.
        """
        return [self._safe_verify(task, c) for c in completions]

    @property
    def reward_components(self) -> tuple[str, ...]:
        """Names of the components ``verify`` reports (for docs and logs)."""
        return self.rubric.names if self.rubric is not None else ("score",)

    # ----- Gymnasium API --------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Messages, dict[str, Any]]:
        """Start an episode. ``options`` may pin the task: ``{"task_id": id}``,
        ``{"task": Task | dict}`` or ``{"index": i}``; otherwise one is drawn with the env's
        seeded RNG."""
        super().reset(seed=seed)
        self._task = self._pick_task(options or {})
        self._messages = self._task.messages(self.system_prompt)
        self._turns = 0
        self._done = False
        return self._observation(), {"task_id": self._task.id, "turn": 0}

    def step(self, action: str) -> tuple[Messages, float, bool, bool, dict[str, Any]]:
        if self._task is None or self._done:
            raise EpisodeError("no episode is running: call reset() before step()")
        if not isinstance(action, str):
            raise TypeError(f"the action is the model's text (str), got {type(action).__name__}")
        task = self._task
        self._messages.append({"role": "assistant", "content": action})
        self._turns += 1
        info: dict[str, Any] = {"task_id": task.id, "turn": self._turns}

        reply = None if self.max_turns == 1 else self.env_response(task, self._observation())
        if reply is not None and self._turns < self.max_turns:
            self._messages.append({"role": "user", "content": reply})
            return self._observation(), 0.0, False, False, info

        # The episode ends: the model stopped (terminated) or ran out of turns (truncated).
        truncated = reply is not None
        self._done = True
        result = self._safe_verify(task, action)
        info["verify"] = result
        info["components"] = dict(result.components)
        return self._observation(), float(result.score), not truncated, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        lines = [f"task {self._task.id}" if self._task else "(no episode: call reset())"]
        for message in self._messages:
            lines.append(f"[{message['role']}]")
            lines.append(message["content"])
        return "\n".join(lines)

    # ----- helpers --------------------------------------------------------------------------

    @property
    def task(self) -> Task | None:
        """The current episode's task."""
        return self._task

    @property
    def transcript(self) -> Messages:
        """A copy of the current conversation."""
        return self._observation()

    def _observation(self) -> Messages:
        # Fresh dicts every time: callers keep observations, and must not see them change.
        return [dict(m) for m in self._messages]

    def _pick_task(self, options: Mapping[str, Any]) -> Task:
        unknown = sorted(set(options) - set(_RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; valid: {list(_RESET_OPTIONS)}")
        if len(set(options) & set(_RESET_OPTIONS)) > 1:
            raise ValueError(f"pass at most one of {list(_RESET_OPTIONS)} to reset()")
        if "task" in options:
            task = options["task"]
            return task if isinstance(task, Task) else Task.model_validate(task)
        if "task_id" in options:
            return self.tasks.get(options["task_id"])
        if "index" in options:
            return self.tasks[int(options["index"])]
        return self.tasks[int(self.np_random.integers(len(self.tasks)))]

    def _safe_verify(self, task: Task, completion: str) -> VerifyResult:
        # A verifier that crashes tells us nothing about the policy: the sample is masked as
        # infra_error (and logged loudly) instead of being scored 0 or crashing training.
        try:
            return self.verify(task, completion)
        except Exception as err:
            reason = f"verifier raised {describe_crash(err)}"
            # One line per sample; the traceback only at debug level (it repeats every sample).
            log.error("%s on task %s: %s", type(self).__name__, task.id, reason)
            log.debug("verifier traceback", exc_info=True)
            return VerifyResult.infra_error(reason)


def describe_crash(err: BaseException) -> str:
    """``Type: message (at file.py:LINE in function)``: where the innermost frame raised."""
    text = str(err).splitlines()[0][:300] if str(err) else ""
    where = ""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        code = tb.tb_frame.f_code
        where = f" (at {code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno} in {code.co_name})"
    return f"{type(err).__name__}: {text}{where}" if text else f"{type(err).__name__}{where}"
