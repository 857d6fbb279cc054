"""Prepacked bf16 weights compute what ``F.linear`` computes, to the bit, and the frozen
reference's prepacked copy gives the logprobs its plain copy gives."""

import pytest
import torch
from torch import nn

from grpo_env.policy.prepacked import PrepackedLinear, linear, prepack, prepack_linears

needs_onednn_bf16 = pytest.mark.skipif(
    prepack(torch.zeros(4, 4, dtype=torch.bfloat16), 4) is None,
    reason="this torch/CPU has no oneDNN bf16 linear",
)


def test_prepack_applies_to_bf16_cpu_weights_only():
    weight = torch.randn(8, 4)
    assert prepack(weight, 2) is None  # float32: F.linear's MKL kernel rounds differently
    assert prepack(weight.half(), 2) is None


@needs_onednn_bf16
@pytest.mark.parametrize("rows", [1, 3, 16, 40])
def test_prepacked_linear_equals_f_linear_to_the_bit_for_any_row_count(rows):
    torch.manual_seed(0)
    weight = torch.randn(48, 24).bfloat16()
    bias = torch.randn(48).bfloat16()
    packed = prepack(weight, 16)  # packed for 16 rows, used with others
    assert packed.layout == torch._mkldnn
    x = torch.randn(2, rows, 24).bfloat16()
    assert torch.equal(linear(x, packed, bias), nn.functional.linear(x, weight, bias))
    assert torch.equal(linear(x, packed, None), nn.functional.linear(x, weight))


@needs_onednn_bf16
def test_prepack_linears_swaps_frozen_bf16_linears_only_and_keeps_the_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Sequential(nn.Linear(16, 4)))
    trainable = nn.Linear(8, 8).bfloat16()
    model.append(nn.Identity())
    model.bfloat16().requires_grad_(False)
    x = torch.randn(5, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        before = model(x)
        assert prepack_linears(model, 5) == 2
        after = model(x)  # the float32 input is cast as autocast casts it
    assert isinstance(model[0], PrepackedLinear) and isinstance(model[2][0], PrepackedLinear)
    assert torch.equal(before, after)
    assert prepack_linears(trainable, 5) == 0  # weights with gradients change: not packed
    assert prepack_linears(nn.Linear(8, 8).requires_grad_(False), 5) == 0  # float32


@needs_onednn_bf16
def test_the_frozen_reference_prepacks_at_first_use_with_the_same_logprobs(tmp_path):
    from grpo_env.policy.config import ModelConfig
    from grpo_env.policy.logprobs import pack_sequences, token_logprobs
    from grpo_env.policy.models import load_policy
    from grpo_env.policy.reference import Reference
    from grpo_env.testing import DIGITS, char_tokenizer, save_tiny_model, tiny_llama

    tokenizer = char_tokenizer(DIGITS + "=")
    directory = save_tiny_model(tmp_path / "m", tokenizer, tiny_llama(tokenizer, seed=3))
    policy = load_policy(ModelConfig(name=str(directory), lora=False, dtype="bfloat16"))
    reference = Reference(policy)
    prompts = [policy.encode_chat([{"role": "user", "content": p}]) for p in ("12", "7", "12")]
    completions = [[4, 5, 6], [7], [8, 9]]
    batch = pack_sequences(prompts, completions, policy.pad_token_id)
    with torch.no_grad(), policy.autocast():
        plain = token_logprobs(reference.frozen, batch, 1.0)[0]
    assert not any(isinstance(m, PrepackedLinear) for m in reference.frozen.modules())
    packed = reference.logprobs(batch, 1.0)
    assert any(isinstance(m, PrepackedLinear) for m in reference.frozen.modules())
    assert torch.equal(packed, plain)
