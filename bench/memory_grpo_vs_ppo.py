"""Peak memory of one training step: GRPO vs PPO with its critic (and online DPO, online RFT,
ReMax beside them), same model, same batch.

GRPO's papers claim it needs far less memory than PPO (about 40% less at 7B) because it drops
the critic: a second network with its own weights, gradients and optimiser state. This measures
what the difference is here. Each configuration runs in a fresh process so its peak is its
own: {grpo, ppo, online_dpo, online_rft, remax} x {full fine-tuning, LoRA}, on the embedded
SmolLM2-135M-Instruct (float32 on
CPU, bfloat16 on CUDA), one update on the same fixed batch: 2 prompts x G = 8 completions of
exactly 64 tokens (synthetic token ids, rewards alternating 0/1 so every sample has a non-zero
advantage), beta 0.04 (both keep a reference: a frozen copy under full fine-tuning, the base
with adapters disabled under LoRA), micro-batches of 8, one optimiser step (Adam's state is
created in it, as on the first step of a run). The other agents on the same batch: online DPO
with ``pairs = "all"`` capped at G/2 pairs per group (so it trains the same 16 sequences as
GRPO, 8 pairs) and its own beta (the reference is always loaded); online RFT with no reference
(it has no KL; samples with reward 1 kept, all 16 forwarded with coefficient 0 or 1); ReMax
with beta 0.04 (a k3 KL in the loss, as GRPO) and a synthetic greedy sample per prompt (the
greedy generation itself is rollout work, not part of the update measured here).

Reported per configuration:
- ``peak_rss_mb``: peak resident memory of the whole process (``ru_maxrss``): model load,
  agent set-up and the step;
- ``setup_rss_mb``: resident memory once the agent is built (policy, reference, critic);
- ``step_peak_rss_mb``: the highest RSS sampled every 2 ms during the update;
- ``cuda_max_allocated_mb`` where a GPU is used (else null).
and the saving ``1 - grpo / ppo`` of each, for full fine-tuning and LoRA, then each agent's
``step_peak_rss_mb`` (and CUDA peak) relative to GRPO's.

    flock /tmp/grpo-heavy.lock python bench/memory_grpo_vs_ppo.py

prints one JSON object per line: each configuration, then the summary.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from typing import Any

AGENTS = ("grpo", "ppo", "online_dpo", "online_rft", "remax")
CONFIGS = tuple(f"{agent}:{mode}" for mode in ("full", "lora") for agent in AGENTS)
PROMPTS = (
    "State the final answer to the following arithmetic problem: 41 + 17 =",
    "State the final answer to the following arithmetic problem: 93 - 58 =",
)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class RssSampler:
    """The highest RSS seen while running (a thread sampling every ``interval`` seconds)."""

    def __init__(self, interval: float = 0.002):
        self.interval, self.peak = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def fixed_groups(policy: Any, group_size: int, tokens: int, greedy: bool = False) -> list[Any]:
    """The benchmark's batch: real chat prompts, synthetic completions of exactly ``tokens``
    (``greedy``: plus a greedy sample per group, ReMax's baseline)."""
    import torch

    from grpo_env.types import Episode, Group, VerifyResult

    generator = torch.Generator().manual_seed(0)
    vocab = policy.model.config.vocab_size
    eos = set(policy.eos_token_ids)
    groups = []
    for p, text in enumerate(PROMPTS):
        prompt = [{"role": "user", "content": text}]
        prompt_ids = policy.encode_chat(prompt)
        episodes = []
        for i in range(group_size):
            ids = torch.randint(vocab, (tokens,), generator=generator).tolist()
            ids = [t if t not in eos else (t + 1) % vocab for t in ids]
            reward = float(i % 2)
            episodes.append(
                Episode(
                    task_id=f"t{p}",
                    group_id=f"g{p}",
                    prompt=prompt,
                    completion="",
                    reward=reward,
                    result=VerifyResult(score=reward),
                    truncated=True,
                    prompt_ids=prompt_ids,
                    completion_ids=ids,
                )
            )
        baseline = episodes[0].model_copy(update={"reward": 0.5}) if greedy else None
        groups.append(Group(group_id=f"g{p}", task_id=f"t{p}", episodes=episodes, greedy=baseline))
    return groups


def measure_one(agent_name: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    """One configuration, in this (fresh) process."""
    import torch

    from grpo_env.policy.config import ModelConfig
    from grpo_env.policy.generation import HFGenerator, SamplingParams
    from grpo_env.policy.models import load_policy
    from grpo_env.registry import agents

    torch.manual_seed(0)
    policy = load_policy(ModelConfig(name=args.model, lora=mode == "lora", device=args.device))
    factory = agents.resolve(agent_name).load()
    options: dict[str, Any] = {"lr": 1e-6, "micro_batch_size": args.micro_batch_size}
    options.update(AGENT_OPTIONS.get(agent_name, {"beta": args.beta}))
    if agent_name == "online_dpo":
        options["max_pairs_per_group"] = args.group_size // 2
    agent = factory(
        policy,
        HFGenerator(policy),
        SamplingParams(max_new_tokens=args.tokens, temperature=1.0),
        factory.Config(**options),
        total_steps=1,
    )
    groups = fixed_groups(policy, args.group_size, args.tokens, agent.wants_greedy_sample)
    cuda = policy.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    setup = rss_mb()
    started = time.perf_counter()
    with RssSampler() as sampler:
        metrics = agent.update(groups)
    seconds = time.perf_counter() - started
    critic = getattr(agent, "critic", None)
    return {
        "agent": agent_name,
        "mode": mode,
        "device": str(policy.device),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "setup_rss_mb": round(setup, 1),
        "step_peak_rss_mb": round(sampler.peak, 1),
        "cuda_max_allocated_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)
        if cuda
        else None,
        "update_seconds": round(seconds, 2),
        "policy_trainable_params": sum(p.numel() for p in policy.trainable_parameters()),
        "critic_params": sum(p.numel() for p in critic.parameters()) if critic else 0,
        "critic_trainable_params": sum(p.numel() for p in critic.trainable_parameters())
        if critic
        else 0,
        "samples_trained": metrics["samples_trained"],
        "reference": getattr(agent, "reference", None) is not None,
    }


# Each agent's own knobs in the benchmark (the rest get ``--beta``).
AGENT_OPTIONS: dict[str, dict[str, Any]] = {
    "online_dpo": {"pairs": "all"},  # + max_pairs_per_group = G / 2: GRPO's 16 sequences
    "online_rft": {"beta": 0.0},  # RFT's own: no KL, no reference
}


def saving(grpo: float | None, ppo: float | None) -> float | None:
    return None if grpo is None or ppo is None else round(1 - grpo / ppo, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64, help="completion tokens per sample")
    parser.add_argument("--micro-batch-size", type=int, default=8)
    parser.add_argument("--beta", type=float, default=0.04)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: AGENT:MODE in this process
    args = parser.parse_args()
    if args.one:
        agent_name, mode = args.one.split(":")
        print(json.dumps(measure_one(agent_name, mode, args)))
        return
    results: dict[str, dict[str, Any]] = {}
    shared = [
        f"--model={args.model}",
        f"--device={args.device}",
        f"--group-size={args.group_size}",
        f"--tokens={args.tokens}",
        f"--micro-batch-size={args.micro_batch_size}",
        f"--beta={args.beta}",
    ]
    for config in args.configs.split(","):
        command = [sys.executable, __file__, *shared, "--one", config]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"{config} failed:\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        results[config] = row
        print(json.dumps(row), flush=True)
    summary: dict[str, Any] = {"summary": "saving = 1 - grpo / ppo"}
    for mode in ("full", "lora"):
        grpo, ppo = results.get(f"grpo:{mode}"), results.get(f"ppo:{mode}")
        if grpo and ppo:
            summary[mode] = {
                key: saving(grpo[key], ppo[key])
                for key in (
                    "peak_rss_mb",
                    "setup_rss_mb",
                    "step_peak_rss_mb",
                    "cuda_max_allocated_mb",
                )
            }
    print(json.dumps(summary))
    relative: dict[str, Any] = {"summary": "step peak relative to grpo (1.0 = the same)"}
    for mode in ("full", "lora"):
        grpo = results.get(f"grpo:{mode}")
        if not grpo:
            continue
        relative[mode] = {
            name: {
                key: ratio(row[key], grpo[key])
                for key in ("step_peak_rss_mb", "cuda_max_allocated_mb")
            }
            for name, row in ((c.split(":")[0], r) for c, r in results.items() if c.endswith(mode))
        }
    print(json.dumps(relative))


def ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else round(value / base, 3)


if __name__ == "__main__":
    main()
