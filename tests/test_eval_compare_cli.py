"""``grpo-env eval``, ``rescore`` and ``compare`` run as a user runs them (subprocesses), on a
tiny model and a toy environment registered by a user module (``grpo-env -I toy_envs``).

The compare test is CI's smoke run of the comparison: one crashing agent must not lose the
others' results, a re-run must skip finished runs and resume the crashed one from its
checkpoint, and the report (table, CSV, plot) must be written.
"""

import csv
import json
import os
import subprocess
import sys

import pytest

TOY_ENVS = '''
"""The toy task, and an agent that crashes on its second update while crash-marker exists."""
from pathlib import Path

import grpo_env
from grpo_env.agents.grpo import GRPOAgent

grpo_env.register("next-digit-v0", "grpo_env.testing:next_digit_env", description="toy")


class CrashyAgent(GRPOAgent):
    updates = 0

    def update(self, groups):
        self.updates += 1
        if self.updates == 2 and Path("crash-marker").exists():
            raise RuntimeError("crashed on purpose")
        return super().update(groups)


grpo_env.register_agent("crashy", CrashyAgent, description="GRPO that crashes")
'''


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "toy_envs.py").write_text(TOY_ENVS)
    return tmp_path


def cli(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "grpo_env.cli", "-I", "toy_envs", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.slow
def test_eval_writes_samples_and_rescore_reads_them(workdir, toy_model):
    args = ["eval", "--env", "next-digit", "--model", str(toy_model), "--samples", "4"]
    args += ["--max-new-tokens", "2", "--out", "e.jsonl", "--json"]
    result = cli(*args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tasks"] == 10 and report["samples_per_task"] == 4
    assert set(report["pass_at"]) == {"pass@1", "pass@2", "pass@4"}
    assert set(report["maj_at"]) == {"maj@1", "maj@2", "maj@4"}
    assert report["temperature"] == 1.0  # several samples: sampled, not greedy
    assert "no held-out split" in result.stderr
    lines = (workdir / "e.jsonl").read_text().splitlines()
    assert len(lines) == 40

    again = cli(*args, cwd=workdir)
    assert again.returncode == 2 and "--resume" in again.stderr

    rescored = cli("rescore", "e.jsonl", "--env", "next-digit", "--json", cwd=workdir)
    assert rescored.returncode == 0, rescored.stderr
    same = json.loads(rescored.stdout)
    assert same["pass_at"] == report["pass_at"] and same["mean_reward"] == report["mean_reward"]
    assert (workdir / "e.rescored.jsonl").is_file()
    # An accuracy is shown with its samples: right ones first, then wrong ones.
    shown = report["shown"]
    assert shown and {"task_id", "question", "completion", "score", "status"} <= set(shown[0])
    assert [s["score"] >= 1.0 for s in shown] == sorted(
        (s["score"] >= 1.0 for s in shown), reverse=True
    )
    printed = cli("rescore", "e.jsonl", "--env", "next-digit", "--out", "e2.jsonl", cwd=workdir)
    assert printed.returncode == 0, printed.stderr
    assert "sample completions" in printed.stdout and "  Q: " in printed.stdout

    split = cli(
        "eval", "--env", "format", "--model", str(toy_model), "--split", "train", cwd=workdir
    )
    assert split.returncode == 2


def run_names(path):
    return [json.loads(line)["agent"] for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_compare_smoke_run_survives_a_crash_and_resumes(workdir, toy_model):
    args = ["compare", "--env", "next-digit", "--model", str(toy_model), "--full"]
    args += ["--steps", "3", "--seeds", "1", "--group-size", "4", "--prompts-per-step", "3"]
    args += ["--max-new-tokens", "2", "--eval-tasks", "5", "--lr", "3e-3", "--out", "cmp"]
    args += ["--set", "log.save_every=1", "--set", "log.tensorboard=false"]
    out = workdir / "cmp"
    (workdir / "crash-marker").touch()
    first = cli(*args, "--agents", "grpo,crashy", cwd=workdir)
    assert first.returncode == 1, first.stderr
    assert "crashy-seed0 failed" in first.stderr and "crashed on purpose" in first.stderr
    assert run_names(out / "results.jsonl") == ["grpo"]  # the other run's result is kept
    assert "crashy-seed0" in (out / "compare.md").read_text()  # listed as failed

    (workdir / "crash-marker").unlink()
    grpo_log = (out / "runs" / "grpo-seed0" / "train.log").read_text()
    second = cli(*args, "--agents", "grpo,crashy,frozen", "--json", cwd=workdir)
    assert second.returncode == 0, second.stderr
    assert run_names(out / "results.jsonl") == ["grpo", "crashy", "frozen"]
    assert (out / "runs" / "grpo-seed0" / "train.log").read_text() == grpo_log  # not re-run
    crashy = out / "runs" / "crashy-seed0"
    assert "resuming" in (crashy / "train.log").read_text()  # from its step-1 checkpoint
    steps = [
        json.loads(line)["step"] for line in (crashy / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [1, 2, 3]

    summary = json.loads(second.stdout)
    assert [row["agent"] for row in summary["agents"]] == ["grpo", "crashy", "frozen"]
    with (out / "compare.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["agent"] for row in rows] == ["grpo", "crashy", "frozen"]
    needed = {"eval_final", "final_reward", "best_reward", "seconds_per_step",
              "gen_tokens_per_s", "peak_memory_mb"}  # fmt: skip
    assert needed <= set(rows[0]) and all(float(row["peak_memory_mb"]) > 0 for row in rows)
    assert float(rows[2]["eval_final"]) == float(rows[2]["eval_before"])  # frozen: unchanged
    png = (out / "reward_curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    markdown = (out / "compare.md").read_text()
    assert "| grpo |" in markdown and "reward_curves.png" in markdown
    assert "## Sample completions" in markdown and "### grpo, seed 0: after step 3" in markdown

    changed = cli(*[a if a != "3" else "4" for a in args], "--agents", "grpo", cwd=workdir)
    assert changed.returncode == 2 and "another configuration" in changed.stderr


@pytest.fixture(scope="module")
def game_model(tmp_path_factory):
    from grpo_env.testing import game_model_dir

    return game_model_dir(tmp_path_factory.mktemp("game"))


@pytest.mark.slow
def test_eval_and_compare_play_multi_turn_episodes(workdir, game_model):
    """``guess-number`` (3 turns of higher/lower): eval reports the episodes' turns and
    truncations, keeps whole transcripts, and compare runs on it like on any env."""
    args = ["eval", "--env", "guess-number", "--model", str(game_model), "--samples", "2"]
    args += ["--tasks", "3", "--max-new-tokens", "2", "--out", "g.jsonl"]
    result = cli(*args, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "turns per episode" in result.stdout and "truncated by turns" in result.stdout
    records = [json.loads(line) for line in (workdir / "g.jsonl").read_text().splitlines()]
    assert len(records) == 6
    assert all(r["messages"][-1]["role"] == "assistant" for r in records)
    assert max(r["turns"] for r in records) > 1
    assert all(sum(m["role"] == "assistant" for m in r["messages"]) == r["turns"] for r in records)

    args = ["compare", "--env", "guess-number", "--model", str(game_model), "--full"]
    args += ["--agents", "grpo,ppo", "--steps", "2", "--group-size", "4"]
    args += ["--prompts-per-step", "2", "--max-new-tokens", "2", "--eval-tasks", "3"]
    args += ["--out", "cmp-game"]
    result = cli(*args, cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    with (workdir / "cmp-game" / "runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    assert sorted(r["agent"] for r in runs) == ["grpo", "ppo"]
    metrics = workdir / "cmp-game" / "runs" / "grpo-seed0" / "metrics.jsonl"
    first = json.loads(metrics.read_text().splitlines()[0])
    assert first["turns_mean"] > 1
