"""One GRPO step, ours vs TRL's GRPOTrainer: seconds per step and peak memory, same workload.

Both train the embedded SmolLM2-135M-Instruct (full fine-tuning, CPU) on the same
prompts (reasoning-gym chain_sum, 2 terms, 1-2 digits) in the same order: 2 prompts per step,
G = 8 completions each, at most 64 new tokens, temperature 1, beta 0.04 (so both hold a
reference model), one optimiser step per batch, the GRPO paper's loss aggregation. Each runs
in a fresh process, so its peak RSS is its own. Both precisions are measured, each side at its
best: float32 (ours ``model.dtype = "float32"``, TRL ``bf16=False``) and bfloat16 (ours
``"bfloat16"``: bf16 autocast over float32 master weights; TRL ``bf16=True``, the same
autocast through accelerate), in the order ours, TRL for each precision. Ours keeps freed
memory for reuse (``grpo_env.training.allocator``, glibc ``mallopt``); ``--trl-malloc keep``
runs TRL with the same settings, to show what the allocator alone is worth to either side.

    flock /tmp/grpo-heavy.lock python bench/grpo_step_vs_trl.py --steps 3

prints one JSON object: per-step seconds, the mean over steps after the first (warm-up), peak
RSS, and generated tokens per step for both, and the ratios. Needs ``trl`` and its
``datasets`` (the ``bench`` extra: ``.venv/bin/pip install -e '.[bench]'``; the venv's pinned
torch already satisfies trl, so pip leaves it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

G, PROMPTS_PER_STEP, MAX_NEW_TOKENS, BETA, LR = 8, 2, 64, 0.04, 1e-6
MICRO_BATCH = 8  # sequences per forward/backward, both sides (TRL: 8 x 2 accumulation steps)


def chain_sum_rows(count: int) -> list[dict[str, str]]:
    from grpo_env.tasks import ReasoningGymSource

    source = ReasoningGymSource(
        "chain_sum", split="train", seed=0, min_terms=2, max_terms=2, min_digits=1, max_digits=2
    )
    return [
        {"id": source[i].id, "prompt": source[i].prompt, "answer": source[i].answer}
        for i in range(count)
    ]


def answer_reward(completion: str, answer: str) -> float:
    numbers = re.findall(r"-?\d+", completion.replace(",", ""))
    return 1.0 if numbers and numbers[-1] == answer else 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(steps: int, model_dir: str, dtype: str) -> dict[str, Any]:
    from grpo_env import VerifiableEnv
    from grpo_env.training.config import validate_config
    from grpo_env.training.trainer import Trainer

    rows = chain_sum_rows(steps * PROMPTS_PER_STEP)
    env = VerifiableEnv(rows, rubric=lambda task, text: answer_reward(text, task.answer))
    out = Path(tempfile.mkdtemp(prefix="bench-ours-"))
    config = validate_config(
        {
            "env": "chain-sum",
            "steps": steps,
            "group_size": G,
            "prompts_per_step": PROMPTS_PER_STEP,
            "out": str(out / "run"),
            "shuffle_tasks": False,  # the same order as TRL's unshuffled dataset
            "model": {"name": model_dir, "lora": False, "dtype": dtype},
            "generation": {"max_new_tokens": MAX_NEW_TOKENS, "temperature": 1.0},
            "agent": {"name": "grpo", "lr": LR, "beta": BETA, "micro_batch_size": MICRO_BATCH},
            "log": {"save_every": 0, "tensorboard": False, "progress": False},
        }
    )
    trainer = Trainer(config, env=env)
    cpu: list[float] = []
    step = trainer.train_step

    def timed_step(number: int) -> dict[str, float]:
        started = time.process_time()
        result = step(number)
        cpu.append(time.process_time() - started)
        return result

    trainer.train_step = timed_step  # type: ignore[method-assign]
    trainer.run()
    metrics = [
        json.loads(line) for line in (out / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    shutil.rmtree(out)  # its final checkpoint: 1.6 GB of weights and optimiser state
    return {
        "step_seconds": [m["step_seconds"] for m in metrics],
        "step_cpu_seconds": cpu,
        "gen_tokens": [m["gen_tokens"] for m in metrics],
        "gen_tokens_per_s": [m["gen_tokens_per_s"] for m in metrics],
        "sampler_logprob_gap": [m.get("sampler_logprob_gap") for m in metrics],
        "reward_mean": [m["reward_mean"] for m in metrics],
        "peak_rss_mb": peak_rss_mb(),
    }


def run_trl(steps: int, model_dir: str, dtype: str) -> dict[str, Any]:
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    rows = chain_sum_rows(steps * PROMPTS_PER_STEP)
    dataset = Dataset.from_list(
        [
            {"prompt": [{"role": "user", "content": r["prompt"]}], "answer": r["answer"]}
            for r in rows
        ]
    )

    def reward(completions: list[Any], answer: list[str], **_: Any) -> list[float]:
        return [answer_reward(c[0]["content"], a) for c, a in zip(completions, answer, strict=True)]

    ends: list[float] = []
    cpu_ends: list[float] = []

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            ends.append(time.perf_counter())
            cpu_ends.append(time.process_time())

    out = tempfile.mkdtemp(prefix="bench-trl-")
    config = GRPOConfig(
        output_dir=out,
        use_cpu=True,
        bf16=dtype == "bfloat16",
        per_device_train_batch_size=MICRO_BATCH,
        gradient_accumulation_steps=G * PROMPTS_PER_STEP // MICRO_BATCH,
        num_generations=G,
        max_completion_length=MAX_NEW_TOKENS,
        temperature=1.0,
        beta=BETA,
        learning_rate=LR,
        loss_type="grpo",
        scale_rewards="group",
        num_iterations=1,
        max_steps=steps,
        shuffle_dataset=False,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=0,
        disable_tqdm=True,
    )
    trainer = GRPOTrainer(
        model=model_dir,
        reward_funcs=reward,
        args=config,
        train_dataset=dataset,
        callbacks=[StepTimer()],
    )
    trainer.train()
    shutil.rmtree(out, ignore_errors=True)
    logs = [h for h in trainer.state.log_history if "completions/mean_length" in h]
    return {
        "step_seconds": [b - a for a, b in itertools.pairwise(ends)],
        "step_cpu_seconds": [b - a for a, b in itertools.pairwise(cpu_ends)],
        "gen_tokens": [h["completions/mean_length"] * G * PROMPTS_PER_STEP for h in logs],
        "reward_mean": [h.get("reward", float("nan")) for h in logs],
        "peak_rss_mb": peak_rss_mb(),
    }


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    times, cpu = result["step_seconds"], result["step_cpu_seconds"]
    steady, steady_cpu = times[1:] or times, cpu[1:] or cpu
    return {
        **result,
        "seconds_per_step": sum(steady) / len(steady),
        # CPU time of the process (both threads): less sensitive to other load on the machine
        "cpu_seconds_per_step": sum(steady_cpu) / len(steady_cpu),
        "gen_tokens_per_step": sum(result["gen_tokens"]) / max(len(result["gen_tokens"]), 1),
    }


# Ours tunes glibc's malloc in-process (grpo_env.training.allocator); these environment
# variables give TRL's process the same settings (``--trl-malloc keep``).
KEEP_FREED_MEMORY_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def run_side(side: str, dtype: str, steps: int, extra_env: dict[str, str]) -> dict[str, Any]:
    """One side at one precision, in a fresh process (its own peak RSS)."""
    started = time.perf_counter()
    command = [sys.executable, __file__, "--worker", side, "--steps", str(steps), "--dtype", dtype]
    process = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false", **extra_env},
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        sys.stderr.write(process.stderr[-4000:])
        raise SystemExit(f"{side} {dtype} failed (exit {process.returncode})")
    result = summarize(json.loads(lines[-1].removeprefix("RESULT ")))
    result["process_seconds"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3, help="steps each (the first is warm-up)")
    parser.add_argument("--only", choices=["ours", "trl"], help="run one side")
    parser.add_argument("--precisions", default="float32,bfloat16", help="comma-separated")
    parser.add_argument(
        "--trl-malloc",
        choices=["system", "keep"],
        default="system",
        help="TRL's malloc: glibc's defaults (as TRL runs), or the settings ours applies "
        "(keep freed memory: MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_=1 GiB)",
    )
    parser.add_argument("--worker", choices=["ours", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    args = parser.parse_args()

    from grpo_env.policy.default_model import DEFAULT_MODEL, ensure_embedded_model

    model_dir = str(ensure_embedded_model(DEFAULT_MODEL))
    if args.worker:
        run = run_ours if args.worker == "ours" else run_trl
        print("RESULT " + json.dumps(run(args.steps, model_dir, args.dtype)), flush=True)
        return

    import torch

    results: dict[str, Any] = {}
    precisions = [p for p in args.precisions.split(",") if p]
    for dtype in precisions:
        for side in [args.only] if args.only else ["ours", "trl"]:
            keep = side == "trl" and args.trl_malloc == "keep"
            extra_env = KEEP_FREED_MEMORY_ENV if keep else {}
            results[f"{side}_{dtype}"] = run_side(side, dtype, args.steps, extra_env)
    report: dict[str, Any] = {
        "benchmark": "grpo_step_vs_trl",
        "model": DEFAULT_MODEL,
        "device": "cpu",
        "threads": torch.get_num_threads(),
        "group_size": G,
        "prompts_per_step": PROMPTS_PER_STEP,
        "max_new_tokens": MAX_NEW_TOKENS,
        "beta": BETA,
        "full_finetuning": True,
        "steps": args.steps,
        "trl_malloc": args.trl_malloc,
        **results,
    }
    pairs = [(f"ours_{p}", f"trl_{p}", p) for p in precisions]
    if {"bfloat16", "float32"} <= set(precisions):
        pairs.append(("ours_bfloat16", "trl_float32", "ours_bfloat16_vs_trl_float32"))
    for mine, theirs, label in pairs:
        if mine in results and theirs in results:
            a, b = results[mine], results[theirs]
            report[f"ratios_{label}"] = {
                "time": a["seconds_per_step"] / b["seconds_per_step"],
                "cpu_time": a["cpu_seconds_per_step"] / b["cpu_seconds_per_step"],
                "peak_rss": a["peak_rss_mb"] / b["peak_rss_mb"],
            }
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
