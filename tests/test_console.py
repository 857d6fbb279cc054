"""What the user sees on the console during ``grpo-env train``: the run's precision, our
progress and results; third-party warnings and weight-loading bars land in DIR/train.log."""

import os
import subprocess
import sys

import pytest

TOY_ENVS = """
import grpo_env
import warnings

def noisy_env():
    warnings.warn("a third-party library complains", UserWarning)
    # transformers' own logger (its generate warns this way), after its first import
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger("transformers.generation").warning("transformers logs a warning")
    from grpo_env.testing import next_digit_env
    return next_digit_env()

grpo_env.register("noisy-digit-v0", "toy_envs:noisy_env", description="toy")
"""


def train(tmp_path, model, *extra):
    (tmp_path / "toy_envs.py").write_text(TOY_ENVS)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "grpo_env.cli", "-I", "toy_envs", "train"]
    command += ["--env", "noisy-digit", "--model", str(model), "--full", "--steps", "1"]
    command += ["--group-size", "2", "--prompts-per-step", "2", "--max-new-tokens", "2"]
    command += ["--out", str(tmp_path / "run"), "--set", "log.progress=false", *extra]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_train_console_is_ours_and_third_party_noise_goes_to_the_log(tmp_path, toy_model, dtype):
    result = train(tmp_path, toy_model, "--dtype", dtype)
    assert result.returncode == 0, result.stderr
    console = result.stdout + result.stderr
    assert f"precision: {dtype}" in console
    path = "fused decode step" if dtype == "bfloat16" else "decode loop"  # hf_decode auto
    assert f"sampling: {path}" in " ".join(console.split())  # the line may wrap
    assert "Loading weights" not in console
    assert "third-party library complains" not in console
    log = (tmp_path / "run" / "train.log").read_text()
    assert "third-party library complains" in log
    assert "transformers logs a warning" not in console
    assert "transformers logs a warning" in log


def test_float16_is_refused_with_the_reason(tmp_path, toy_model):
    result = train(tmp_path, toy_model, "--dtype", "float16")
    assert result.returncode == 2
    assert "GradScaler" in result.stderr
