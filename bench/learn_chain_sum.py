"""The learning result: GRPO on reasoning-gym chain_sum (2 terms, 1-2 digits) with SmolLM2-135M.

The environment is the packaged ``math-chain-sum`` with ``last_number_fallback=True`` (train
split for training, the disjoint held-out split for evaluation), scored by the math checker
that GRPO cannot game by restating the question (issue 10; an earlier version of this script
scored the last integer of the completion with a stand-in check). It runs the real CLI,

    grpo-env train --config bench/chain_sum.toml --out DIR [options...]

which evaluates 200 held-out tasks greedily before and after training (DIR/eval.jsonl), and
draws the reward curve to DIR/reward_curve.png. Run it under the heavy-job lock:

    flock /tmp/grpo-heavy.lock python bench/learn_chain_sum.py --out runs/chain-sum

Extra arguments go to ``grpo-env train`` (e.g. ``--steps 10 --set agent.lr=1e-4``).
``--eval-only`` evaluates the initial model and exits (prompt tuning).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import grpo_env
from grpo_env.evaluation.shown_samples import ShownSample, samples_markdown

HERE = Path(__file__).resolve().parent


def plot(run_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    rewards = [r["reward_mean"] for r in rows]
    window = 10
    smooth = [
        sum(rewards[max(0, i - window + 1) : i + 1]) / len(rewards[max(0, i - window + 1) : i + 1])
        for i in range(len(rewards))
    ]
    figure, axis = plt.subplots(figsize=(8, 4.5))
    axis.plot(
        steps, rewards, color="#9ecae1", linewidth=1, label="train reward (sampled, per step)"
    )
    axis.plot(
        steps, smooth, color="#08519c", linewidth=2, label=f"train reward ({window}-step mean)"
    )
    axis.plot(
        [e["step"] for e in evals],
        [e["accuracy"] for e in evals],
        "o--",
        color="#d94801",
        label=f"held-out greedy accuracy ({evals[0]['tasks']} tasks)",
    )
    axis.set_xlabel("step")
    axis.set_ylabel("reward / accuracy")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend(loc="lower right")
    axis.set_title("GRPO, SmolLM2-135M-Instruct, chain_sum (2 terms, 1-2 digits), CPU")
    path = run_dir / "reward_curve.png"
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--config", default=str(HERE / "chain_sum.toml"))
    parser.add_argument("--eval-only", action="store_true", help="evaluate the initial model")
    args, train_args = parser.parse_known_args()

    if args.eval_only:
        print(json.dumps(evaluate_initial(args.config, train_args), indent=2))
        return
    from grpo_env.cli import main as cli_main

    command = ["train", "--config", args.config, "--out", args.out, *train_args]
    try:
        cli_main(command)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    print(f"reward curve: {plot(Path(args.out))}")
    evals = [json.loads(line) for line in (Path(args.out) / "eval.jsonl").read_text().splitlines()]
    print(f"sample completions: {write_samples(Path(args.out), evals)}")
    print(json.dumps({"before": evals[0], "after": evals[-1]}, indent=2))


def write_samples(run_dir: Path, evals: list[dict[str, Any]]) -> Path:
    """DIR/samples.md: greedy completions behind each evaluation's accuracy, to read."""
    lines = ["# Greedy held-out completions behind the accuracies", ""]
    for row in evals:
        samples = [ShownSample.model_validate(s) for s in row.get("samples") or []]
        lines += [f"## step {row['step']}: accuracy {row['accuracy']:.3f}", ""]
        lines += [*samples_markdown(samples), ""]
    path = run_dir / "samples.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def evaluate_initial(config_path: str, train_args: list[str]) -> dict[str, Any]:
    from grpo_env.evaluation.evaluate import evaluate_greedy
    from grpo_env.policy.generation import make_generator
    from grpo_env.policy.models import load_policy
    from grpo_env.training.config import load_config, parse_assignment

    # only --set KEY=VALUE options matter here
    overrides = dict(
        parse_assignment(value) for flag, value in itertools.pairwise(train_args) if flag == "--set"
    )
    config = load_config(config_path, overrides)
    env = grpo_env.make(config.env, **{**config.env_kwargs, **config.eval.env_kwargs})
    policy = load_policy(config.model)
    tasks = [env.unwrapped.tasks[i] for i in range(config.eval.tasks)]
    result = evaluate_greedy(
        env.unwrapped,
        policy,
        make_generator("hf", policy),
        tasks,
        max_new_tokens=config.eval.max_new_tokens or config.generation.max_new_tokens,
    )
    return result.model_dump()


if __name__ == "__main__":
    sys.exit(main())
