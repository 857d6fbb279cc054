"""Training logprobs match the sampler's at the sampling temperature (rule 4)."""

from types import SimpleNamespace

import pytest
import torch

from grpo_env.policy import packing
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.logprobs import (
    SelectedLogprobs,
    _packing_mask_dtype,
    logsumexp_parts,
    pack_sequences,
    token_logprobs,
)
from grpo_env.policy.models import load_policy


@pytest.fixture(scope="module")
def policy(toy_model):
    return load_policy(ModelConfig(name=str(toy_model), lora=False))


def sample(policy, temperature, n=8, decode="loop"):
    torch.manual_seed(0)
    prompts = [policy.encode_chat([{"role": "user", "content": d}]) for d in ("3", "45", "6789")]
    groups = HFGenerator(policy, decode=decode).generate(
        prompts, n, SamplingParams(max_new_tokens=6, temperature=temperature)
    )
    return [c for group in groups for c in group]


def recompute(policy, completions, temperature):
    batch = pack_sequences(
        [c.prompt_ids for c in completions], [c.token_ids for c in completions], policy.pad_token_id
    )
    with torch.no_grad():
        logp, _ = token_logprobs(policy.model, batch, temperature)
    return logp, batch.completion_mask


@pytest.mark.parametrize("decode", ["loop", "generate"])
@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7])
def test_training_logprobs_equal_sampler_logprobs_at_the_same_temperature(
    policy, temperature, decode
):
    completions = sample(policy, temperature, decode=decode)
    # Rows that end early leave the loop's batch while the others go on: both are checked.
    assert len({len(c.token_ids) for c in completions}) > 1
    logp, mask = recompute(policy, completions, temperature)
    for row, completion in enumerate(completions):
        mine = logp[row, : len(completion.token_ids)]
        assert torch.allclose(mine, torch.tensor(completion.logprobs), atol=1e-5)
        assert mask[row].sum() == len(completion.token_ids)


def test_the_temperature_matters(policy):
    completions = sample(policy, 0.5)
    at_one, mask = recompute(policy, completions, 1.0)
    sampled = torch.zeros_like(at_one)
    for row, completion in enumerate(completions):
        sampled[row, : len(completion.logprobs)] = torch.tensor(completion.logprobs)
    assert ((at_one - sampled).abs() * mask).max() > 0.05


@pytest.mark.parametrize("decode", ["loop", "generate"])
def test_greedy_reports_temperature_one_logprobs(policy, decode):
    completions = sample(policy, 0.0, n=1, decode=decode)
    logp, _ = recompute(policy, completions, 1.0)
    for row, completion in enumerate(completions):
        assert torch.allclose(
            logp[row, : len(completion.token_ids)], torch.tensor(completion.logprobs), atol=1e-5
        )


def test_left_padding_does_not_change_logprobs(policy):
    alone = pack_sequences([[5, 6]], [[7, 8, 2]], policy.pad_token_id)
    padded = pack_sequences([[5, 6], [4, 4, 4, 4, 4]], [[7, 8, 2], [9]], policy.pad_token_id)
    with torch.no_grad():
        a, _ = token_logprobs(policy.model, alone, 1.0)
        b, _ = token_logprobs(policy.model, padded, 1.0)
    assert torch.allclose(a[0], b[0], atol=1e-5)


def test_logsumexp_parts_is_torch_logsumexp_to_the_bit():
    torch.manual_seed(0)
    x = torch.randn(4, 5, 3001) * 7
    x[0, 0] = float("-inf")  # an all -inf row stays -inf, as in torch
    x[1, 1, 5] = float("-inf")
    lse, shifted, sums = logsumexp_parts(x)
    assert torch.equal(lse, torch.logsumexp(x, dim=-1))
    assert torch.allclose(
        shifted / sums[..., None], torch.softmax(x, dim=-1)[..., :], atol=1e-7, equal_nan=True
    )
    copy = x.clone()
    lse_overwritten, shifted_overwritten, _ = logsumexp_parts(copy, overwrite=True)
    assert shifted_overwritten.data_ptr() == copy.data_ptr()
    assert torch.equal(lse_overwritten, lse)
    assert torch.equal(shifted_overwritten, shifted)


def reference_logprobs(logits, ids, temperature):
    """The plain autograd formula and a full log-softmax entropy, to check against."""
    x = logits.float() / temperature
    full = torch.log_softmax(x, dim=-1)
    return full.gather(-1, ids[..., None])[..., 0], -(full.exp() * full).sum(-1)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_selected_logprobs_value_entropy_and_gradient_match_autograd(temperature, dtype):
    torch.manual_seed(0)
    logits = (torch.randn(3, 4, 257) * 4).to(dtype)
    ids = torch.randint(0, 257, (3, 4))
    weights = torch.randn(3, 4)
    mine = logits.clone().requires_grad_(True)
    logp, entropy = SelectedLogprobs.apply(mine, ids, temperature, True)
    (logp * weights).sum().backward()
    theirs = logits.clone().requires_grad_(True)
    expected_logp, expected_entropy = reference_logprobs(theirs, ids, temperature)
    (expected_logp * weights).sum().backward()
    assert logp.dtype == torch.float32 and mine.grad.dtype == dtype
    assert torch.allclose(logp, expected_logp, atol=1e-5)
    # A metric, reduced by a matmul (oneDNN's float32 order): within 1e-4 nats.
    assert torch.allclose(entropy, expected_entropy, atol=1e-4)
    assert not entropy.requires_grad
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2
    assert torch.allclose(mine.grad.float(), theirs.grad.float(), atol=tolerance)
    assert mine.grad.abs().max() > 0.1


def test_selected_logprobs_leave_float32_logits_unchanged_and_refuse_a_second_backward():
    logits = torch.randn(2, 3, 11, requires_grad=True)
    before = logits.detach().clone()
    logp, entropy = SelectedLogprobs.apply(
        logits * 1, torch.zeros(2, 3, dtype=torch.long), 0.5, False
    )
    assert entropy is None
    assert torch.equal(logits.detach(), before)
    logp.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="one backward only"):
        logp.sum().backward()


# One row; two rows (the first holds two prompts); three rows. Attention groups of up to 128
# queries (one per prompt here) and of 2 (a group per completion, the prompts on their own).
@pytest.mark.parametrize(("row_tokens", "rows"), [(512, 1), (12, 2), (7, 3)])
@pytest.mark.parametrize("group_queries", [128, 2])
@pytest.mark.parametrize("lora", [False, True])
def test_packed_pass_equals_the_flat_pass_in_value_and_gradient(
    toy_model, lora, row_tokens, rows, group_queries, monkeypatch
):
    monkeypatch.setattr(packing, "ROW_TOKENS", row_tokens)
    monkeypatch.setattr(packing, "GROUP_QUERIES", group_queries)
    policy = load_policy(ModelConfig(name=str(toy_model), lora=lora))
    prompts = [[4, 5, 6]] * 3 + [[7]] * 2 + [[8, 9, 10, 11, 12]]
    completions = [[5, 2], [6, 7, 8, 2], [9], [4, 4, 4, 4, 4], [2], [5, 6]]
    batch = pack_sequences(prompts, completions, policy.pad_token_id)
    assert batch.prompt_ids.shape[0] == 3 and batch.prompt_index.tolist() == [0, 0, 0, 1, 1, 2]
    assert len(packing.pack_rows(batch)) == rows
    results = []
    for share in (True, False):
        policy.model.zero_grad()
        logp, entropy = token_logprobs(
            policy.model, batch, 0.8, with_entropy=True, share_prompts=share
        )
        (logp * batch.completion_mask).sum().backward()
        grads = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.requires_grad}
        results.append((logp.detach(), entropy, grads))
    (packed, packed_entropy, packed_grads), (flat, flat_entropy, flat_grads) = results
    mask = batch.completion_mask.bool()
    assert torch.allclose(packed[mask], flat[mask], atol=1e-5)
    assert torch.allclose(packed_entropy[mask], flat_entropy[mask], atol=1e-5)
    assert packed[~mask].abs().max() == 0  # padding holds zeros, not the pad token's logprob
    for name, grad in flat_grads.items():
        assert torch.allclose(packed_grads[name], grad, atol=1e-5, rtol=1e-4), name
    assert any(g.abs().max() > 0 for g in flat_grads.values())


def test_packed_rows_see_their_prompt_and_their_own_tokens_only():
    batch = pack_sequences([[4, 5], [4, 5], [7]], [[1, 2, 3], [6], [8, 9]], 0)
    (row,) = packing.pack_rows(batch)
    # [4 5 | 1 2 | (6: nothing fed) | 7 | 8]: each completion's last token is not fed.
    assert row.input_ids.tolist() == [[4, 5, 1, 2, 7, 8]]
    assert row.position_ids.tolist() == [[0, 1, 2, 3, 0, 1]]
    allowed = row.allowed[0, 0].int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 1, 1],
    ]
    # Kept positions: the prompt's last for each first token, then the fed completion tokens.
    assert row.keep.tolist() == [1, 2, 3, 1, 4, 5]
    width = batch.completion_ids.shape[1]
    assert row.targets.tolist() == [0, 1, 2, width, 2 * width, 2 * width + 1]


def test_attention_groups_cover_each_query_once_with_its_prompt_and_own_keys(monkeypatch):
    monkeypatch.setattr(packing, "GROUP_QUERIES", 3)
    prompts = [[4, 5], [4, 5], [4, 5], [7]]
    batch = pack_sequences(prompts, [[1, 2, 3], [6], [1, 1, 1, 1], [8, 9]], 0)
    (row,) = packing.pack_rows(batch)
    # [4 5 | 1 2 | 1 1 1 | 7 | 8]: prompt, completion, completion, prompt, completion.
    assert row.input_ids.tolist() == [[4, 5, 1, 2, 1, 1, 1, 7, 8]]
    spans = [(g.queries, g.keys) for g in row.groups]
    assert spans == [
        (slice(0, 2), (slice(0, 2),)),  # 2 + 2 > 3: the first completion gets its own group
        (slice(2, 4), (slice(0, 2), slice(2, 4))),
        (slice(4, 7), (slice(0, 2), slice(4, 7))),
        (slice(7, 9), (slice(7, 9),)),  # the second prompt with its completion: 2 <= 3
    ]
    allowed = row.allowed[0, 0]
    for group in row.groups:
        keys = torch.cat([torch.arange(len(allowed))[part] for part in group.keys])
        assert torch.equal(group.allowed[0, 0], allowed[group.queries][:, keys])
        # The keys left out are the ones these queries may not see.
        left_out = torch.ones(len(allowed), dtype=torch.bool)
        left_out[keys] = False
        assert not allowed[group.queries][:, left_out].any()


def test_a_completion_longer_than_a_row_gets_a_row_of_its_own():
    batch = pack_sequences([[4, 5]] * 3, [[1] * 10, [2, 3], [3, 2]], 0)
    rows = packing.pack_rows(batch, row_tokens=6)
    assert [r.input_ids.shape[1] for r in rows] == [11, 4]  # the prompt and 9 fed; 2 + 1 + 1
    assert rows[1].input_ids.tolist() == [[4, 5, 2, 3]]
    assert [r.targets.tolist() for r in rows] == [list(range(10)), [10, 11, 20, 21]]


def attention_config(**fields):
    module = torch.nn.Module()
    module.config = SimpleNamespace(**fields)
    return module


def test_attention_that_ignores_custom_masks_takes_the_flat_pass():
    flash = attention_config(_attn_implementation="flash_attention_2")
    assert _packing_mask_dtype(flash, None) is None
    with pytest.raises(ValueError, match="cannot run the packed"):
        _packing_mask_dtype(flash, True)
    assert _packing_mask_dtype(attention_config(_attn_implementation="sdpa"), None) is torch.bool
    assert _packing_mask_dtype(
        attention_config(_attn_implementation="eager"), None
    ).is_floating_point
    assert _packing_mask_dtype(attention_config(_attn_implementation="sdpa"), False) is None
    # Sliding-window layers: a custom mask would make them attend to everything.
    window = attention_config(_attn_implementation="sdpa", sliding_window=64)
    assert _packing_mask_dtype(window, None) is None
    off = attention_config(_attn_implementation="sdpa", sliding_window=64, use_sliding_window=False)
    assert _packing_mask_dtype(off, None) is torch.bool
    layers = attention_config(
        _attn_implementation="sdpa", layer_types=["full_attention", "sliding_attention"]
    )
    assert _packing_mask_dtype(layers, None) is None


def test_eager_attention_gets_an_additive_mask_with_the_same_numbers(toy_model):
    batch = pack_sequences([[4, 5, 6]] * 2 + [[7]], [[5, 2], [6, 7, 8], [9, 9]], 0)
    values = []
    for implementation in ("sdpa", "eager"):
        policy = load_policy(ModelConfig(name=str(toy_model), lora=False))
        policy.model.set_attn_implementation(implementation)
        with torch.no_grad():
            values.append(token_logprobs(policy.model, batch, 1.0)[0])
    assert torch.allclose(values[0], values[1], atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients(toy_model):
    batch = pack_sequences([[4, 5, 6]] * 2 + [[7]], [[5, 2], [6, 7, 8], [9, 9]], 0)
    grads = []
    for checkpointing in (False, True):
        config = ModelConfig(name=str(toy_model), lora=False, gradient_checkpointing=checkpointing)
        policy = load_policy(config)
        policy.model.train()
        logp, _ = token_logprobs(policy.model, batch, 1.0)
        (logp * batch.completion_mask).sum().backward()
        grads.append({n: p.grad for n, p in policy.model.named_parameters()})
    for name, grad in grads[0].items():
        assert torch.allclose(grads[1][name], grad, atol=1e-5, rtol=1e-4), name
