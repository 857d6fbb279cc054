"""Health checks for an environment (``grpo-env envs check``).

1. Gymnasium's ``check_env`` (the API contract, spaces, seeding, fresh data on every call).
2. Seed determinism: the same seed gives the same task; several seeds reach several tasks.
3. The gold completion (where the env has one) earns the full reward with status ``ok``;
   multi-turn envs play a gold episode (``gold_action`` turn by turn).
4. An empty completion (every turn empty, for multi-turn envs) earns nothing.
5. Adversarial probes (``grpo_env.probes``), where the env declares a reference answer: the
   prompt echoed, the question restated, the reference with a contradicting relation or a
   second answer, near misses, empty and junk answers all score 0, on several tasks.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

from gymnasium.utils.env_checker import check_env
from pydantic import BaseModel

from grpo_env.env import VerifiableEnv
from grpo_env.probes import failed_probes, run_probes
from grpo_env.registry import envs
from grpo_env.types import Status

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class CheckOutcome(BaseModel):
    name: str
    passed: bool | None  # None: not applicable (skipped)
    detail: str = ""


def run_env_checks(env_id: str, seed: int = 0) -> list[CheckOutcome]:
    env = envs.make(env_id)
    try:
        base = env.unwrapped
        if not isinstance(base, VerifiableEnv):
            return [CheckOutcome(name="type", passed=False, detail="not a VerifiableEnv")]
        checks: list[tuple[str, Callable[[VerifiableEnv, int], CheckOutcome]]] = [
            ("gymnasium check_env", _gymnasium_checker),
            ("seed determinism", _seed_determinism),
            ("gold completion scores full marks", _gold_scores_full),
            ("empty completion scores 0", _empty_scores_zero),
            ("adversarial probes score 0", _probes_score_zero),
        ]
        return [_guarded(name, check, base, seed) for name, check in checks]
    finally:
        env.close()


def _guarded(
    name: str, check: Callable[[VerifiableEnv, int], CheckOutcome], env: VerifiableEnv, seed: int
) -> CheckOutcome:
    try:
        outcome = check(env, seed)
    except Exception as err:  # a failing check is a result, not a crash of the command
        return CheckOutcome(name=name, passed=False, detail=f"{type(err).__name__}: {err}")
    return outcome.model_copy(update={"name": name})


def _gymnasium_checker(env: VerifiableEnv, seed: int) -> CheckOutcome:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, skip_close_check=False)
    notes = sorted({_ANSI.sub("", str(w.message)).split("\n")[0] for w in caught})
    detail = "no warnings" if not notes else f"{len(notes)} warning(s): " + " | ".join(notes)
    return CheckOutcome(name="", passed=True, detail=detail)


def _seed_determinism(env: VerifiableEnv, seed: int) -> CheckOutcome:
    first = env.reset(seed=seed)
    second = env.reset(seed=seed)
    if first != second:
        return CheckOutcome(name="", passed=False, detail=f"reset(seed={seed}) twice differs")
    reached = {env.reset(seed=seed + k)[1]["task_id"] for k in range(20)}
    if len(env.tasks) > 1 and len(reached) == 1:
        return CheckOutcome(name="", passed=False, detail="20 seeds all gave the same task")
    return CheckOutcome(
        name="", passed=True, detail=f"same seed, same task; 20 seeds reached {len(reached)} tasks"
    )


def _gold_scores_full(env: VerifiableEnv, seed: int) -> CheckOutcome:
    env.reset(seed=seed)
    task = env.task
    assert task is not None
    gold = env.gold_action(task, env.transcript) if env.multi_turn else env.gold_completion(task)
    if gold is None:
        return CheckOutcome(name="", passed=None, detail="this env has no gold completion")
    # Multi-turn: a gold episode, turn by turn; the return is the sum of step rewards.
    reward, turns = 0.0, 0
    while True:
        observation, step_reward, terminated, truncated, info = env.step(gold)
        reward, turns = reward + step_reward, turns + 1
        if terminated or truncated:
            break
        gold = env.gold_action(task, observation)
        if gold is None:
            return CheckOutcome(name="", passed=False, detail=f"no gold turn {turns + 1}")
    result = info["verify"]
    full = env.rubric.max_score if env.rubric is not None else 1.0
    passed = result.status is Status.OK and reward >= full - 1e-9 and (terminated or truncated)
    return CheckOutcome(
        name="",
        passed=passed,
        detail=f"task {task.id}: reward {reward:g} of {full:g}, status {result.status}"
        + (f", {turns} turns" if env.multi_turn else ""),
    )


def _empty_scores_zero(env: VerifiableEnv, seed: int) -> CheckOutcome:
    env.reset(seed=seed)
    reward, done = 0.0, False
    while not done:  # multi-turn: empty turns until the episode ends
        _, step_reward, terminated, truncated, info = env.step("")
        reward, done = reward + step_reward, terminated or truncated
    result = info["verify"]
    return CheckOutcome(
        name="",
        passed=reward == 0.0 and result.status is not Status.INFRA_ERROR,
        detail=f"reward {reward:g}, status {result.status}",
    )


PROBE_TASKS = 3


def _probes_score_zero(env: VerifiableEnv, seed: int) -> CheckOutcome:
    outcomes = []
    for k in range(PROBE_TASKS):
        env.reset(seed=seed + k)
        assert env.task is not None
        outcomes += [(env.task, o) for o in run_probes(env, env.task, seed=seed + k)]
    if not outcomes:
        return CheckOutcome(name="", passed=None, detail="this env declares no reference answer")
    failed = [(task, o) for task, o in outcomes if o in failed_probes([o])]
    if failed:
        task, first = failed[0]
        shown = (
            first.probe.completion
            if len(first.probe.completion) <= 80
            else (first.probe.completion[:77] + "...")
        )
        return CheckOutcome(
            name="",
            passed=False,
            detail=f"{len(failed)} of {len(outcomes)} probes scored; first: task {task.id}, "
            f"{first.probe.name}: {shown!r} scored {first.score:g} ({first.status})",
        )
    return CheckOutcome(
        name="",
        passed=True,
        detail=f"{len(outcomes)} probes on {PROBE_TASKS} tasks all scored 0",
    )
