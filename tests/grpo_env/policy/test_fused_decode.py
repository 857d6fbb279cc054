"""The fused decode step computes what the model's own forward computes: same samples, same
logprobs (float32 to rounding, bf16 within its bound), with left padding, GQA, biases, LoRA
and rows leaving the batch."""

import pytest
import torch

from grpo_env.policy.config import ModelConfig
from grpo_env.policy.decode import sample_rows
from grpo_env.policy.fused_decode import unsupported_reason
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import load_policy
from grpo_env.testing import DIGITS, char_tokenizer, save_tiny_model, tiny_llama

PROMPTS = ("7", "12", "3456")  # three lengths: the batch is left-padded


def tiny(kind: str, tokenizer, **overrides):
    model = tiny_llama(tokenizer, architecture=kind, seed=5, **overrides)
    with torch.no_grad():  # biases start at zero: make them count
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.5)
    return model


@pytest.fixture(scope="module", params=["llama", "qwen2", "mistral-full-attention"])
def model_dir(request, tmp_path_factory):
    tokenizer = char_tokenizer(DIGITS + "=")
    kind = request.param.split("-")[0]
    overrides = {"sliding_window": None} if kind == "mistral" else {}
    model = tiny(kind, tokenizer, **overrides)
    return save_tiny_model(tmp_path_factory.mktemp(request.param), tokenizer, model)


def both_ways(policy, temperature=1.0, eos_token="5", system=None):
    start = [{"role": "system", "content": system}] if system else []
    prompts = [policy.encode_chat([*start, {"role": "user", "content": p}]) for p in PROMPTS]
    # A digit as EOS: rows finish at different steps and leave the batch.
    eos = [policy.tokenizer.convert_tokens_to_ids(eos_token)]
    out = []
    for fused in (False, True):
        torch.manual_seed(0)
        with policy.autocast():
            out.append(
                sample_rows(
                    policy.model,
                    prompts,
                    4,
                    max_new_tokens=12,
                    temperature=temperature,
                    top_k=0,
                    top_p=1.0,
                    eos_ids=eos,
                    pad_id=policy.pad_token_id,
                    device=policy.device,
                    fused=fused,
                )
            )
    return out


def perturb_adapters(policy):
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.3)


@pytest.mark.parametrize("lora", [False, True])
def test_float32_samples_and_logprobs_match_the_models_forward(model_dir, lora):
    policy = load_policy(ModelConfig(name=str(model_dir), lora=lora, dtype="float32"))
    if lora:
        perturb_adapters(policy)
    assert unsupported_reason(policy.model) is None
    model_way, fused_way = both_ways(policy, temperature=0.7)
    lengths = {len(r.token_ids) for r in model_way}
    assert len(lengths) > 1, "every row the same length: no row left the batch early"
    assert [r.token_ids for r in fused_way] == [r.token_ids for r in model_way]
    for ours, theirs in zip(fused_way, model_way, strict=True):
        assert torch.allclose(torch.tensor(ours.logprobs), torch.tensor(theirs.logprobs), atol=1e-5)


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-5), ("bfloat16", 1e-3)])
def test_a_prefix_every_prompt_shares_runs_once_and_samples_the_same(model_dir, dtype, tolerance):
    from grpo_env.policy import decode, fused_decode

    policy = load_policy(ModelConfig(name=str(model_dir), lora=True, dtype=dtype))
    perturb_adapters(policy)
    system = "0123456789" * 2  # 20 tokens every prompt starts with
    prefixes = []
    real = fused_decode.FusedDecoder.prefill

    def spied(self, ids, mask, copies, prefix=None):
        prefixes.append(None if prefix is None else prefix.tolist())
        return real(self, ids, mask, copies, prefix=prefix)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fused_decode.FusedDecoder, "prefill", spied)
        model_way, fused_way = both_ways(policy, temperature=0.7, system=system)
    assert decode.SHARED_PREFIX_MIN <= 20
    assert prefixes == [policy.tokenizer.encode(system, add_special_tokens=False)]
    lengths = {len(r.token_ids) for r in model_way}
    assert len(lengths) > 1, "every row the same length: no row left the batch early"
    assert [r.token_ids for r in fused_way] == [r.token_ids for r in model_way]
    for ours, theirs in zip(fused_way, model_way, strict=True):
        assert torch.allclose(
            torch.tensor(ours.logprobs), torch.tensor(theirs.logprobs), atol=tolerance
        )


@pytest.mark.parametrize(
    "prompts, shared",
    [
        ([[1, 2, 3]], 0),  # one prompt: nothing to share
        ([[1, 2, 3], [1, 2, 4]], 2),
        ([[1, 2], [1, 2, 3, 4]], 1),  # the shorter prompt keeps its last token
        ([[1, 2, 3], [1, 2, 3]], 2),
        ([[5, 2, 3], [1, 2, 3]], 0),
        ([[1, 2, 3, 4], [1, 2, 9, 4], [1, 2, 3, 4]], 2),
    ],
)
def test_shared_prefix_length(prompts, shared):
    from grpo_env.policy.decode import shared_prefix_length

    assert shared_prefix_length(prompts) == shared


def test_key_value_buffers_grow_as_completions_get_longer(model_dir, monkeypatch):
    from grpo_env.policy import fused_decode

    monkeypatch.setattr(fused_decode, "BUFFER_STEP", 3)  # 12 new tokens: grows 4 times
    policy = load_policy(ModelConfig(name=str(model_dir), lora=False, dtype="float32"))
    model_way, fused_way = both_ways(policy, temperature=0.7)
    assert max(len(r.token_ids) for r in model_way) > 3 * fused_decode.BUFFER_STEP
    assert [r.token_ids for r in fused_way] == [r.token_ids for r in model_way]
    for ours, theirs in zip(fused_way, model_way, strict=True):
        assert torch.allclose(torch.tensor(ours.logprobs), torch.tensor(theirs.logprobs), atol=1e-5)


@pytest.mark.parametrize("lora", [False, True])
def test_bf16_matches_the_models_autocast_forward(model_dir, lora):
    policy = load_policy(ModelConfig(name=str(model_dir), lora=lora, dtype="bfloat16"))
    if lora:
        perturb_adapters(policy)
    model_way, fused_way = both_ways(policy)
    assert [r.token_ids for r in fused_way] == [r.token_ids for r in model_way]
    # The same casts in the same places: equal to the bit here (SmolLM2 too); 1e-3 leaves room
    # for a kernel that rounds a fused matmul differently. A wrong rotary shows 5e-3.
    for ours, theirs in zip(fused_way, model_way, strict=True):
        assert torch.allclose(torch.tensor(ours.logprobs), torch.tensor(theirs.logprobs), atol=1e-3)


@pytest.mark.parametrize("lora", [False, True])
def test_prepacked_bf16_weights_sample_what_plain_weights_sample(model_dir, lora, monkeypatch):
    from grpo_env.policy import prepacked

    if prepacked.prepack(torch.zeros(4, 4, dtype=torch.bfloat16), 4) is None:
        pytest.skip("this torch/CPU has no oneDNN bf16 linear")
    policy = load_policy(ModelConfig(name=str(model_dir), lora=lora, dtype="bfloat16"))
    if lora:
        perturb_adapters(policy)
    packed_layouts = []
    real = prepacked.prepack

    def counted(weight, rows):
        packed = real(weight, rows)
        packed_layouts.append(packed.layout)
        return packed

    monkeypatch.setattr(prepacked, "prepack", counted)
    _, packed_way = both_ways(policy)
    # Every weight of the step: q/k/v, o, gate/up and down per layer, the head, (LoRA) A and B.
    layers = policy.model.config.num_hidden_layers
    assert len(packed_layouts) >= 4 * layers + 1
    assert set(packed_layouts) == {torch._mkldnn}
    monkeypatch.setattr(prepacked, "prepack", lambda weight, rows: None)
    _, plain_way = both_ways(policy)
    assert [r.token_ids for r in packed_way] == [r.token_ids for r in plain_way]
    for packed, plain in zip(packed_way, plain_way, strict=True):
        assert packed.logprobs == plain.logprobs  # the same kernel's arithmetic: to the bit


def test_the_generator_picks_the_fused_step_on_cpu_bf16_only(model_dir):
    bf16 = load_policy(ModelConfig(name=str(model_dir), lora=True, dtype="bfloat16"))
    fp32 = load_policy(ModelConfig(name=str(model_dir), lora=True, dtype="float32"))
    assert HFGenerator(bf16)._fused_step()
    assert not HFGenerator(fp32)._fused_step()  # auto: float32 keeps the model's forward
    assert HFGenerator(fp32, decode="fused")._fused_step()
    assert not HFGenerator(bf16, decode="loop")._fused_step()
    prompt = bf16.encode_chat([{"role": "user", "content": "4"}])
    groups = HFGenerator(bf16, decode="fused").generate([prompt], 3, SamplingParams(6))
    assert [len(c.logprobs) for c in groups[0]] == [len(c.token_ids) for c in groups[0]]


def test_unsupported_models_are_named_and_refused(tmp_path):
    tokenizer = char_tokenizer(DIGITS + "=")
    windowed = tiny("mistral", tokenizer, sliding_window=8)
    assert unsupported_reason(windowed) == "sliding-window attention"
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2))
    assert "model type 'gpt2'" in unsupported_reason(gpt2)
    from peft import LoraConfig, get_peft_model

    dora = get_peft_model(tiny("llama", tokenizer), LoraConfig(r=2, use_dora=True))
    assert "DoRA" in unsupported_reason(dora)
    directory = save_tiny_model(tmp_path / "windowed", tokenizer, windowed)
    policy = load_policy(ModelConfig(name=str(directory), lora=False, dtype="bfloat16"))
    assert not HFGenerator(policy)._fused_step()  # auto falls back to the model's forward
    with pytest.raises(ValueError, match="hf_decode = fused cannot run this model: sliding"):
        HFGenerator(policy, decode="fused").generate([[4, 5]], 2, SamplingParams(4))
