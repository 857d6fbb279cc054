"""Runs that cannot score anything stop: the health check before generating, the run loop's
infra-error guard (also for a verifier with a deterministic bug), rescoring with another
environment refused, a bad reference reported as one, the Ctrl-C note about checkpoints."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from rich.console import Console

from grpo_env import Task, VerifiableEnv, VerifyResult
from grpo_env.console.preview import preview
from grpo_env.environments.math.checker import check_completion
from grpo_env.evaluation.runner import RescoreOptions, run_rescore
from grpo_env.jsonl import read_jsonl
from grpo_env.sandbox import ExecutionResult, ExecutionStatus
from grpo_env.training.config import validate_config
from grpo_env.training.guard import InfraErrorsPersist, VerifierUnavailable, check_verifier
from grpo_env.training.preflight import checkpoint_note
from grpo_env.training.trainer import Trainer
from grpo_env.types import Status

TASKS = [{"id": f"digit-{d}", "prompt": str(d), "answer": str((d + 1) % 10)} for d in range(10)]


class BreaksAfter(VerifiableEnv):
    """Scores ``healthy`` calls, then every call raises (a checker that breaks mid-run)."""

    def __init__(self, healthy: int):
        super().__init__(TASKS)
        self.calls, self.healthy = 0, healthy

    def verify(self, task: Task, completion: str) -> VerifyResult:
        self.calls += 1
        if self.calls > self.healthy:
            raise ZeroDivisionError("division by zero")
        return VerifyResult(score=float(completion.strip()[:1] == task.answer))


def config(out, model_dir, **top):
    return validate_config(
        {
            "env": "toy",
            "steps": 6,
            "group_size": 2,
            "prompts_per_step": 2,
            "out": str(out),
            "model": {"name": str(model_dir), "lora": False},
            "generation": {"max_new_tokens": 2},
            "agent": {"name": "grpo", "lr": 1e-3, "beta": 0.0},
            "log": {"save_every": 0, "progress": False, "tensorboard": False},
            **top,
        }
    )


def test_a_verifier_that_always_raises_is_refused_before_the_model_loads(tmp_path):
    with pytest.raises(VerifierUnavailable, match=r"toy cannot score.*ZeroDivisionError"):
        Trainer(config(tmp_path / "run", "/nonexistent/model"), env=BreaksAfter(0))


def test_the_guard_stops_a_run_whose_verifier_breaks_mid_run(tmp_path, toy_model):
    env = BreaksAfter(healthy=1 + 2 * 4)  # the probe, then two steps of 2 x 2 samples
    run = tmp_path / "run"
    trainer = Trainer(config(run, toy_model, guard={"patience": 2}), env=env)
    with pytest.raises(InfraErrorsPersist) as stopped:
        trainer.run()
    message = str(stopped.value)
    assert "stopped at step 4: 100% of the samples could not be scored" in message
    assert "ZeroDivisionError" in message and "sandbox doctor" in message
    assert "no checkpoint was saved" in message
    steps = [row for _, row in read_jsonl(run / "metrics.jsonl").rows]
    assert [s["infra_error_frac"] for s in steps] == [0.0, 0.0, 1.0, 1.0]


def test_the_guard_can_be_turned_off(tmp_path, toy_model):
    env = BreaksAfter(healthy=1 + 2 * 4)
    off = config(tmp_path / "run", toy_model, steps=4, guard={"max_infra_error_frac": 1.0})
    assert Trainer(off, env=env).run().steps_done == 4


def test_check_verifier_passes_a_working_env():
    check_verifier(BreaksAfter(healthy=10), "toy")


def record(env: str, env_kwargs: dict | None) -> str:
    return json.dumps(
        {
            "env": env,
            "env_kwargs": env_kwargs,
            "model": "m",
            "task_id": "t",
            "sample": 0,
            "task": {"id": "t", "prompt": "What is 1+1?", "answer": "2"},
            "prompt": [{"role": "user", "content": "What is 1+1?"}],
            "completion": "\\boxed{2}",
            "tokens": 3,
            "truncated": False,
            "reward": 1.0,
            "status": "ok",
            "components": {"correct": 1.0},
            "answer": "2",
            "details": {},
            "temperature": 0.0,
            "max_new_tokens": 8,
        }
    )


@pytest.mark.parametrize(
    ("env", "kwargs"), [("format", {}), ("math", {"last_number_fallback": True})]
)
def test_rescore_refuses_another_env_than_the_samples_were_made_with(tmp_path, env, kwargs):
    samples = tmp_path / "s.jsonl"
    samples.write_text(record("math", {}) + "\n")
    options = RescoreOptions(file=samples, env=env, env_kwargs=kwargs)
    with pytest.raises(ValueError, match="was made with --env math-v0") as refused:
        run_rescore(options)
    assert "--force-env" in str(refused.value)
    forced = run_rescore(options.model_copy(update={"force_env": True}))
    assert forced.samples == 1


def test_rescore_with_the_same_env_under_another_name_is_fine(tmp_path):
    samples = tmp_path / "s.jsonl"
    samples.write_text(record("math", {"split": "test"}) + "\n")
    report = run_rescore(RescoreOptions(file=samples, env="math-v0"))
    assert report.mean_reward == 1.0


def test_a_malformed_reference_is_a_bad_reference_not_a_wrong_completion():
    result = check_completion("\\boxed{2", "\\boxed{2}")
    assert result.status is Status.ERROR
    assert result.details["bad_reference"] is True
    assert result.details["reason"].startswith("bad reference answer: its braces do not balance")
    assert check_completion("\\{1, 2\\}", "\\boxed{\\{1, 2\\}}").score == 1.0


def test_checkpoint_note_says_what_exists(tmp_path):
    assert "no checkpoint was saved" in checkpoint_note(tmp_path / "run")


def test_preview_is_bounded_and_escaped():
    text = "x" * 1_000_000 + "\n\x1b[31mred\n" + "line\n" * 100
    shown = preview(text)
    assert len(shown) < 2_000
    assert "(+999700 chars)" in shown and "\\x1b[31mred" in shown and "\x1b" not in shown
    assert shown.endswith("(+62 lines)")


def test_sandbox_run_prints_a_long_line_as_a_preview(monkeypatch):
    from grpo_env import cli

    out = StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=100))
    result = ExecutionResult(status=ExecutionStatus.PASSED, stdout="y" * 32_768 + "\n")
    cli._print_execution(result)
    assert len(out.getvalue()) < 2_000
    assert "all of it: --json" in out.getvalue()
