"""Sample and score for evaluation, single- or multi-turn alike.

Single-turn envs: one batched ``generate`` and ``score_many``. Multi-turn envs: whole episodes
through ``grpo_env.training.multiturn.run_episodes``; each comes back as a ``Completion`` of its
last turn (what pass@k and maj@k judge: the final result) plus the transcript and counters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grpo_env.env import VerifiableEnv
from grpo_env.policy.generation import Completion, Generator, SamplingParams
from grpo_env.policy.models import Policy
from grpo_env.training.multiturn import run_episodes
from grpo_env.types import Task, VerifyResult

Messages = list[dict[str, str]]
Scored = tuple[Completion, VerifyResult, dict[str, Any]]


def sample_and_score(
    env: VerifiableEnv,
    policy: Policy,
    generator: Generator,
    tasks: Sequence[Task],
    observations: Sequence[Messages],
    n: int,
    params: SamplingParams,
) -> list[list[Scored]]:
    """``n`` scored samples per task: ``(completion, verdict, multi-turn extras)``."""
    if not env.multi_turn:
        prompts = [policy.encode_chat(o, env.tool_schemas()) for o in observations]
        outputs = generator.generate(prompts, n, params)
        return [
            [(c, r, {}) for c, r in zip(cs, env.score_many(t, [c.text for c in cs]), strict=True)]
            for t, cs in zip(tasks, outputs, strict=True)
        ]
    played = run_episodes(
        env, policy, generator, params, list(zip(tasks, observations, strict=True)), n
    )
    scored = []
    for group in played:
        rows = []
        for run, result in group:
            completion = Completion(
                prompt_ids=run.prompt_ids,
                token_ids=run.ids,
                text=run.last_text,
                logprobs=run.logprobs,
                truncated=run.truncated_by == "tokens" or run.last_cut,
            )
            extras = {
                "turns": run.turns,
                "messages": run.messages,
                "tool_calls": int(run.state.get("tool_calls", 0) or 0),
                "tool_errors": int(run.state.get("tool_errors", 0) or 0),
                "truncated_by": run.truncated_by,
            }
            rows.append((completion, result, extras))
        scored.append(rows)
    return scored


def episode_summary(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Turns per episode, tool calls and errors, truncations by turns or tokens ({} when no
    row is multi-turn)."""
    multi = [r for r in rows if r.get("messages")]
    if not multi:
        return {}
    count = len(multi)
    return {
        "turns_mean": sum(r["turns"] for r in multi) / count,
        "tool_calls": float(sum(r["tool_calls"] for r in multi)),
        "tool_errors": float(sum(r["tool_errors"] for r in multi)),
        "truncated_by_turns": sum(r["truncated_by"] == "turns" for r in multi) / count,
        "truncated_by_tokens": sum(r["truncated_by"] == "tokens" for r in multi) / count,
    }


def episode_rows(summary: dict[str, float]) -> list[tuple[str, str]]:
    """``episode_summary`` as (name, value) rows for a console table ([] when single-turn)."""
    if not summary:
        return []
    return [
        ("turns per episode", f"{summary['turns_mean']:.2f}"),
        ("tool calls / tool errors", f"{summary['tool_calls']:.0f} / {summary['tool_errors']:.0f}"),
        ("truncated by turns", f"{summary['truncated_by_turns']:.1%}"),
        ("truncated by tokens", f"{summary['truncated_by_tokens']:.1%}"),
    ]
