"""Runs that cannot score anything must not pretend to succeed.

``infra_error`` samples are masked (never a 0), so a run whose verifier keeps failing (sandbox
engine down, a checker with a deterministic bug) would "finish" having learned nothing. Two
checks stop that:

- ``check_verifier``: before any model is loaded or anything generated, the environment's own
  health check (a sandbox's engine and image) and one probe scored end to end (the first
  task's gold completion, else an empty one): an ``infra_error`` there stops the run.
- ``InfraErrorGuard``: in the training loop, the share of ``infra_error`` samples per step;
  above ``max_frac`` for ``patience`` steps in a row, the run stops.

Both raise ``InfraFailure`` subclasses; the CLI prints their one line and exits 3, the code
``grpo-env sandbox run`` uses when the sandbox itself failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from grpo_env.env import VerifiableEnv, describe_crash
from grpo_env.types import Group, Status

INFRA_EXIT_CODE = 3
CHECK_HINT = (
    "check the setup (`grpo-env sandbox doctor` for code environments, "
    "`grpo-env envs check ENV` for any)"
)


class InfraFailure(RuntimeError):
    """The verifier's infrastructure failed: nothing could be scored. Exit code 3."""


class VerifierUnavailable(InfraFailure):
    """The health check before a run failed."""


class InfraErrorsPersist(InfraFailure):
    """Too many samples could not be scored, for too many steps in a row."""


def check_verifier(env: VerifiableEnv, env_id: str) -> None:
    """Raise ``VerifierUnavailable`` (one line: what failed, how to check) unless ``env`` can
    score now."""
    try:
        env.health_check()
    except Exception as err:
        reason = _reason(err)
        raise VerifierUnavailable(f"{env_id} cannot score: {reason}{_hint(reason)}") from err
    if len(env.tasks) == 0:
        return
    task = env.tasks[0]
    (result,) = env.score_many(task, [env.gold_completion(task) or ""])
    if result.status is Status.INFRA_ERROR:
        reason = str(result.details.get("reason", "infra_error"))
        raise VerifierUnavailable(
            f"{env_id} cannot score: a probe of task {task.id} was infra_error ({reason})"
            f"{_hint(reason)}"
        )


class InfraErrorGuard:
    """Stops a run whose ``infra_error`` share stays above ``max_frac`` for ``patience``
    consecutive steps (``max_frac`` = 1 turns it off)."""

    def __init__(self, max_frac: float, patience: int):
        self.max_frac = max_frac
        self.patience = patience
        self.streak = 0

    def observe(self, step: int, groups: Sequence[Group]) -> None:
        episodes = [e for g in groups for e in g.episodes]
        failed = [e for e in episodes if e.result.status is Status.INFRA_ERROR]
        share = len(failed) / max(len(episodes), 1)
        self.streak = self.streak + 1 if episodes and share > self.max_frac else 0
        if self.streak < self.patience:
            return
        reason = str(failed[-1].result.details.get("reason", "infra_error"))
        raise InfraErrorsPersist(
            f"stopped at step {step}: {share:.0%} of the samples could not be scored "
            f"(infra_error) for {self.streak} steps in a row, over the {self.max_frac:.0%} limit "
            f"(guard.max_infra_error_frac, guard.patience); last reason: {reason}{_hint(reason)}"
        )


def _hint(reason: str) -> str:
    return "" if "sandbox doctor" in reason else f"; {CHECK_HINT}"


def _reason(err: Exception) -> str:
    # Sandbox errors already say what to do; others get where they were raised.
    text = str(err).splitlines()[0] if str(err) else ""
    return text if type(err).__name__ == "SandboxUnavailable" else describe_crash(err)
