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
"""

from __future__ import annotations

import argparse
import json
import os
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


def run_way(way: str, out: Path, extra: list[str], samples: int) -> dict[str, Any]:
    run_dir = out / way
    command = [str(Path(sys.executable).with_name("grpo-env")), "train", "--config", str(CONFIG)]
    command += ["--out", str(run_dir), *WAYS[way], *extra]
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
        "held_out_accuracy": {str(e["step"]): e["accuracy"] for e in evals},
        "last_eval_samples": [
            {k: s[k] for k in ("question", "completion", "score")}
            for s in last.get("samples", [])[:samples]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a new directory for both runs")
    parser.add_argument("--order", default="old,new", help="which way runs first")
    parser.add_argument("--samples", type=int, default=6, help="completions shown per run")
    parser.add_argument("extra", nargs="*", help="more train options for both (after --)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=False)
    report: dict[str, Any] = {"benchmark": "train_old_vs_new", "config": str(CONFIG)}
    for way in args.order.split(","):
        report[way] = run_way(way, args.out, args.extra, args.samples)
        print(json.dumps({way: report[way]["wall_seconds"]}), file=sys.stderr, flush=True)
    if "old" in report and "new" in report:
        report["wall_ratio_new_over_old"] = round(
            report["new"]["wall_seconds"] / report["old"]["wall_seconds"], 3
        )
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
