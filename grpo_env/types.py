"""The data that crosses room boundaries: tasks, chat messages, verifier verdicts, episodes, groups.

These are pydantic models because they are the boundary: task files are parsed into them,
verifiers return them, logs and result files are written from them.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "user", "assistant", "tool"]


class Message(BaseModel):
    """One chat turn, in the shape chat templates expect."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class Task(BaseModel):
    """One problem: what the model is asked, and what the verifier needs to score the answer.

    ``answer`` holds a reference answer (math), ``tests`` whatever a code verifier runs; either
    may be absent. ``metadata`` travels with the task into logs (difficulty, source, split...).
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    prompt: str | list[Message]
    answer: Any = None
    tests: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_empty(cls, value: str | list[Message]) -> str | list[Message]:
        if isinstance(value, str) and not value.strip():
            raise ValueError("prompt is empty")
        if isinstance(value, list) and not value:
            raise ValueError("prompt has no messages")
        return value

    def messages(self, system_prompt: str | None = None) -> list[dict[str, str]]:
        """The prompt as fresh chat-message dicts, with ``system_prompt`` first if given.

        A system prompt already inside a message-list prompt wins over the env's default.
        """
        if isinstance(self.prompt, str):
            turns = [{"role": "user", "content": self.prompt}]
        else:
            turns = [m.as_dict() for m in self.prompt]
        if system_prompt and not (turns and turns[0]["role"] == "system"):
            turns.insert(0, {"role": "system", "content": system_prompt})
        return turns


class Status(StrEnum):
    """How a verification ended.

    ``infra_error`` means the verifier itself failed (sandbox down, checker crashed): the
    sample says nothing about the policy, so agents mask it out instead of scoring it 0.
    """

    OK = "ok"
    INVALID_FORMAT = "invalid_format"
    TIMEOUT = "timeout"
    ERROR = "error"
    INFRA_ERROR = "infra_error"


# When several checks combine (a rubric), the overall status is the most severe one.
STATUS_SEVERITY: dict[Status, int] = {
    Status.OK: 0,
    Status.INVALID_FORMAT: 1,
    Status.ERROR: 2,
    Status.TIMEOUT: 3,
    Status.INFRA_ERROR: 4,
}


def worst_status(statuses: list[Status]) -> Status:
    return max(statuses, key=STATUS_SEVERITY.__getitem__, default=Status.OK)


class VerifyResult(BaseModel):
    """A verifier's verdict on one completion.

    ``score`` is the reward. ``components`` keeps every named part (``correct``, ``format``,
    ``tests_passed``...) so logs and agents can see what the score is made of. ``details``
    says why, for humans (extracted answer, failing test, timeout cause).
    """

    model_config = ConfigDict(extra="forbid")

    score: float
    status: Status = Status.OK
    components: dict[str, float] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("score")
    @classmethod
    def _finite(cls, value: float) -> float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"score must be finite, got {value}")
        return value

    @model_validator(mode="after")
    def _infra_error_scores_nothing(self) -> VerifyResult:
        # An infra error must never look like a real 0 (or 1): agents mask it by status, and
        # a score of 0 here keeps sums sane for code that forgets to.
        if self.status is Status.INFRA_ERROR and self.score != 0.0:
            raise ValueError("an infra_error result must have score 0 (it is masked, not scored)")
        return self

    @property
    def is_infra_error(self) -> bool:
        return self.status is Status.INFRA_ERROR

    @classmethod
    def infra_error(cls, reason: str, **details: Any) -> VerifyResult:
        return cls(score=0.0, status=Status.INFRA_ERROR, details={"reason": reason, **details})


class Episode(BaseModel):
    """One sampled episode for one task, scored.

    Token ids and logprobs are present when a policy produced the completion (they are what
    the agents train on); an env used by hand leaves them empty.

    Multi-turn episodes: ``completion_ids`` is every token after the prompt, the model's turns
    and the env's tokens between them, exactly as the model saw them; ``loss_mask`` marks the
    model's tokens (1) and the env's (0), and ``logprobs`` holds the sampler's logprob of each
    model token (0.0 on env tokens). An empty ``loss_mask`` means all ones (single-turn).
    ``completion`` is the last model turn's text (the final answer), ``messages`` the whole
    transcript, ``reward`` the return (the verdict's score, turn rewards included when the env
    sums them). ``step_rewards`` are ``(token end, reward)`` pairs, the steps of process
    supervision: a step covers the completion tokens before its end.
    """

    model_config = ConfigDict(extra="forbid")

    task_id: str
    group_id: str
    prompt: list[dict[str, str]]
    completion: str
    reward: float
    result: VerifyResult
    truncated: bool = False
    prompt_ids: list[int] = Field(default_factory=list)
    completion_ids: list[int] = Field(default_factory=list)
    logprobs: list[float] = Field(default_factory=list)
    loss_mask: list[int] = Field(default_factory=list)
    turns: int = 1
    messages: list[dict[str, str]] = Field(default_factory=list)
    turn_rewards: list[float | None] = Field(default_factory=list)
    step_rewards: list[tuple[int, float]] = Field(default_factory=list)
    tool_calls: int = 0
    tool_errors: int = 0
    truncated_by: Literal["turns", "tokens"] | None = None
    counters: dict[str, float] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _logprobs_match_tokens(self) -> Episode:
        if self.logprobs and len(self.logprobs) != len(self.completion_ids):
            raise ValueError(
                f"{len(self.logprobs)} logprobs for {len(self.completion_ids)} completion tokens"
            )
        if self.loss_mask and len(self.loss_mask) != len(self.completion_ids):
            raise ValueError(
                f"{len(self.loss_mask)} loss-mask entries for {len(self.completion_ids)} tokens"
            )
        if any(v not in (0, 1) for v in self.loss_mask):
            raise ValueError("loss_mask holds 0 (env token) and 1 (model token) only")
        return self

    @property
    def model_mask(self) -> list[int]:
        """The loss mask with the single-turn default filled in (all ones)."""
        return self.loss_mask or [1] * len(self.completion_ids)

    @property
    def model_tokens(self) -> int:
        """How many completion tokens the model sampled (env tokens left out)."""
        return sum(self.loss_mask) if self.loss_mask else len(self.completion_ids)


class Group(BaseModel):
    """The G episodes sampled for one task: the unit GRPO's baseline is computed over.

    ``greedy``: the greedy (temperature 0) completion of the same prompt, scored by the same
    env, when the agent asked the rollout for one (ReMax's baseline). It is not one of the G
    samples: no loss is taken on it and the reward statistics leave it out.
    """

    model_config = ConfigDict(extra="forbid")

    group_id: str
    task_id: str
    episodes: list[Episode]
    greedy: Episode | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Group:
        if not self.episodes:
            raise ValueError(f"group {self.group_id!r} has no episodes")
        for episode in [*self.episodes, *([self.greedy] if self.greedy else [])]:
            if episode.group_id != self.group_id or episode.task_id != self.task_id:
                raise ValueError(
                    f"episode of task {episode.task_id!r}/group {episode.group_id!r} put in "
                    f"group {self.group_id!r} of task {self.task_id!r}"
                )
        return self

    @property
    def rewards(self) -> list[float]:
        return [e.reward for e in self.episodes]

    def __len__(self) -> int:
        return len(self.episodes)
