"""The training loop: logs, checkpoints, exact resume, task order, Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from grpo_env.registry import UnknownIdError
from grpo_env.strict_model import ConfigError
from grpo_env.testing import next_digit_env
from grpo_env.training.checkpoint import latest_checkpoint, save_checkpoint
from grpo_env.training.config import validate_config
from grpo_env.training.trainer import RunExistsError, Trainer, TrainInterrupted

TIMING = ("seconds", "per_s", "peak_memory")


def toy_config(out, model_dir, *, steps=4, lora=True, agent=None, **top):
    return validate_config(
        {
            "env": "toy",
            "steps": steps,
            "group_size": 4,
            "prompts_per_step": 3,
            "out": str(out),
            "model": {"name": str(model_dir), "lora": lora},
            "generation": {"max_new_tokens": 3},
            "agent": agent
            or {"name": "grpo", "lr": 1e-2, "beta": 0.04, "mu": 2, "lr_schedule": "linear"},
            "log": {"save_every": 2, "progress": False},
            **top,
        }
    )


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def comparable(row):
    return {k: v for k, v in row.items() if not any(t in k for t in TIMING)}


def test_a_run_writes_metrics_samples_events_evals_and_checkpoints(tmp_path, toy_model):
    config = toy_config(tmp_path / "run", toy_model, eval={"tasks": 5})
    summary = Trainer(config, env=next_digit_env(), eval_env=next_digit_env()).run()
    run = tmp_path / "run"
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    required = {
        "reward_mean", "reward_std", "reward/score", "frac_zero_std", "adv_min", "adv_mean",
        "adv_max", "completion_len_mean", "completion_len_max", "clip_ratio", "clip_ratio_low",
        "clip_ratio_high", "kl", "entropy", "grad_norm", "lr", "gen_tokens_per_s",
        "train_tokens_per_s", "step_seconds", "peak_memory_mb", "frac_truncated",
    }  # fmt: skip
    assert required <= set(rows[0]), required - set(rows[0])
    assert rows[0]["lr"] > rows[-1]["lr"]  # the linear schedule decays
    samples = read_jsonl(run / "samples.jsonl")
    assert len(samples) == 4 * 4 and {"completion", "reward", "status"} <= set(samples[0])
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    evals = read_jsonl(run / "eval.jsonl")
    assert [e["step"] for e in evals] == [0, 4] and evals[0]["tasks"] == 5
    shown = evals[0]["samples"]  # the completions behind the accuracy, to read
    assert 1 <= len(shown) <= 5 and {"question", "completion", "score"} <= set(shown[0])
    assert summary.eval_before is not None and summary.eval_after is not None
    assert latest_checkpoint(run).name == "step-000004"
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == [
        "step-000002",
        "step-000004",
    ]
    checkpoint = run / "checkpoints" / "step-000004"
    assert (checkpoint / "policy" / "adapter_model.safetensors").is_file()
    assert {"optimizer.pt", "rng.pt", "trainer.json"} <= {p.name for p in checkpoint.iterdir()}
    assert json.loads((run / "config.json").read_text())["agent"]["mu"] == 2


@pytest.mark.parametrize("lora", [True, False])
def test_resume_reproduces_the_uninterrupted_run(tmp_path, toy_model, lora):
    straight = toy_config(tmp_path / "a", toy_model, lora=lora)
    Trainer(straight, env=next_digit_env()).run()

    broken = toy_config(tmp_path / "b", toy_model, lora=lora, log={"save_every": 0})
    trainer = Trainer(broken, env=next_digit_env())
    original = trainer.train_step

    def stop_after_two(step):
        metrics = original(step)
        if step == 2:
            trainer._stop_requested = True  # what Ctrl-C does
        return metrics

    trainer.train_step = stop_after_two
    with pytest.raises(TrainInterrupted):
        trainer.run()
    assert latest_checkpoint(tmp_path / "b").name == "step-000002"
    assert len(read_jsonl(tmp_path / "b" / "metrics.jsonl")) == 2

    Trainer(broken, resume=True, env=next_digit_env()).run()
    a = read_jsonl(tmp_path / "a" / "metrics.jsonl")
    b = read_jsonl(tmp_path / "b" / "metrics.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    assert [comparable(r) for r in a] == [comparable(r) for r in b]
    weights = "adapter_model.safetensors" if lora else "model.safetensors"
    final_a = load_file(tmp_path / "a" / "checkpoints" / "step-000004" / "policy" / weights)
    final_b = load_file(tmp_path / "b" / "checkpoints" / "step-000004" / "policy" / weights)
    assert final_a.keys() == final_b.keys()
    assert all((final_a[k] == final_b[k]).all() for k in final_a)


def test_an_existing_run_needs_resume(tmp_path, toy_model):
    config = toy_config(tmp_path / "run", toy_model, steps=1)
    Trainer(config, env=next_digit_env()).run()
    with pytest.raises(RunExistsError, match="--resume"):
        Trainer(config, env=next_digit_env())


def test_every_agent_sees_the_same_tasks(tmp_path, toy_model):
    def task_order(out, agent):
        config = toy_config(out, toy_model, steps=3, agent=agent, log={"sample_groups": 3})
        Trainer(config, env=next_digit_env()).run()
        return [(s["step"], s["task_id"]) for s in read_jsonl(out / "samples.jsonl")]

    grpo = task_order(tmp_path / "g", {"name": "grpo", "lr": 1e-2})
    frozen = task_order(tmp_path / "f", {"name": "frozen"})
    dynamic = task_order(tmp_path / "d", {"name": "grpo", "dynamic_sampling": True})
    assert grpo == frozen == dynamic
    assert len({task for _, task in grpo}) > 3  # tasks do vary across steps


def test_dynamic_sampling_refills_from_its_own_stream(tmp_path, toy_model):
    agent = {"name": "grpo", "dynamic_sampling": True, "max_refill_rounds": 2}
    config = toy_config(tmp_path / "run", toy_model, steps=2, agent=agent)
    Trainer(config, env=next_digit_env()).run()
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    # a random tiny model mostly scores 0: zero-variance groups are dropped and refilled
    assert sum(r["groups_dropped"] for r in rows) > 0
    assert all(r["refill_rounds"] <= 2 for r in rows)


def test_unknown_agents_and_options_are_user_errors(tmp_path, toy_model):
    with pytest.raises(UnknownIdError, match="grpo"):
        Trainer(toy_config(tmp_path / "a", toy_model, agent={"name": "grp"}), env=next_digit_env())
    with pytest.raises(ConfigError, match="valid keys"):
        Trainer(
            toy_config(tmp_path / "b", toy_model, agent={"name": "grpo", "clip": 0.1}),
            env=next_digit_env(),
        )


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path):
    save_checkpoint(tmp_path, 1, lambda d: (d / "w").write_text("one"), {"x": 1})

    def crash(directory):
        (directory / "w").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, crash, {"x": 2})
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step-000001" and (latest / "w").read_text() == "one"
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-000001", "latest"] or {
        p.name for p in (tmp_path / "checkpoints").iterdir()
    } == {"step-000001", "latest"}


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(tmp_path, toy_model):
    """The real CLI in a subprocess: SIGINT after the first logged step."""
    out = tmp_path / "run"

    def command(steps, *extra):
        return [
            sys.executable, "-m", "grpo_env.cli", "train", "--env", "format-v0",
            "--model", str(toy_model), "--full", "--steps", str(steps), "--group-size", "2",
            "--prompts-per-step", "1", "--max-new-tokens", "4", "--out", str(out),
            "--save-every", "0", "--set", "log.progress=false", *extra,
        ]  # fmt: skip

    process = subprocess.Popen(command(200), stderr=subprocess.PIPE, text=True)
    metrics = out / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().strip()):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    checkpoint = latest_checkpoint(out)
    assert checkpoint is not None
    saved = json.loads((checkpoint / "trainer.json").read_text())["step"]
    assert saved == len(read_jsonl(metrics)) >= 1
    assert "--resume" in stderr

    resumed = subprocess.run(
        command(saved + 1, "--resume"),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert resumed.returncode == 0, resumed.stderr
    assert [r["step"] for r in read_jsonl(metrics)] == list(range(1, saved + 2))


def test_the_run_says_its_precision_and_warns_once_on_a_sampler_gap(
    tmp_path, toy_model, monkeypatch
):
    from io import StringIO

    from rich.console import Console

    import grpo_env.agents.policy_gradient as pg

    config = toy_config(tmp_path / "run", toy_model, steps=2)
    output = StringIO()
    trainer = Trainer(config, env=next_digit_env(), console=Console(file=output, width=200))
    # A stale sampler: every logged logprob off by 0.5 (what a missed weight sync looks like).
    original = pg.PolicyGradientAgent.stats_metrics

    def off(self, stats):
        return {**original(self, stats), "sampler_logprob_gap": 0.5}

    monkeypatch.setattr(pg.PolicyGradientAgent, "stats_metrics", off)
    trainer.run()
    text = output.getvalue()
    assert "precision: float32" in text
    assert text.count("sampler_logprob_gap 0.5") == 1  # once, not every step
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    assert {r["precision"] for r in rows} == {"float32"}
