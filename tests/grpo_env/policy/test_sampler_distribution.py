"""Rule 9: the sampler samples the distribution the loss optimises, whatever the model's own
generation_config.json asks for (Qwen2.5-Instruct ships repetition_penalty=1.05)."""

import json

import pytest
import torch
from transformers import GenerationConfig

from grpo_env.agents.grpo import GRPOAgent, GRPOConfig
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import load_policy
from grpo_env.testing import DIGITS, char_tokenizer, next_digit_env, save_tiny_model, tiny_llama
from grpo_env.training.rollout import rollout_groups

# Every one of these would change the sampled distribution if it leaked into sampling.
LEAKY = {
    "repetition_penalty": 1.05,
    "no_repeat_ngram_size": 2,
    "top_k": 1,
    "top_p": 0.3,
    "min_p": 0.5,
    "typical_p": 0.5,
    "temperature": 0.2,
    "min_new_tokens": 3,
    "suppress_tokens": [4, 5, 6],
    "bad_words_ids": [[7]],
    "do_sample": True,
}


@pytest.fixture(scope="module")
def leaky_model(tmp_path_factory):
    tokenizer = char_tokenizer(DIGITS + "=")
    model = tiny_llama(tokenizer, seed=3)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **LEAKY
    )
    directory = save_tiny_model(tmp_path_factory.mktemp("leaky"), tokenizer, model)
    saved = json.loads((directory / "generation_config.json").read_text())
    assert saved["repetition_penalty"] == 1.05 and saved["no_repeat_ngram_size"] == 2
    return directory


@pytest.mark.parametrize("decode", ["loop", "fused", "generate"])
def test_the_models_generation_config_does_not_leak_into_sampling(leaky_model, decode):
    policy = load_policy(ModelConfig(name=str(leaky_model), lora=False, dtype="float32"))
    prompt = policy.encode_chat([{"role": "user", "content": "7"}])
    torch.manual_seed(0)
    params = SamplingParams(max_new_tokens=8, temperature=0.7)
    completions = HFGenerator(policy, decode=decode).generate([prompt], 16, params)[0]
    # top_k=1 would make every sample the same; suppress/bad words would never show 4-7.
    assert len({tuple(c.token_ids) for c in completions}) > 1
    assert {4, 5, 6, 7} & {t for c in completions for t in c.token_ids}
    # The model's file is untouched for later use.
    assert policy.model.generation_config.repetition_penalty == 1.05


@pytest.mark.parametrize("decode", ["loop", "fused", "generate"])
def test_agent_logs_a_float32_sampler_gap_below_1e_5_at_temperature_0_7(leaky_model, decode):
    policy = load_policy(ModelConfig(name=str(leaky_model), lora=False, dtype="float32"))
    sampling = SamplingParams(max_new_tokens=6, temperature=0.7)
    agent = GRPOAgent(
        policy,
        HFGenerator(policy, decode=decode),
        sampling,
        GRPOConfig(beta=0.0, lr=1e-3),
        total_steps=1,
    )
    env = next_digit_env()
    torch.manual_seed(1)
    groups = rollout_groups(env, agent, [env.tasks[i] for i in range(3)], 8, tag="gap")
    metrics = agent.update(groups)
    assert 0.0 <= metrics["sampler_logprob_gap"] < 1e-5


def test_the_loop_matches_generate_when_greedy(toy_model):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=False, dtype="float32"))
    prompts = [policy.encode_chat([{"role": "user", "content": d}]) for d in ("1", "23", "456")]
    params = SamplingParams(max_new_tokens=12, temperature=0.0)
    loop = HFGenerator(policy, decode="loop").generate(prompts, 2, params)
    plain = HFGenerator(policy, decode="generate").generate(prompts, 2, params)
    for mine, theirs in zip(loop, plain, strict=True):
        assert [c.token_ids for c in mine] == [c.token_ids for c in theirs]
        for a, b in zip(mine, theirs, strict=True):
            assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-5)


def test_top_k_and_top_p_truncate_what_is_drawn_only():
    from grpo_env.policy.decode import warp_for_sampling

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(warp_for_sampling(logits, 2, 1.0)[0, 2:]).all()
    kept = ~torch.isinf(warp_for_sampling(logits, 0, 0.7)[0])
    assert kept.tolist() == [True, True, False, False]  # 0.5 + 0.3 reach 0.7
    assert not torch.isinf(warp_for_sampling(logits, 0, 1.0)).any()


def test_draw_follows_the_distribution_and_never_picks_a_zero():
    from grpo_env.policy.decode import draw

    torch.manual_seed(0)
    probs = torch.tensor([[0.0, 0.5, 0.3, 0.2, 0.0]]).repeat(20000, 1)
    counts = torch.bincount(draw(probs), minlength=5).float() / 20000
    assert counts[0] == 0 and counts[4] == 0
    assert torch.allclose(counts[1:4], torch.tensor([0.5, 0.3, 0.2]), atol=0.015)


def test_draw_finds_mass_on_block_edges_of_a_large_vocabulary():
    from grpo_env.policy.decode import DRAW_BLOCK, draw

    torch.manual_seed(0)
    vocab = 3 * DRAW_BLOCK + 17  # not a whole number of blocks
    edges = torch.tensor([0, DRAW_BLOCK - 1, DRAW_BLOCK, 2 * DRAW_BLOCK - 1, vocab - 1])
    mass = torch.tensor([0.1, 0.2, 0.15, 0.35, 0.2])
    probs = torch.zeros(40000, vocab)
    probs[:, edges] = mass
    counts = torch.bincount(draw(probs), minlength=vocab).float() / 40000
    assert counts.sum() == 1 and set(counts.nonzero().squeeze(1).tolist()) == set(edges.tolist())
    assert torch.allclose(counts[edges], mass, atol=0.015)


def test_bf16_decode_caches_bf16_keys_and_samples_the_same_tokens(toy_model, monkeypatch):
    from grpo_env.policy import decode

    policy = load_policy(ModelConfig(name=str(toy_model), lora=False, dtype="bfloat16"))
    prompts = [policy.encode_chat([{"role": "user", "content": d}]) for d in ("3", "45")]
    caches = []
    made = decode.decode_cache

    def recording(model, device):
        cache = made(model, device)
        caches.append(cache)
        return cache

    def sample(make_cache):
        monkeypatch.setattr(decode, "decode_cache", make_cache)
        torch.manual_seed(0)
        with policy.autocast():
            return decode.sample_rows(
                policy.model,
                prompts,
                4,
                max_new_tokens=6,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                eos_ids=[-1],
                pad_id=policy.pad_token_id,
                device=policy.device,
            )

    bf16_keys = sample(recording)
    float32_keys = sample(lambda model, device: None)  # the model's own cache
    assert isinstance(caches[0], decode.AutocastKeyCache)
    assert caches[0].layers[0].keys.dtype == torch.bfloat16
    assert [(r.token_ids, r.logprobs) for r in bf16_keys] == [
        (r.token_ids, r.logprobs) for r in float32_keys
    ]
    with torch.no_grad():  # and without autocast, no cache of ours
        assert decode.decode_cache(policy.model, policy.device) is None
