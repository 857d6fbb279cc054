"""The CPU short-sequence attention gives SDPA's numbers (values, gradients, cached decoding)
and hands long sequences to SDPA; policies on CPU use it unless told not to."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import grpo_env.policy.attention as attention
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.models import load_policy
from grpo_env.policy.reference import Reference


def twin_models(seed: int = 0) -> tuple[LlamaForCausalLM, LlamaForCausalLM]:
    """The same weights twice (own configs): one on SDPA, one switched to the matmul path."""
    config = LlamaConfig(
        vocab_size=50,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=2,  # 4 query heads per key/value head
        attn_implementation="sdpa",
    )
    torch.manual_seed(seed)
    sdpa = LlamaForCausalLM(config).eval()
    short = LlamaForCausalLM(copy.deepcopy(config)).eval()
    short.load_state_dict(sdpa.state_dict())
    assert attention.use_short_eager(short)
    assert sdpa.config._attn_implementation == "sdpa"
    return sdpa, short


def left_padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    ids = torch.randint(0, 50, (3, 10))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0
    mask[1, :1] = 0
    return ids, mask, (mask.cumsum(dim=1) - 1).clamp(min=0)


@pytest.mark.parametrize("padded", [True, False], ids=["left-padded", "causal-only"])
def test_matches_sdpa_in_values_and_gradients(padded):
    sdpa, short = twin_models()
    ids, mask, positions = left_padded_batch()
    kwargs = {"attention_mask": mask, "position_ids": positions} if padded else {}
    real = mask.bool() if padded else torch.ones_like(ids, dtype=torch.bool)
    outs = []
    for model in (sdpa, short):
        model.zero_grad()
        logits = model(input_ids=ids, **kwargs).logits
        logits[real].logsumexp(dim=-1).sum().backward()
        outs.append((logits.detach()[real], [p.grad.clone() for p in model.parameters()]))
    (a, grads_a), (b, grads_b) = outs
    torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(gb, ga, atol=1e-4, rtol=1e-4)


def test_matches_sdpa_when_decoding_one_token_over_a_cache():
    sdpa, short = twin_models()
    ids, mask, positions = left_padded_batch()
    step = torch.tensor([[3], [7], [11]])
    grown = torch.cat([mask, torch.ones(3, 1, dtype=mask.dtype)], dim=1)
    logits = []
    for model in (sdpa, short):
        with torch.no_grad():
            prefill = model(input_ids=ids, attention_mask=mask, position_ids=positions)
            out = model(
                input_ids=step,
                attention_mask=grown,
                position_ids=positions[:, -1:] + 1,
                cache=prefill.cache,
            )
        logits.append(out.logits)
    torch.testing.assert_close(logits[1], logits[0], atol=1e-5, rtol=1e-5)


def test_a_packed_row_group_by_group_equals_the_whole_masked_row(monkeypatch):
    from grpo_env.policy import packing
    from grpo_env.policy.logprobs import pack_sequences

    monkeypatch.setattr(packing, "GROUP_QUERIES", 4)
    prompts = [[4, 5, 6]] * 3 + [[7, 8]] * 2
    completions = [[1, 2, 3], [1, 2, 3, 4, 5, 6], [9, 9], [3, 3, 3], [2]]
    (row,) = packing.pack_rows(pack_sequences(prompts, completions, 0))
    assert len(row.groups) == 5  # a completion longer than a group: a group of its own
    length = row.input_ids.shape[1]
    torch.manual_seed(0)
    query = torch.randn(1, 4, length, 8, requires_grad=True)
    key = torch.randn(1, 2, length, 8, requires_grad=True)
    value = torch.randn(1, 2, length, 8, requires_grad=True)
    module = torch.nn.Module()
    whole, _ = attention.short_eager_attention(module, query, key, value, row.allowed)
    grouped, _ = attention.short_eager_attention(
        module, query, key, value, row.allowed, packed_groups=row.groups
    )
    assert grouped.shape == whole.shape
    assert torch.allclose(grouped, whole, atol=1e-6)
    weights = torch.randn_like(whole)
    grads = [
        torch.autograd.grad((out * weights).sum(), (query, key, value)) for out in (whole, grouped)
    ]
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_long_sequences_go_to_sdpa(monkeypatch):
    import transformers.integrations.sdpa_attention as sdpa_module

    calls = []
    original = sdpa_module.sdpa_attention_forward

    def spy(*args, **kwargs):
        calls.append(args[1].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(sdpa_module, "sdpa_attention_forward", spy)
    sdpa, short = twin_models()
    ids, mask, positions = left_padded_batch()
    short(input_ids=ids, attention_mask=mask, position_ids=positions)
    assert calls == []  # 10 x 10 scores: the matmul path
    monkeypatch.setattr(attention, "EAGER_MAX_SCORES", 99)
    long = short(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    assert len(calls) == 2  # one per layer
    reference = sdpa(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    torch.testing.assert_close(long, reference)


def test_cpu_policies_use_it_unless_told_not_to(toy_model):
    assert load_policy(ModelConfig(name=str(toy_model), lora=False)).attention == "short_eager"
    policy = load_policy(ModelConfig(name=str(toy_model), lora=True))
    assert policy.attention == "short_eager"  # switched on the base model, under the adapters
    kept = load_policy(ModelConfig(name=str(toy_model), lora=False, attention="model"))
    assert kept.attention == "model"
    assert kept.model.config._attn_implementation == "sdpa"


def test_a_bf16_reference_stores_linear_weights_in_bf16_and_keeps_the_logprobs(toy_model):
    from grpo_env.policy.logprobs import pack_sequences

    policy = load_policy(ModelConfig(name=str(toy_model), lora=False, dtype="bfloat16"))
    reference = Reference(policy)
    frozen = reference.frozen
    linears = [m for m in frozen.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    assert frozen.get_input_embeddings().weight.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in policy.model.parameters())  # the policy's own
    batch = pack_sequences([[1, 2, 3], [1, 2, 3], [4, 5]], [[6, 7], [8], [9, 6, 7]], pad_id=0)
    with torch.no_grad(), policy.autocast():
        from grpo_env.policy.logprobs import token_logprobs

        expected = token_logprobs(policy.model, batch, 0.7)[0]
    torch.testing.assert_close(reference.logprobs(batch, 0.7), expected, atol=0, rtol=0)
