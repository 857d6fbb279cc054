"""`make train`'s run, the old way and the new way, back to back on this machine.

The old way is how the project trained before issue 11: float32 matmuls, sampling through
transformers ``generate`` (``generation.hf_decode = "generate"``), the model's own SDPA
attention (``model.attention = "model"``), held-out evaluation in batches of 32
(``eval.batch_size = 32``), glibc's malloc defaults (``GRPO_ENV_MALLOC=system``). What has
no switch is shared by both ways: the fused logprob/entropy function, the contiguous
output-head input and the packed training rows (exact or within float rounding), so the old
way here runs faster than the old code did. The new way is the
default: bf16 autocast where the CPU has bf16 matrix units, the project's sampling loop, the
CPU short-sequence attention, evaluation in batches of 128.
Both run ``bench/train_chain_sum.toml`` unchanged otherwise (same seed, tasks and steps), one
after the other, each in its own process; the wall time includes model loading and the
held-out evaluations (200 tasks, greedy, before training and every 20 steps).

    flock /tmp/grpo-heavy.lock .venv/bin/python bench/train_old_vs_new.py --out runs/old-vs-new

prints one JSON object: wall seconds of each, their ratio, the mean step seconds and sampled
tokens/s from ``metrics.jsonl``, every held-out accuracy from ``eval.jsonl``, and the first
few held-out completions of each run's last evaluation (read them: a jump in accuracy is only
believed with its samples). ``--order new,old`` runs the new way first.

One seed is one trajectory, and the trajectory sets the work: a policy that drifts into
long answers samples 2-3x the tokens of one that learns short ones, and each sampled token
is also a token trained on. bf16 and float32 round differently, so from the first update
the two ways follow different trajectories. ``--seeds 0,1,2`` runs both ways on each seed
(``--seed N``, each pair back to back) and adds, over the seeds, the ratio of total wall
times, the median of the per-seed ratios, and the ratio of seconds per sampled token.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CONFIG = Path(__file__).with_name("train_chain_sum.toml")
WAYS = {
    "old": [
        *("--dtype", "float32"),
        *("--set", "generation.hf_decode=generate"),
        *("--set", "model.attention=model"),
        *("--set", "eval.batch_size=32"),  # the held-out evaluation's batch before it was a knob
    ],
    "new": [],
}
# The old way's process also keeps glibc's malloc defaults (the trainer now tunes it on CPU).
WAY_ENV = {"old": {"GRPO_ENV_MALLOC": "system"}, "new": {}}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_way(
    way: str, out: Path, extra: list[str], samples: int, seed: int | None = None
) -> dict[str, Any]:
    run_dir = out / way
    command = [str(Path(sys.executable).with_name("grpo-env")), "train", "--config", str(CONFIG)]
    command += ["--out", str(run_dir), *WAYS[way], *extra]
    if seed is not None:
        command += ["--seed", str(seed)]
    started = time.perf_counter()
    with (out / f"{way}.console.log").open("w") as console:
        process = subprocess.run(
            command,
            stdout=console,
            stderr=subprocess.STDOUT,
            env={**os.environ, **WAY_ENV[way]},
        )
    wall = time.perf_counter() - started
    if process.returncode != 0:
        log = out / f"{way}.console.log"
        raise SystemExit(f"the {way} run failed (exit {process.returncode}): see {log}")
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    evals = read_jsonl(run_dir / "eval.jsonl")
    last = evals[-1] if evals else {}
    return {
        "command": " ".join(command),
        "wall_seconds": round(wall, 1),
        "steps": len(metrics),
        "precision": metrics[-1].get("precision") if metrics else None,
        "mean_step_seconds": round(sum(m["step_seconds"] for m in metrics) / len(metrics), 2),
        "mean_gen_tokens_per_s": round(
            sum(m["gen_tokens_per_s"] for m in metrics) / len(metrics), 1
        ),
        "sampled_tokens": int(sum(m["gen_tokens"] for m in metrics)),
        "eval_seconds": round(sum(e.get("seconds", 0.0) for e in evals), 1),
        "held_out_accuracy": {str(e["step"]): e["accuracy"] for e in evals},
        "last_eval_samples": [
            {k: s[k] for k in ("question", "completion", "score")}
            for s in last.get("samples", [])[:samples]
        ],
    }


def ratio(new: float, old: float) -> float:
    return round(new / old, 3)


def run_pair(order: list[str], out: Path, args: argparse.Namespace, seed: int | None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    pair: dict[str, Any] = {}
    for way in order:
        pair[way] = run_way(way, out, args.extra, args.samples, seed)
        line = {way: pair[way]["wall_seconds"], "seed": seed}
        print(json.dumps(line), file=sys.stderr, flush=True)
    if "old" in pair and "new" in pair:
        pair["wall_ratio_new_over_old"] = ratio(
            pair["new"]["wall_seconds"], pair["old"]["wall_seconds"]
        )
    return pair


def over_seeds(pairs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Totals over the seeds: wall ratio, median per-seed ratio, seconds per sampled token."""
    totals = {
        way: {
            key: sum(p[way][key] for p in pairs.values())
            for key in ("wall_seconds", "sampled_tokens")
        }
        for way in ("old", "new")
    }
    per_token = {way: t["wall_seconds"] / t["sampled_tokens"] for way, t in totals.items()}
    return {
        "seeds": [int(seed) for seed in pairs],
        "wall_ratios": [p["wall_ratio_new_over_old"] for p in pairs.values()],
        "median_wall_ratio": round(
            statistics.median(p["wall_ratio_new_over_old"] for p in pairs.values()), 3
        ),
        "total_wall_ratio": ratio(totals["new"]["wall_seconds"], totals["old"]["wall_seconds"]),
        "sampled_tokens": {
            way: [p[way]["sampled_tokens"] for p in pairs.values()] for way in totals
        },
        "wall_seconds_per_sampled_token_ratio": ratio(per_token["new"], per_token["old"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a new directory for the runs")
    parser.add_argument("--order", default="old,new", help="which way runs first")
    parser.add_argument("--samples", type=int, default=6, help="completions shown per run")
    parser.add_argument(
        "--seeds",
        default="",
        help="comma-separated seeds, each run both ways (default: the config's seed, once)",
    )
    parser.add_argument("extra", nargs="*", help="more train options for both (after --)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=False)
    order = args.order.split(",")
    report: dict[str, Any] = {"benchmark": "train_old_vs_new", "config": str(CONFIG)}
    if not args.seeds:
        report.update(run_pair(order, args.out, args, None))
    else:
        seeds = [int(seed) for seed in args.seeds.split(",")]
        pairs = {str(seed): run_pair(order, args.out / f"seed{seed}", args, seed) for seed in seeds}
        report["by_seed"] = pairs
        if set(order) == {"old", "new"}:
            report["over_seeds"] = over_seeds(pairs)
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
