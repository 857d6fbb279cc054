"""``VerifiableEnv``: a Gymnasium environment whose reward is a verifier's verdict.

An episode is a conversation about one task. ``reset`` picks the task and returns the prompt
as chat messages; ``step(completion)`` appends the model's turn and, when the episode ends,
scores it: ``info["verify"]`` is the ``VerifyResult`` and the reward is its score.

Single-turn environments override only ``verify`` (or pass a ``rubric``). Multi-turn
environments (``max_turns > 1``) also override ``env_response``, which answers the model's turn
with user or tool messages, or returns None to end the episode; ``verify_episode`` scores the
whole transcript at the end (by default: ``verify`` on the last assistant message) and
``turn_reward`` may reward each turn. ``max_turns`` and ``max_episode_tokens`` (enforced by the
token-level rollout, which counts tokens) truncate an episode. A single-turn env may score
spans of its completion with ``step_rewards`` (the steps of process supervision, as turn
rewards are for several turns); the rollout asks only when the agent trains on steps.

Per-episode state never lives on the env instance: ``initial_state(task)`` makes a fresh dict
per episode and every hook receives it, so one env serves the G parallel episodes of a group
(``grpo_env.training.multiturn``) without them sharing anything. ``reset``/``step`` keep one
such state for the episode the Gymnasium API is playing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import gymnasium as gym

from grpo_env.rubric import Criterion, CriterionFn, Rubric
from grpo_env.spaces import ChatSpace, UnicodeText
from grpo_env.tasks import ListTaskSource, TaskSource
from grpo_env.types import Task, VerifyResult

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
Reply = list[dict[str, str]] | str | None
REPLY_ROLES = ("user", "tool")
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
        max_episode_tokens: token budget of an episode after its prompt (the model's tokens
            and the env's between them); the rollout truncates there. None: no budget.
        sum_turn_rewards: add the ``turn_reward`` of every turn to the episode's return
            (otherwise they are only kept as components ``turn_1``, ``turn_2``... and as steps
            for process supervision).
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
        max_episode_tokens: int | None = None,
        sum_turn_rewards: bool = False,
        max_completion_chars: int = 100_000,
        render_mode: str | None = None,
    ):
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        if max_episode_tokens is not None and max_episode_tokens < 1:
            raise ValueError(f"max_episode_tokens must be >= 1 or None, got {max_episode_tokens}")
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
        self.max_episode_tokens = max_episode_tokens
        self.sum_turn_rewards = sum_turn_rewards
        self.render_mode = render_mode
        # A transcript holds the prompt (possibly few-shot messages), the model's turns and the
        # env's replies (a few messages each: tool results).
        self.observation_space = ChatSpace(max_messages=8 * max_turns + 64)
        self.action_space = UnicodeText(max_completion_chars)
        self._task: Task | None = None
        self._messages: Messages = []
        self._turns = 0
        self._state: dict[str, Any] = {}
        self._turn_rewards: list[float | None] = []
        self._done = True

    @property
    def multi_turn(self) -> bool:
        return self.max_turns > 1

    # ----- hooks for subclasses -------------------------------------------------------------

    def verify(self, task: Task, completion: str) -> VerifyResult:
        """Score the model's final completion for ``task``. Override, or pass a rubric."""
        if self.rubric is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no rubric: pass rubric=... or override verify()"
            )
        return self.rubric.score(task, completion)

    def initial_state(self, task: Task) -> dict[str, Any]:
        """A fresh per-episode state (one per episode, never shared), passed to every hook.
        Numeric entries (``tool_calls``, ``tool_errors``...) end up in the episode's counters."""
        return {}

    def env_response(self, task: Task, messages: Messages, state: dict[str, Any]) -> Reply:
        """Multi-turn hook: the env's answer to the model's last turn: messages of role
        ``user`` or ``tool`` (a str is one user message), or None to end the episode.
        ``messages`` is a copy of the transcript, ending with the model's turn; ``state`` is
        this episode's (update it freely). Single-turn envs never get here."""
        return None

    def turn_reward(self, task: Task, messages: Messages, state: dict[str, Any]) -> float | None:
        """The reward of the turn just taken (None: none). Kept as components ``turn_k``,
        the steps of process supervision, and summed into the return if ``sum_turn_rewards``."""
        return None

    def step_rewards(
        self, task: Task, completion: str, result: VerifyResult
    ) -> list[tuple[int, float]] | None:
        """Single-turn: the completion's steps as ``(character end, reward)`` pairs, a step
        covering the text before its end (None: no steps). ``result`` is the completion's
        verdict, already computed, for a final step on the answer. The single-turn twin of
        ``turn_reward``: the steps of process supervision, asked for only by agents that use
        them; the return stays ``verify``'s score."""
        return None

    def verify_episode(self, task: Task, messages: Messages, state: dict[str, Any]) -> VerifyResult:
        """Score the whole transcript once the episode ends. The default scores the last
        assistant message with ``verify``, so single-turn envs need nothing else."""
        return self.verify(task, last_assistant_content(messages))

    def tool_schemas(self) -> list[dict[str, Any]] | None:
        """OpenAI-style function schemas of the env's tools, rendered into the prompt by the
        chat template (``tools=``); None: no tools."""
        return None

    def gold_completion(self, task: Task) -> str | None:
        """A completion that should earn full reward, when the task has a known answer
        (used by ``grpo-env envs check`` and tests). None when there is none."""
        return None

    def gold_action(self, task: Task, messages: Messages) -> str | None:
        """Multi-turn: the gold next turn given the transcript so far (``grpo-env envs check``
        plays a gold episode with it). The default plays ``gold_completion`` every turn."""
        return self.gold_completion(task)

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
        self._state = self.initial_state(self._task)
        self._turn_rewards = []
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
        if not self.multi_turn:
            self._done = True
            result = self._safe_verify(task, action)
            info["verify"] = result
            info["components"] = dict(result.components)
            return self._observation(), float(result.score), True, False, info

        turn = self.safe_turn_reward(task, self._observation(), self._state)
        self._turn_rewards.append(turn)
        info["turn_reward"] = turn
        reply = self.safe_env_response(task, self._observation(), self._state)
        if reply is not None and self._turns < self.max_turns:
            self._messages.extend(reply)
            reward = float(turn) if (turn is not None and self.sum_turn_rewards) else 0.0
            return self._observation(), reward, False, False, info

        # The episode ends: the env ended it (terminated) or it ran out of turns (truncated).
        truncated = reply is not None
        self._done = True
        result = self.score_episode(task, self._observation(), self._state, self._turn_rewards)
        info["verify"] = result
        info["components"] = dict(result.components)
        # Gymnasium's return is the sum of step rewards: earlier turns already paid theirs.
        reward = float(result.score)
        if self.sum_turn_rewards and not result.is_infra_error:
            reward -= sum(r for r in self._turn_rewards[:-1] if r is not None)
        return self._observation(), reward, not truncated, truncated, info

    # ----- episode helpers (the token-level rollout calls these too) -------------------------

    def safe_env_response(
        self, task: Task, messages: Messages, state: dict[str, Any]
    ) -> Messages | None:
        """``env_response`` normalised: a list of fresh ``user``/``tool`` messages, or None."""
        return normalize_reply(self.env_response(task, messages, state))

    def safe_turn_reward(
        self, task: Task, messages: Messages, state: dict[str, Any]
    ) -> float | None:
        value = self.turn_reward(task, messages, state)
        return None if value is None else float(value)

    def safe_step_rewards(
        self, task: Task, completion: str, result: VerifyResult
    ) -> list[tuple[int, float]]:
        """``step_rewards`` checked: ends within the text, finite rewards, sorted by end
        ([] for none). Raises ValueError on a malformed answer (the rollout logs it)."""
        steps = self.step_rewards(task, completion, result) or []
        checked = []
        for end, reward in steps:
            if not 0 <= int(end) <= len(completion) or not math.isfinite(float(reward)):
                raise ValueError(f"bad step ({end}, {reward}) for a {len(completion)}-char text")
            checked.append((int(end), float(reward)))
        return sorted(checked, key=lambda step: step[0])

    def score_episode(
        self,
        task: Task,
        messages: Messages,
        state: dict[str, Any],
        turn_rewards: list[float | None],
    ) -> VerifyResult:
        """The episode's verdict: ``verify_episode`` (a crash is an infra_error), the turn
        rewards as components ``turn_k``, summed into the score if ``sum_turn_rewards``."""
        try:
            result = self.verify_episode(task, messages, state)
        except Exception as err:
            reason = f"verifier raised {describe_crash(err)}"
            log.error("%s on task %s: %s", type(self).__name__, task.id, reason)
            return VerifyResult.infra_error(reason)
        turns = {f"turn_{k}": r for k, r in enumerate(turn_rewards, 1) if r is not None}
        if not turns or result.is_infra_error:
            return result
        score = result.score + (sum(turns.values()) if self.sum_turn_rewards else 0.0)
        return result.model_copy(
            update={"score": float(score), "components": {**result.components, **turns}}
        )

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


def last_assistant_content(messages: Messages) -> str:
    """The content of the last assistant message ("" when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "assistant":
            return message.get("content", "")
    return ""


def normalize_reply(reply: Reply) -> Messages | None:
    """An ``env_response`` as fresh message dicts (a str is one user message), or None."""
    if reply is None:
        return None
    if isinstance(reply, str):
        return [{"role": "user", "content": reply}]
    if not isinstance(reply, list) or not reply:
        raise TypeError(
            "env_response must return a str, a non-empty list of messages, or None (to end "
            f"the episode); got {reply!r:.80}"
        )
    messages = []
    for message in reply:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in REPLY_ROLES or not isinstance(message.get("content"), str):
            raise ValueError(
                f"env_response messages need a role in {REPLY_ROLES} and str content; got "
                f"{message!r:.80}"
            )
        messages.append({"role": role, "content": message["content"]})
    return messages


def scripted_turn(turns: Sequence[str] | None, messages: Messages) -> str | None:
    """For ``gold_action``: the next of a scripted episode's model turns, given the transcript
    so far (the turns already taken are its assistant messages); the last one repeats."""
    if not turns:
        return None
    taken = sum(m["role"] == "assistant" for m in messages)
    return turns[min(taken, len(turns) - 1)]


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
