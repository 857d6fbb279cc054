"""The trained model across ranks: DDP (replicated) or FSDP2 (``fully_shard``, sharded).

- ``ddp``: every rank holds the whole model; gradients are all-reduced once per optimiser step
  (micro-batches before the last run under ``no_sync``). For LoRA (only the adapters' gradients
  travel) and models that fit one device.
- ``fsdp2``: parameters, gradients and optimiser state are sharded over the ranks, each decoder
  layer its own unit; a layer's weights are all-gathered for its forward and backward only.
  The frozen reference of full fine-tuning is sharded the same way. For full fine-tuning of
  models that do not fit one device.

Both average gradients over the ranks; ``grpo_env.training.distributed.gradient_scale`` undoes
that, so the step's gradient is the single-process gradient of the whole batch.

Every rank must run the same number of forward/backward passes per optimiser step (FSDP2
all-gathers in each; DDP reduces in the last): ranks with fewer micro-batches run zero-loss
*pad passes* (``pad_passes``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from grpo_env.policy.logprobs import TokenBatch, pack_sequences, token_logprobs
from grpo_env.training import distributed


def decoder_layers(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks (FSDP2's units): modules named in ``_no_split_modules``, else
    classes called ``*DecoderLayer``."""
    names = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or [])
    layers = [
        m
        for m in model.modules()
        if type(m).__name__ in names or type(m).__name__.endswith("DecoderLayer")
    ]
    if not layers:
        raise ValueError(f"no decoder layers found in {type(model).__name__} to shard")
    return layers


def fsdp2_shard(model: nn.Module) -> nn.Module:
    """``fully_shard`` each decoder layer, then the root (embeddings, norm, head), in place."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    info = distributed.current()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mesh = init_device_mesh(device, (info.world_size,))
    for layer in decoder_layers(model):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def ddp_wrap(model: nn.Module) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    ids = [device.index] if device.type == "cuda" else None
    # Rank 0's weights are broadcast here: every rank starts from the same model.
    return DistributedDataParallel(model, device_ids=ids)


def sample_like_ranks(agent: Any) -> None:
    """Sample through the path whose draws are the same on 1 and N ranks: N-rank runs, and
    single-process runs with ``distributed.seed_per_group`` (the comparison run), use it.

    The hf sampling loop's draws on N ranks have not been shown to equal one rank's (the
    1-vs-2-rank test differs with it; thread counts are not the cause: the loop draws the same
    at 1 and 2 threads); transformers' generate path's do."""
    if getattr(agent.generator, "decode", "generate") != "generate":  # loop, fused or auto
        agent.generator.decode = "generate"


def prepare_agent(agent: Any, strategy: distributed.Strategy) -> None:
    """Wrap (DDP) or shard (FSDP2) ``agent``'s policy for an N-rank run.

    The agent trains through ``agent.train_module``; sampling, evaluation and saving keep
    using ``agent.policy.model`` (the same parameters). FSDP2 replaces the parameters with
    sharded ones, so the optimiser is rebuilt over them.
    """
    policy = agent.policy
    sample_like_ranks(agent)
    if strategy == "ddp":
        agent.train_module = ddp_wrap(policy.model)
        return
    if policy.lora:
        raise ValueError("fsdp2 shards full fine-tuning; LoRA runs use ddp")
    if getattr(agent, "needs_scoring_pass", False):
        # Its no-grad passes run a rank-dependent number of sharded forwards.
        raise ValueError(f"{type(agent).__name__} with a KL in the reward runs under ddp only")
    fsdp2_shard(policy.model)
    reference = getattr(agent, "reference", None)
    if reference is not None and reference.frozen is not None:
        fsdp2_shard(reference.frozen)
        reference.share_prompts = False
    agent.train_module = policy.model
    agent.rebuild_optimizer()
    if hasattr(agent.generator, "synced_gpus"):  # hf: sharded generate in lock-step
        agent.generator.synced_gpus = True


def is_wrapped(module: nn.Module | None) -> bool:
    return module is not None and distributed.current().enabled


@contextmanager
def gradient_sync(module: nn.Module, last: bool) -> Iterator[None]:
    """DDP: accumulate locally until the step's last micro-batch, which all-reduces."""
    no_sync = getattr(module, "no_sync", None)
    with no_sync() if (no_sync is not None and not last) else nullcontext():
        yield


def step_pass_count(local: int) -> int:
    """The micro-batch count every rank runs this step: the largest of any rank."""
    return int(distributed.all_reduce([local], "max")[0])


def pad_batch(pad_id: int, device: torch.device) -> TokenBatch:
    return pack_sequences([[pad_id]], [[pad_id]], pad_id).to(device)


def pad_pass(module: nn.Module, pad_id: int, device: torch.device, last: bool) -> None:
    """A forward/backward with zero loss: the collectives of a micro-batch, no gradient."""
    with gradient_sync(module, last):
        logp, _ = token_logprobs(module, pad_batch(pad_id, device), 1.0, share_prompts=False)
        (logp.sum() * 0.0).backward()


# ----- FSDP2 checkpoints: full weights gathered on every rank, written by rank 0 -------------


def uses_fsdp2(agent: Any) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(getattr(agent, "train_module", None), FSDPModule)


def gather_full_state(agent: Any) -> dict[str, Any]:
    """The unsharded weights, optimiser and schedule state (a collective: every rank calls it;
    the tensors land on the CPU)."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    model = agent.policy.model
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return {
        "model": get_model_state_dict(model, options=options),
        "optimizer": get_optimizer_state_dict(model, agent.optimizer, options=options),
        "scheduler": agent.scheduler.state_dict(),
    }


def write_full_state(agent: Any, state: dict[str, Any], directory: Path) -> None:
    """What ``OptimizingAgent.save`` writes, from gathered state: transformers-format weights
    in ``policy/`` and the optimiser in ``optimizer.pt`` (keyed by parameter names)."""
    policy = agent.policy
    target = directory / "policy"
    target.mkdir(parents=True, exist_ok=True)
    policy.model.save_pretrained(target, state_dict=state["model"])
    policy.tokenizer.save_pretrained(target)
    (target / "policy.json").write_text(json.dumps({"source": policy.source, "lora": False}) + "\n")
    torch.save(
        {"optimizer": state["optimizer"], "scheduler": state["scheduler"]},
        directory / "optimizer.pt",
    )


def load_full_state(agent: Any, directory: Path) -> None:
    """Load a checkpoint into the sharded policy and optimiser (every rank reads the files)."""
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    weights: dict[str, torch.Tensor] = {}
    for file in sorted((directory / "policy").glob("*.safetensors")):
        weights.update(load_file(str(file)))
    model = agent.policy.model
    options = StateDictOptions(full_state_dict=True, strict=False)  # tied weights saved once
    set_model_state_dict(model, weights, options=options)
    saved = torch.load(directory / "optimizer.pt", weights_only=False)
    set_optimizer_state_dict(model, agent.optimizer, saved["optimizer"], options=options)
    agent.scheduler.load_state_dict(saved["scheduler"])
