"""Generated tokens per second of the ``hf`` backend, beside plain transformers ``generate``.

The embedded SmolLM2-135M-Instruct samples chain_sum prompts (G = 8 per prompt, temperature 1,
at most 64 new tokens) at batch 16 and 64 (2 and 8 prompts), on this machine's CPU:

- ``generate-defaults-fp32`` / ``-bf16``: plain ``model.generate(do_sample=True)``, the model's
  own defaults, weights in float32 / bfloat16 (what a user would try first);
- ``hf-generate-fp32`` / ``-bf16``: our backend on transformers ``generate`` over the model's
  SDPA attention (the old path);
- ``hf-loop-fp32`` / ``-bf16``: our backend's own loop (prompts once, finished rows leave),
  with the CPU short-sequence attention (``grpo_env.policy.attention``, the default on CPU);
- ``hf-loop-bf16-sdpa``: the same loop over the model's own SDPA (``model.attention="model"``);
- ``hf-fused-fp32`` / ``-bf16``: the loop with the fused decode step
  (``grpo_env.policy.fused_decode``; ``-bf16`` is what ``hf_decode = "auto"`` runs on this CPU).

A token counts up to and including its row's first EOS (what training uses). The bf16 matmul
peak of this CPU is measured in the same run (a 2048x576 @ 576x1536 matmul, the model's MLP
shape), and each row reports its achieved fraction: ``2 x parameters x tokens/s`` over the peak
(the decode's weight FLOPs; attention and sampling are left out, so it is a lower bound).

    flock /tmp/grpo-heavy.lock .venv/bin/python bench/decode_throughput.py

prints one JSON line per (path, batch) and a final summary line.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import torch

G, MAX_NEW_TOKENS = 8, 64


def matmul_peak_gflops(dtype: torch.dtype, repeats: int = 30) -> float:
    a, b = torch.randn(2048, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
    for _ in range(3):
        a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    seconds = (time.perf_counter() - started) / repeats
    return 2 * 2048 * 576 * 1536 / seconds / 1e9


def prompts(policy: Any, count: int) -> list[list[int]]:
    from grpo_env.tasks import ReasoningGymSource

    source = ReasoningGymSource(
        "chain_sum", split="train", seed=0, min_terms=2, max_terms=2, min_digits=1, max_digits=2
    )
    return [
        policy.encode_chat([{"role": "user", "content": source[i].prompt}]) for i in range(count)
    ]


def count_tokens(rows: list[list[int]], eos: tuple[int, ...]) -> int:
    total = 0
    for row in rows:
        ends = [i for i, t in enumerate(row) if t in eos]
        total += ends[0] + 1 if ends else len(row)
    return total


# --ignore-eos: an id no model samples, so every row decodes MAX_NEW_TOKENS tokens.
NEVER = -1


def run_ours(policy: Any, batch: list[list[int]], decode: str, ignore_eos: bool) -> int:
    from dataclasses import replace

    from grpo_env.policy.generation import HFGenerator, SamplingParams

    if ignore_eos:
        policy = replace(policy, eos_token_ids=(NEVER,))
    params = SamplingParams(max_new_tokens=MAX_NEW_TOKENS, temperature=1.0)
    groups = HFGenerator(policy, decode=decode).generate(batch, G, params)
    return sum(len(c.token_ids) for g in groups for c in g)


def run_plain(
    model: Any, tokenizer: Any, batch: list[list[int]], eos: tuple[int, ...], ignore_eos: bool
) -> int:
    rows = [p for p in batch for _ in range(G)]
    width = max(len(r) for r in rows)
    ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    with torch.inference_mode():
        stop = {"eos_token_id": NEVER} if ignore_eos else {}
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            max_new_tokens=MAX_NEW_TOKENS,
            **stop,
        )
    return count_tokens(out[:, width:].tolist(), () if ignore_eos else eos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="16,64", help="rows per call (multiples of 8)")
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per row (after one)")
    parser.add_argument("--only", default="", help="comma-separated paths to run (default all)")
    parser.add_argument(
        "--ignore-eos",
        action="store_true",
        help="decode every row to the token limit: the same work on every path (without it, "
        "rows that end early make the rate depend on what was sampled)",
    )
    args = parser.parse_args()
    from transformers import AutoModelForCausalLM

    from grpo_env.policy.config import ModelConfig
    from grpo_env.policy.models import load_policy

    torch.manual_seed(0)
    peak = matmul_peak_gflops(torch.bfloat16)
    peak32 = matmul_peak_gflops(torch.float32)
    print(json.dumps({"bf16_matmul_gflops": round(peak, 1), "fp32_matmul_gflops": round(peak32)}))
    policies = {
        dtype: load_policy(ModelConfig(lora=False, dtype=dtype))
        for dtype in ("float32", "bfloat16")
    }
    # The model's own SDPA attention: the old path (generate) ran on it, and the loop over it
    # shows what the CPU short-sequence attention adds.
    for dtype in ("float32", "bfloat16"):
        policies[f"{dtype}-sdpa"] = load_policy(
            ModelConfig(lora=False, dtype=dtype, attention="model")
        )
    base = policies["float32"]
    params = sum(p.numel() for p in base.model.parameters())
    plain = {
        "fp32": AutoModelForCausalLM.from_pretrained(base.source, dtype=torch.float32).eval(),
        "bf16": AutoModelForCausalLM.from_pretrained(base.source, dtype=torch.bfloat16).eval(),
    }
    paths = {
        "generate-defaults-fp32": lambda b: run_plain(
            plain["fp32"], base.tokenizer, b, base.eos_token_ids, args.ignore_eos
        ),
        "generate-defaults-bf16": lambda b: run_plain(
            plain["bf16"], base.tokenizer, b, base.eos_token_ids, args.ignore_eos
        ),
        "hf-generate-fp32": lambda b: run_ours(
            policies["float32-sdpa"], b, "generate", args.ignore_eos
        ),
        "hf-generate-bf16": lambda b: run_ours(
            policies["bfloat16-sdpa"], b, "generate", args.ignore_eos
        ),
        "hf-loop-fp32": lambda b: run_ours(policies["float32"], b, "loop", args.ignore_eos),
        "hf-loop-bf16-sdpa": lambda b: run_ours(
            policies["bfloat16-sdpa"], b, "loop", args.ignore_eos
        ),
        "hf-loop-bf16": lambda b: run_ours(policies["bfloat16"], b, "loop", args.ignore_eos),
        "hf-fused-fp32": lambda b: run_ours(policies["float32"], b, "fused", args.ignore_eos),
        "hf-fused-bf16": lambda b: run_ours(policies["bfloat16"], b, "fused", args.ignore_eos),
    }
    only = [p for p in args.only.split(",") if p]
    results = []
    for rows in (int(x) for x in args.batches.split(",")):
        batch = prompts(base, rows // G)
        for name, fn in paths.items():
            if only and name not in only:
                continue
            fn(batch)  # warm-up (allocator, first-call paths)
            tokens, seconds = 0, 0.0
            for _ in range(args.repeats):
                started = time.perf_counter()
                tokens += fn(batch)
                seconds += time.perf_counter() - started
            rate = tokens / seconds
            row = {
                "path": name,
                "batch": rows,
                "ignore_eos": args.ignore_eos,
                "tokens_per_s": round(rate, 1),
                "tokens": tokens,
                "seconds": round(seconds, 2),
                "bf16_peak_fraction": round(2 * params * rate / (peak * 1e9), 3),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    best = max(results, key=lambda r: r["tokens_per_s"]) if results else None
    print(json.dumps({"summary": True, "params": params, "bf16_peak_gflops": peak, "best": best}))


if __name__ == "__main__":
    main()
