"""One rank of the gradient-equality test (run by tests/grpo_env/training/test_distributed.py).

    python dist_grad_worker.py MODE OUT          one process, the whole batch
    torchrun --nproc-per-node 2 dist_grad_worker.py MODE OUT   two ranks, groups sharded

MODE is ``ddp`` (LoRA) or ``fsdp2`` (full fine-tuning, reference sharded too). The update's
gradient (after the ranks' reduction, before clipping and the optimiser step) is written by
rank 0 to OUT as a flat float64 tensor.
"""

import sys

import numpy as np
import torch

from grpo_env.agents.grpo import GRPOAgent, GRPOConfig
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import wrap_policy
from grpo_env.testing import DIGITS, char_tokenizer, tiny_llama
from grpo_env.training import distributed, parallel
from grpo_env.types import Episode, Group, VerifyResult

GROUPS, G = 3, 3  # 3 groups over 2 ranks: unequal shares, so pad passes run too


def batch(vocab: int) -> list[Group]:
    rng = np.random.default_rng(7)
    groups = []
    for i in range(GROUPS):
        prompt = rng.integers(4, vocab, size=int(rng.integers(2, 5))).tolist()
        episodes = []
        for _ in range(G):
            ids = rng.integers(4, vocab, size=int(rng.integers(1, 6))).tolist()
            score = float(rng.random())
            episodes.append(
                Episode(
                    task_id=f"t{i}",
                    group_id=f"g{i}",
                    prompt=[{"role": "user", "content": "x"}],
                    completion="x",
                    reward=score,
                    result=VerifyResult(score=score),
                    prompt_ids=prompt,
                    completion_ids=ids,
                )
            )
        groups.append(Group(group_id=f"g{i}", task_id=f"t{i}", episodes=episodes))
    return groups


def main(mode: str, out: str) -> None:
    info = distributed.init_from_env(timeout_s=120)
    tokenizer = char_tokenizer(DIGITS + "=")
    model = tiny_llama(tokenizer, seed=0)
    lora = mode == "ddp"
    # FSDP2 keeps the model's SDPA, as the trainer does (training.trainer.model_config_for).
    policy = wrap_policy(
        model,
        tokenizer,
        ModelConfig(lora=lora, attention="auto" if lora else "model"),
        source="tiny",
        device=torch.device("cpu"),
    )
    if lora:  # B = 0 at init would leave A without gradient: give both a signal
        torch.manual_seed(1)
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.data.normal_(0, 0.02)
    sampling = SamplingParams(max_new_tokens=8, temperature=0.7)
    config = GRPOConfig(beta=0.04, micro_batch_size=2, loss_agg="seq-mean-token-mean")
    agent = GRPOAgent(policy, HFGenerator(policy), sampling, config, total_steps=1)
    if info.enabled:
        parallel.prepare_agent(agent, mode)
    # Perturb the policy so the reference differs (a real KL gradient), identically everywhere.
    torch.manual_seed(2)
    with torch.no_grad():
        for param in policy.trainable_parameters():
            noise = torch.randn(param.shape) * 0.01
            if hasattr(param, "full_tensor"):
                from torch.distributed.tensor import distribute_tensor

                noise = distribute_tensor(noise, param.device_mesh, param.placements)
            param.add_(noise)
    captured: list[torch.Tensor] = []

    def capture() -> float:
        grads = []
        for param in policy.trainable_parameters():
            grad = param.grad
            grad = grad.full_tensor() if hasattr(grad, "full_tensor") else grad
            grads.append(grad.detach().double().flatten())
        captured.append(torch.cat(grads))
        policy.model.zero_grad(set_to_none=True)
        return 0.0

    agent.optimizer_step = capture
    groups = batch(len(tokenizer))
    mine = distributed.shard(len(groups), info.rank, info.world_size)
    agent.update(groups[mine.start : mine.stop])
    if info.is_main:
        torch.save(captured[0], out)
    distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
