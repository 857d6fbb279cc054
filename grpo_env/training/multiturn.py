"""Batched multi-turn rollout: every episode of a step advances turn by turn, token in, token out.

    episodes = G copies of each task's prompt (one per sample), each with its own env state
    while some episodes run:
        one batched generate over the running episodes (G x prompts at the first turn; one
            row per running episode after), each continuing from its own token ids
        the env answers each episode's turn (concurrently: tool calls, sandboxes), or ends it
        the env's answer is appended as template tokens (``policy.chat_tokens``), loss mask 0
    score every episode's transcript (concurrently)

The sequence an episode trains on is exactly what the sampler saw: the prompt's ids, the
model's sampled ids (loss mask 1, sampler logprobs kept), the env's ids (loss mask 0, logprob
0.0). Nothing the model sampled is ever re-tokenised.

``max_turns`` ends an episode after its last model turn (``truncated_by="turns"``);
``max_episode_tokens`` bounds the tokens after the prompt: a turn is cut where the budget ends,
and an env reply that leaves no room for another model token ends the episode
(``truncated_by="tokens"``). ``Episode.truncated`` means the tokens ran out (the budget, or
``max_new_tokens`` on the last turn), as for single-turn completions.

The env's hooks get a per-episode ``state`` (``env.initial_state``), so the G episodes of a
task, played by one env instance at once, share nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import torch

from grpo_env.env import VerifiableEnv, describe_crash
from grpo_env.policy.chat_tokens import ChatTokens
from grpo_env.policy.generation import Completion, Generator, SamplingParams
from grpo_env.policy.models import Policy
from grpo_env.types import Episode, Group, Task, VerifyResult

Messages = list[dict[str, str]]
T = TypeVar("T")
R = TypeVar("R")
# Env answers (tool calls) run in threads: sandboxes and process pools do the heavy work.
ENV_CONCURRENCY = 16


@dataclass
class EpisodeRun:
    """One episode in flight: its transcript, its tokens and its env state."""

    task: Task
    prompt: Messages
    prompt_ids: list[int]
    state: dict[str, Any]
    messages: Messages
    ids: list[int] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    turn_rewards: list[float | None] = field(default_factory=list)
    step_rewards: list[tuple[int, float]] = field(default_factory=list)
    turns: int = 0
    last_text: str = ""
    last_cut: bool = False  # the last model turn hit max_new_tokens without an EOS
    done: bool = False
    truncated_by: str | None = None
    crash: str | None = None  # env_response raised: scored as infra_error

    @property
    def sequence(self) -> list[int]:
        return self.prompt_ids + self.ids


def run_episodes(
    env: VerifiableEnv,
    policy: Policy,
    generator: Generator,
    params: SamplingParams,
    prompts: Sequence[tuple[Task, Messages]],
    n: int,
    *,
    concurrency: int = ENV_CONCURRENCY,
) -> list[list[tuple[EpisodeRun, VerifyResult]]]:
    """Play ``n`` episodes of each ``(task, prompt messages)`` to the end and score them:
    per task, ``n`` (episode, verdict) pairs in sampling order."""
    chat = ChatTokens(policy.tokenizer, policy.eos_token_ids)
    tools = env.tool_schemas()
    runs: list[EpisodeRun] = []
    for task, prompt in prompts:
        prompt_ids = chat.prompt(prompt, tools)
        for _ in range(n):
            runs.append(
                EpisodeRun(
                    task=task,
                    prompt=[dict(m) for m in prompt],
                    prompt_ids=prompt_ids,
                    state=env.initial_state(task),
                    messages=[dict(m) for m in prompt],
                )
            )
    budget = env.max_episode_tokens
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        first = True
        while True:
            live = [r for r in runs if not r.done]
            if not live:
                break
            turn_params = params
            if budget is not None:
                room = max(budget - len(r.ids) for r in live)
                turn_params = replace(params, max_new_tokens=min(params.max_new_tokens, room))
            if first:
                # The first turn samples G per distinct prompt (each prefilled once).
                distinct = [runs[i * n].prompt_ids for i in range(len(prompts))]
                groups = generator.generate(distinct, n, turn_params)
                sampled = [c for group in groups for c in group]
                first = False
            else:
                groups = generator.generate([r.sequence for r in live], 1, turn_params)
                sampled = [group[0] for group in groups]
            for run, completion in zip(live, sampled, strict=True):
                _take_turn(run, completion, policy, budget)
            answers = _map(pool, lambda r: _answer(env, r), live)
            for run, reply in zip(live, answers, strict=True):
                _append_reply(run, reply, env, chat, budget)
        finished = _map(pool, lambda r: _score(env, r), runs)
    pairs = list(zip(runs, finished, strict=True))
    return [pairs[i * n : (i + 1) * n] for i in range(len(prompts))]


def _take_turn(run: EpisodeRun, completion: Completion, policy: Policy, budget: int | None) -> None:
    ids, logps = list(completion.token_ids), list(completion.logprobs)
    cut_by_budget = budget is not None and len(run.ids) + len(ids) > budget
    if cut_by_budget:
        keep = budget - len(run.ids)
        ids, logps = ids[:keep], logps[:keep]
    run.ids.extend(ids)
    run.mask.extend([1] * len(ids))
    run.logprobs.extend(logps)
    run.turns += 1
    run.last_text = policy.decode(ids)
    run.last_cut = completion.truncated or cut_by_budget
    run.messages.append({"role": "assistant", "content": run.last_text})
    if cut_by_budget or (budget is not None and len(run.ids) >= budget):
        run.done, run.truncated_by = True, "tokens"


def _answer(env: VerifiableEnv, run: EpisodeRun) -> tuple[float | None, Messages | None]:
    """The turn's reward and the env's reply; a crash of the env ends the episode."""
    try:
        reward = env.safe_turn_reward(run.task, [dict(m) for m in run.messages], run.state)
        if run.done:  # out of tokens: the reply would never be seen
            return reward, None
        return reward, env.safe_env_response(run.task, [dict(m) for m in run.messages], run.state)
    except Exception as err:  # an env crash says nothing about the policy: masked
        run.crash = f"env_response raised {describe_crash(err)}"
        return None, None


def _append_reply(
    run: EpisodeRun,
    answer: tuple[float | None, Messages | None],
    env: VerifiableEnv,
    chat: ChatTokens,
    budget: int | None,
) -> None:
    reward, reply = answer
    run.turn_rewards.append(reward)
    if reward is not None:
        run.step_rewards.append((len(run.ids), reward))
    if run.done:
        return
    if reply is None:
        run.done = True
        return
    if run.turns >= env.max_turns:
        run.done, run.truncated_by = True, "turns"
        return
    turn_ids = run.ids[len(run.ids) - _last_turn_length(run) :]
    env_ids = chat.env_turn(reply, turn_ids)
    if budget is not None and len(run.ids) + len(env_ids) >= budget:
        run.done, run.truncated_by = True, "tokens"
        return
    run.ids.extend(env_ids)
    run.mask.extend([0] * len(env_ids))
    run.logprobs.extend([0.0] * len(env_ids))
    run.messages.extend(reply)


def _last_turn_length(run: EpisodeRun) -> int:
    length = 0
    for bit in reversed(run.mask):
        if not bit:
            break
        length += 1
    return length


def _score(env: VerifiableEnv, run: EpisodeRun) -> VerifyResult:
    if run.crash is not None:
        return VerifyResult.infra_error(run.crash)
    return env.score_episode(run.task, [dict(m) for m in run.messages], run.state, run.turn_rewards)


def _map(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    if len(items) <= 1:
        return [fn(item) for item in items]
    return list(pool.map(fn, items))


def to_episode(run: EpisodeRun, result: VerifyResult, group_id: str) -> Episode:
    """An ``Episode`` for the agents and the logs."""
    counters = {
        key: float(value)
        for key, value in run.state.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    return Episode(
        task_id=run.task.id,
        group_id=group_id,
        prompt=run.prompt,
        completion=run.last_text,
        reward=float(result.score),
        result=result,
        truncated=run.truncated_by == "tokens" or run.last_cut,
        prompt_ids=run.prompt_ids,
        completion_ids=run.ids,
        logprobs=run.logprobs,
        loss_mask=run.mask,
        turns=run.turns,
        messages=run.messages,
        turn_rewards=run.turn_rewards,
        step_rewards=run.step_rewards,
        tool_calls=int(counters.get("tool_calls", 0)),
        tool_errors=int(counters.get("tool_errors", 0)),
        truncated_by=run.truncated_by,
        counters=counters,
    )


def rollout_multiturn(
    env: VerifiableEnv,
    actor: Any,
    tasks: Sequence[Task],
    group_size: int,
    *,
    tag: str,
    first_index: int = 0,
    seeds: Sequence[int] | None = None,
) -> list[Group]:
    """``rollout_groups`` for multi-turn envs: ``actor`` brings ``policy``, ``generator`` and
    ``sampling`` (every agent does)."""
    prompts = []
    for task in tasks:
        observation, _ = env.reset(options={"task": task})
        prompts.append((task, observation))
    policy, generator, params = actor.policy, actor.generator, actor.sampling
    if seeds is None:
        played = run_episodes(env, policy, generator, params, prompts, group_size)
    else:
        played = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            torch.manual_seed(seed)
            played.extend(run_episodes(env, policy, generator, params, [prompt], group_size))
    groups = []
    for index, (task, pairs) in enumerate(zip(tasks, played, strict=True)):
        group_id = f"{tag}/{first_index + index}/{task.id}"
        episodes = [to_episode(run, result, group_id) for run, result in pairs]
        groups.append(Group(group_id=group_id, task_id=task.id, episodes=episodes))
    return groups


def episode_metrics(episodes: Sequence[Episode]) -> dict[str, float]:
    """Multi-turn statistics of a batch of episodes ({} when none is multi-turn): turns per
    episode, tool calls and errors, truncations by turns or tokens, the model's share of the
    sequence's tokens."""
    multi = [e for e in episodes if e.messages]
    if not multi:
        return {}
    count = len(multi)
    tokens = sum(len(e.completion_ids) for e in multi)
    return {
        "turns_mean": sum(e.turns for e in multi) / count,
        "turns_max": float(max(e.turns for e in multi)),
        "tool_calls_mean": sum(e.tool_calls for e in multi) / count,
        "tool_errors_mean": sum(e.tool_errors for e in multi) / count,
        "frac_truncated_turns": sum(e.truncated_by == "turns" for e in multi) / count,
        "frac_truncated_tokens": sum(e.truncated_by == "tokens" for e in multi) / count,
        "model_token_frac": sum(e.model_tokens for e in multi) / max(tokens, 1),
    }
