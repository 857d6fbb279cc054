"""Evaluation: greedy held-out accuracy for the trainer, and sampled evaluation for users.

- ``evaluate_greedy``: one deterministic completion per task. The trainer uses it (``[eval]``:
  before training, every N steps, at the end) for before/after numbers.
- ``evaluate_samples`` (``grpo-env eval``): K sampled completions per task, pass@k (unbiased),
  maj@k, rewards and components, statuses, lengths; every sample is written to a JSONL file as
  it is scored, with its task, so ``rescore_records`` (``grpo-env rescore``) can score the same
  completions again with a fixed or changed verifier, without regenerating.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from grpo_env.env import Messages, VerifiableEnv, describe_crash
from grpo_env.evaluation.episodes import episode_summary, sample_and_score
from grpo_env.evaluation.metrics import maj_at_k, pass_at_k, report_ks
from grpo_env.evaluation.shown_samples import ShownSample, find_key, pick_samples, shown_sample
from grpo_env.jsonl import read_jsonl
from grpo_env.policy.generation import Completion, Generator, SamplingParams
from grpo_env.policy.models import Policy
from grpo_env.probes import prompt_text
from grpo_env.types import Status, Task, VerifyResult


class EvalResult(BaseModel):
    """Greedy results over ``tasks`` held-out tasks."""

    model_config = ConfigDict(extra="forbid")

    tasks: int
    accuracy: float  # fraction of tasks with full marks (reward >= 1)
    mean_reward: float  # over tasks without infra errors
    infra_errors: int
    statuses: dict[str, int]
    mean_length: float  # completion tokens
    truncated: float  # fraction cut at max_new_tokens
    samples: list[ShownSample] = []  # a few right and wrong completions, to read
    episodes: dict[str, float] = {}  # multi-turn: turns, tool calls/errors, truncations


def evaluate_greedy(
    env: VerifiableEnv,
    policy: Policy,
    generator: Generator,
    tasks: Sequence[Task],
    *,
    max_new_tokens: int,
    batch_size: int = 32,
    on_batch: Callable[[int], None] | None = None,
) -> EvalResult:
    """Greedy-decode every task once and score it (see the module docstring)."""
    if not tasks:
        raise ValueError("evaluation needs at least one task")
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    rewards: list[float] = []
    statuses: Counter[str] = Counter()
    lengths: list[int] = []
    truncated = 0
    shown: list[ShownSample] = []
    episodes: list[dict[str, Any]] = []
    for start in range(0, len(tasks), batch_size):
        chunk = list(tasks[start : start + batch_size])
        observations = [env.reset(options={"task": task})[0] for task in chunk]
        outputs = sample_and_score(env, policy, generator, chunk, observations, 1, params)
        for task, ((completion, result, extras),) in zip(chunk, outputs, strict=True):
            episodes.append(extras)
            statuses[str(result.status)] += 1
            lengths.append(len(completion.token_ids))
            truncated += completion.truncated
            if result.status is not Status.INFRA_ERROR:
                rewards.append(float(result.score))
            shown.append(
                shown_sample(
                    task.id,
                    prompt_text(task),
                    completion.text,
                    float(result.score),
                    str(result.status),
                    result.details,
                )
            )
        if on_batch is not None:
            on_batch(len(chunk))
    infra = statuses.get(str(Status.INFRA_ERROR), 0)
    return EvalResult(
        tasks=len(tasks),
        accuracy=sum(r >= 1.0 for r in rewards) / len(tasks),
        mean_reward=sum(rewards) / len(rewards) if rewards else 0.0,
        infra_errors=infra,
        statuses=dict(statuses),
        mean_length=sum(lengths) / len(lengths),
        truncated=truncated / len(tasks),
        samples=pick_samples(shown),
        episodes=episode_summary(episodes),
    )


# ----- sampled evaluation: pass@k, maj@k, per-sample records, rescoring ---------------------


class SampleRecord(BaseModel):
    """One line of an evaluation's JSONL: a completion, its verdict, and all that is needed to
    score it again without regenerating (the task itself travels with it)."""

    model_config = ConfigDict(extra="forbid")

    env: str
    env_kwargs: dict[str, Any] | None = None  # its --env-set options (None: an older file)
    model: str
    task_id: str
    sample: int
    task: dict[str, Any]
    prompt: list[dict[str, str]]
    completion: str
    tokens: int
    truncated: bool
    reward: float
    status: str
    components: dict[str, float]
    answer: str | None  # what majority voting compares (see ``vote_key``)
    details: dict[str, Any]
    temperature: float
    max_new_tokens: int
    # Multi-turn episodes: the whole transcript and its counters (``completion`` is the last
    # model turn, the final result that pass@k and maj@k judge).
    turns: int = 1
    messages: list[dict[str, str]] | None = None
    tool_calls: int = 0
    tool_errors: int = 0
    truncated_by: str | None = None


class EvalReport(BaseModel):
    """Sampled evaluation of one model on one environment (``grpo-env eval``)."""

    model_config = ConfigDict(extra="forbid")

    env: str
    model: str
    tasks: int
    samples_per_task: int
    temperature: float
    max_new_tokens: int
    threshold: float  # a sample is correct when its reward reaches this
    pass_at: dict[str, float]  # {"pass@1": ..., "pass@4": ...}, unbiased estimator
    maj_at: dict[str, float]  # {"maj@1": ..., "maj@4": ...}, first k samples vote
    mean_reward: float  # over samples without infra errors
    reward_components: dict[str, float]
    statuses: dict[str, int]
    timeouts: int
    infra_errors: int
    invalid_formats: int
    samples: int = 0  # every sample, scored or not
    infra_error_reason: str | None = None  # the first infra_error's reason, for the report
    tasks_scored: int  # tasks with at least one sample without infra error
    length_mean: float  # completion tokens
    length_median: float
    length_max: int
    truncated: float  # fraction of samples cut at max_new_tokens
    samples_file: str | None = None
    shown: list[ShownSample] = []  # a few right and wrong completions, to read
    episodes: dict[str, float] = {}  # multi-turn: turns, tool calls/errors, truncations


def vote_key(result: VerifyResult, completion: str) -> str | None:
    """The answer a sample votes for: the verifier's extracted answer where it reports one
    (``details[...]["extracted"]``), else the stripped completion; None when the verifier
    found no answer (invalid format, infra error)."""
    if result.status in (Status.INVALID_FORMAT, Status.INFRA_ERROR):
        return None
    extracted = find_key(result.details, "extracted")
    if extracted is not None:
        return extracted if isinstance(extracted, str) else json.dumps(extracted)
    return completion.strip() or None


def make_record(
    *,
    env_id: str,
    model: str,
    task: Task,
    sample: int,
    env_kwargs: dict[str, Any] | None = None,
    prompt: list[dict[str, str]],
    completion: Completion,
    result: VerifyResult,
    params: SamplingParams,
) -> SampleRecord:
    return SampleRecord(
        env=env_id,
        env_kwargs=json.loads(json.dumps(env_kwargs or {}, default=str)),
        model=model,
        task_id=task.id,
        sample=sample,
        task=task.model_dump(mode="json"),
        prompt=prompt,
        completion=completion.text,
        tokens=len(completion.token_ids),
        truncated=completion.truncated,
        reward=float(result.score),
        status=str(result.status),
        components=dict(result.components),
        answer=vote_key(result, completion.text),
        details=json.loads(json.dumps(result.details, default=str)),
        temperature=params.temperature,
        max_new_tokens=params.max_new_tokens,
    )


def summarize(records: Sequence[SampleRecord], *, threshold: float = 1.0) -> EvalReport:
    """The report of a set of scored samples (all of one env and model)."""
    if not records:
        raise ValueError("no samples to summarise")
    by_task: dict[str, list[SampleRecord]] = {}
    for record in records:
        by_task.setdefault(record.task_id, []).append(record)
    per_task = max(len(rows) for rows in by_task.values())
    infra = str(Status.INFRA_ERROR)
    scored = [r for r in records if r.status != infra]
    pass_at: dict[str, float] = {}
    maj_at: dict[str, float] = {}
    valid_rows = {
        task: sorted((r for r in rows if r.status != infra), key=lambda r: r.sample)
        for task, rows in by_task.items()
    }
    for k in report_ks(per_task):
        usable = [rows for rows in valid_rows.values() if len(rows) >= k]
        if not usable:
            continue
        hits = [
            pass_at_k(len(rows), sum(r.reward >= threshold for r in rows), k) for rows in usable
        ]
        votes = [
            maj_at_k([r.answer for r in rows], [r.reward >= threshold for r in rows], k)
            for rows in usable
        ]
        pass_at[f"pass@{k}"] = float(np.mean(hits))
        maj_at[f"maj@{k}"] = float(np.mean(votes))
    components: dict[str, list[float]] = {}
    for record in scored:
        for name, value in record.components.items():
            components.setdefault(name, []).append(value)
    statuses = Counter(r.status for r in records)
    lengths = np.array([r.tokens for r in records], dtype=float)
    first = records[0]
    return EvalReport(
        env=first.env,
        model=first.model,
        tasks=len(by_task),
        samples_per_task=per_task,
        temperature=first.temperature,
        max_new_tokens=first.max_new_tokens,
        threshold=threshold,
        pass_at=pass_at,
        maj_at=maj_at,
        mean_reward=float(np.mean([r.reward for r in scored])) if scored else 0.0,
        reward_components={k: float(np.mean(v)) for k, v in sorted(components.items())},
        statuses=dict(sorted(statuses.items())),
        timeouts=statuses.get(str(Status.TIMEOUT), 0),
        infra_errors=statuses.get(infra, 0),
        invalid_formats=statuses.get(str(Status.INVALID_FORMAT), 0),
        samples=len(records),
        infra_error_reason=next(
            (str(r.details.get("reason", "")) for r in records if r.status == infra), None
        ),
        tasks_scored=sum(1 for rows in valid_rows.values() if rows),
        length_mean=float(lengths.mean()),
        length_median=float(np.median(lengths)),
        length_max=int(lengths.max()),
        truncated=float(np.mean([r.truncated for r in records])),
        episodes=episode_summary([r.model_dump() for r in records]),
        shown=pick_samples(
            (
                shown_sample(
                    r.task_id,
                    _last_user(r.prompt),
                    r.completion,
                    r.reward,
                    r.status,
                    r.details,
                )
                for r in records
            ),
            threshold=threshold,
        ),
    )


def _last_user(prompt: Sequence[dict[str, str]]) -> str:
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def evaluate_samples(
    env: VerifiableEnv,
    policy: Policy,
    generator: Generator,
    tasks: Sequence[Task],
    *,
    env_id: str,
    model: str,
    samples: int,
    params: SamplingParams,
    env_kwargs: dict[str, Any] | None = None,
    out: Path,
    threshold: float = 1.0,
    batch_size: int = 64,
    done: Sequence[SampleRecord] = (),
    on_tasks: Callable[[int], None] | None = None,
) -> EvalReport:
    """Sample ``samples`` completions per task, score them, append one JSON line per sample
    to ``out`` as they come (a crash loses at most the batch in flight), and summarise.

    ``done``: records already in ``out`` (a resumed evaluation); their tasks are skipped.
    """
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    if samples > 1 and params.greedy:
        raise ValueError("several samples per task need temperature > 0 (greedy ones are equal)")
    finished = {r.task_id for r in done if r.sample == samples - 1}
    records = [r for r in done if r.task_id in finished]
    # Start from the finished tasks only: a task cut short by a crash is redone, not doubled.
    write_records(out, records)
    todo = [t for t in tasks if t.id not in finished]
    if on_tasks is not None and len(tasks) - len(todo):
        on_tasks(len(tasks) - len(todo))
    per_call = max(1, batch_size // samples)
    with out.open("a", encoding="utf-8") as handle:
        for start in range(0, len(todo), per_call):
            chunk = todo[start : start + per_call]
            observations = [env.reset(options={"task": task})[0] for task in chunk]
            outputs = sample_and_score(env, policy, generator, chunk, observations, samples, params)
            for task, observation, scored in zip(chunk, observations, outputs, strict=True):
                for index, (completion, result, extras) in enumerate(scored):
                    record = make_record(
                        env_id=env_id,
                        env_kwargs=env_kwargs,
                        model=model,
                        task=task,
                        sample=index,
                        prompt=observation,
                        completion=completion,
                        result=result,
                        params=params,
                    ).model_copy(update=extras)
                    handle.write(record.model_dump_json() + "\n")
                    records.append(record)
            handle.flush()
            if on_tasks is not None:
                on_tasks(len(chunk))
    report = summarize(records, threshold=threshold)
    return report.model_copy(update={"samples_file": str(out)})


def read_records(path: Path) -> list[SampleRecord]:
    """The records of an evaluation JSONL; a bad line is an error naming the file and line.
    A torn last line (a crash mid-write) is dropped with a warning; a resumed evaluation
    rewrites the file from the records kept (``evaluate_samples``)."""
    if not path.is_file():
        raise FileNotFoundError(f"samples file not found: {path}")
    read = read_jsonl(path, append_only=True)
    records = []
    for number, row in read.rows:
        try:
            records.append(SampleRecord.model_validate(row))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise ValueError(f"{path}:{number}: {where}: {first['msg']}") from err
    return records


def rescore_records(
    records: Sequence[SampleRecord],
    env: VerifiableEnv,
    *,
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
) -> list[SampleRecord]:
    """The same completions scored again by ``env`` (a fixed or changed verifier), without
    regenerating; each task is rebuilt from its record and its samples scored as a group."""
    by_task: dict[str, list[SampleRecord]] = {}
    for record in records:
        by_task.setdefault(record.task_id, []).append(record)
    rescored = []
    for rows in by_task.values():
        task = Task.model_validate(rows[0].task)
        if env.multi_turn:
            results = [replay_episode(env, task, r.messages or []) for r in rows]
        else:
            results = env.score_many(task, [r.completion for r in rows])
        for row, result in zip(rows, results, strict=True):
            rescored.append(
                row.model_copy(
                    update={
                        "env": env_id,
                        "env_kwargs": dict(env_kwargs or {}),
                        "reward": float(result.score),
                        "status": str(result.status),
                        "components": dict(result.components),
                        "answer": vote_key(result, row.completion),
                        "details": json.loads(json.dumps(result.details, default=str)),
                    }
                )
            )
    return rescored


def replay_episode(env: VerifiableEnv, task: Task, messages: Messages) -> VerifyResult:
    """A recorded multi-turn episode scored again: the env's hooks run over the transcript
    turn by turn, as in play (``turn_reward``, then ``env_response`` on the transcript up to
    every model turn, the last included), so per-episode state is rebuilt, then
    ``score_episode`` judges it. The
    model's turns are the recorded ones; the env's answers are recomputed (tools run again)
    only to rebuild the state, and the recorded transcript is what is judged."""
    if not any(m["role"] == "assistant" for m in messages):
        return VerifyResult.infra_error("the record has no transcript to rescore")
    state = env.initial_state(task)
    turn_rewards: list[float | None] = []
    try:
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            so_far = [dict(m) for m in messages[: i + 1]]
            turn_rewards.append(env.safe_turn_reward(task, so_far, state))
            env.safe_env_response(task, so_far, state)  # play calls it after every turn
    except Exception as err:
        return VerifyResult.infra_error(f"replaying the episode raised {describe_crash(err)}")
    return env.score_episode(task, [dict(m) for m in messages], state, turn_rewards)


def write_records(path: Path, records: Sequence[SampleRecord]) -> None:
    """Write ``records`` as JSONL, atomically (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.model_dump_json() + "\n")
    os.replace(tmp, path)
