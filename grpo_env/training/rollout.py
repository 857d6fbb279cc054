"""Rollout: turn tasks, an environment and an agent into scored ``Group``s.

One rollout = one task, G completions sampled in one batched call (all of a step's prompts
together), each scored by the environment. An agent that sets ``wants_greedy_sample`` (ReMax)
also gets one greedy completion per task, generated after the samples by the same policy and
scored by the same env in the same call, attached to the Group as ``greedy``. An agent whose
``wants_step_rewards`` is true (process supervision) gets each sample's ``step_rewards``: the
env's character spans (``VerifiableEnv.step_rewards``) mapped onto the sampled tokens; other
agents never pay for them. Multi-turn
environments (``max_turns > 1``) are played turn by turn at the token level by
``grpo_env.training.multiturn``.

Task order comes from ``TaskSampler``, owned by the trainer and seeded by the run's seed alone,
so every agent sees the same tasks in the same order: the basis of fair comparisons.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from grpo_env.env import VerifiableEnv, describe_crash
from grpo_env.policy.generation import Completion
from grpo_env.policy.spans import Decode, token_ends
from grpo_env.tasks import TaskSource
from grpo_env.types import Episode, Group, Task, VerifyResult

log = logging.getLogger(__name__)
Messages = list[dict[str, str]]
# Env classes whose step_rewards crashed or is missing: logged once each, not per sample.
_STEP_CRASHES_LOGGED: set[str] = set()
_NO_STEPS_LOGGED: set[str] = set()


class Actor(Protocol):
    def act(self, observations: Sequence[Messages], n: int) -> list[list[Completion]]: ...

    # Optional: ``wants_greedy_sample: bool`` and ``act_greedy(observations) -> [Completion]``;
    # ``wants_step_rewards: bool`` with a ``policy`` (its ``decode`` maps spans to tokens).


def wants_greedy(actor: Any) -> bool:
    return bool(getattr(actor, "wants_greedy_sample", False))


def wants_steps(actor: Any) -> bool:
    return bool(getattr(actor, "wants_step_rewards", False))


@dataclass
class TaskSampler:
    """Draws tasks as a deterministic function of (seed, stream, draw count).

    Each epoch is a fresh permutation of the source, seeded by (seed, stream, epoch), so the
    whole state is one counter: checkpoints store it and resume exactly. Stream 0 is the
    main sequence; refills (dynamic sampling) use stream 1, so they never shift the main one.
    ``shuffle=False`` walks the source in order (curricula, benchmarks).
    """

    tasks: TaskSource
    seed: int
    stream: int = 0
    drawn: int = 0
    shuffle: bool = True

    def __post_init__(self) -> None:
        self._epoch = -1
        self._order: np.ndarray = np.zeros(0, dtype=np.int64)

    def draw(self, count: int) -> list[Task]:
        size = len(self.tasks)
        if size == 0:
            raise ValueError(f"task source {self.tasks.name} is empty")
        picked = []
        for _ in range(count):
            epoch, position = divmod(self.drawn, size)
            if epoch != self._epoch:
                rng = np.random.default_rng([self.seed, self.stream, epoch])
                order = rng.permutation(size) if self.shuffle else np.arange(size)
                self._order, self._epoch = order, epoch
            picked.append(self.tasks[int(self._order[position])])
            self.drawn += 1
        return picked


def unwrap_env(env: Any) -> VerifiableEnv:
    inner = getattr(env, "unwrapped", env)
    if not isinstance(inner, VerifiableEnv):
        raise TypeError(f"{type(inner).__name__} is not a grpo_env VerifiableEnv")
    return inner


def rollout_groups(
    env: VerifiableEnv,
    actor: Actor,
    tasks: Sequence[Task],
    group_size: int,
    *,
    tag: str,
    first_index: int = 0,
    seeds: Sequence[int] | None = None,
) -> list[Group]:
    """Sample ``group_size`` completions for each task and score them; one Group per task.

    ``tag`` makes group ids unique across the run (the step, the refill round); ``first_index``
    is the first task's place in the step (a rank's share starts there). ``seeds``: one
    sampling seed per task, each group sampled alone from its own seed (so its completions do
    not depend on the other groups or on which rank samples it); None: one batched call.
    """
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a group-relative baseline), got {group_size}")
    if env.max_turns > 1:
        # Multi-turn: token-level episodes (the actor's policy and generator, turn by turn).
        from grpo_env.training.multiturn import rollout_multiturn

        if wants_greedy(actor):
            raise ValueError(
                f"{type(actor).__name__} needs a greedy episode per task as its baseline, which "
                "is played for single-turn environments only; use another agent on "
                f"{type(env).__name__} (max_turns={env.max_turns})"
            )
        if not all(hasattr(actor, a) for a in ("policy", "generator", "sampling")):
            raise TypeError(
                f"{type(actor).__name__} cannot play multi-turn episodes: it needs a policy, "
                "a generator and sampling parameters"
            )
        return rollout_multiturn(
            env, actor, tasks, group_size, tag=tag, first_index=first_index, seeds=seeds
        )
    observations = []
    for task in tasks:
        observation, _ = env.reset(options={"task": task})
        observations.append(observation)
    decode = step_decoder(env, actor)
    greedy: list[Completion | None] = [None] * len(observations)
    if seeds is None:
        completions = actor.act(observations, group_size)
        if wants_greedy(actor):  # after the samples: greedy draws no random numbers anyway
            greedy = list(actor.act_greedy(observations))  # type: ignore[attr-defined]
    else:
        completions = []
        for i, (observation, seed) in enumerate(zip(observations, seeds, strict=True)):
            torch.manual_seed(seed)
            completions.extend(actor.act([observation], group_size))
            if wants_greedy(actor):
                greedy[i] = actor.act_greedy([observation])[0]  # type: ignore[attr-defined]
    groups = []
    for index, (task, observation, samples, best) in enumerate(
        zip(tasks, observations, completions, greedy, strict=True)
    ):
        if len(samples) != group_size:
            raise RuntimeError(f"the actor returned {len(samples)} completions, not {group_size}")
        scored = [*samples, best] if best is not None else list(samples)
        results = env.score_many(task, [c.text for c in scored])  # one call: scored together
        group_id = f"{tag}/{first_index + index}/{task.id}"
        episodes = [
            _episode(task, group_id, observation, sample, result)
            for sample, result in zip(scored, results, strict=True)
        ]
        if decode is not None:
            for episode, sample in zip(episodes[:group_size], samples, strict=True):
                episode.step_rewards = sample_steps(env, task, sample, episode.result, decode)
        groups.append(
            Group(
                group_id=group_id,
                task_id=task.id,
                episodes=episodes[:group_size],
                greedy=episodes[group_size] if best is not None else None,
            )
        )
    return groups


def _episode(
    task: Task, group_id: str, observation: Messages, sample: Completion, result: Any
) -> Episode:
    return Episode(
        task_id=task.id,
        group_id=group_id,
        prompt=observation,
        completion=sample.text,
        reward=float(result.score),
        result=result,
        truncated=sample.truncated,
        prompt_ids=sample.prompt_ids,
        completion_ids=sample.token_ids,
        logprobs=sample.logprobs,
    )


def step_decoder(env: VerifiableEnv, actor: Any) -> Decode | None:
    """The policy's decode when the actor trains on steps (None: no steps are asked for)."""
    if not wants_steps(actor):
        return None
    if not hasattr(actor, "policy"):
        raise TypeError(f"{type(actor).__name__} wants step rewards but has no policy")
    name = type(env).__name__
    if type(env).step_rewards is VerifiableEnv.step_rewards and name not in _NO_STEPS_LOGGED:
        _NO_STEPS_LOGGED.add(name)  # a run that learns nothing should say why
        log.warning("%s scores no steps (step_rewards): process supervision trains on 0", name)
    return actor.policy.decode


def sample_steps(
    env: VerifiableEnv, task: Task, sample: Completion, result: VerifyResult, decode: Decode
) -> list[tuple[int, float]]:
    """A single-turn sample's ``(token end, reward)`` steps from the env's character spans.
    No steps for infra errors (masked anyway); a crashing hook gives none, logged once per env."""
    if result.is_infra_error:
        return []
    try:
        steps = env.safe_step_rewards(task, sample.text, result)
    except Exception as err:  # a step scorer's bug must not end the run: no steps
        name = type(env).__name__
        if name not in _STEP_CRASHES_LOGGED:
            _STEP_CRASHES_LOGGED.add(name)
            log.error("%s.step_rewards raised %s: no steps", name, describe_crash(err))
        return []
    ends = token_ends(sample.token_ids, [end for end, _ in steps], decode)
    return [(end, reward) for end, (_, reward) in zip(ends, steps, strict=True)]
