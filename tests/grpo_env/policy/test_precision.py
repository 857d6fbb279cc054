"""Mixed precision: what ``model.dtype`` resolves to, what is refused, and the bounds bf16 keeps.

Documented bf16 bounds (tiny Llama, bf16 autocast over float32 master weights): sampler vs
trainer logprobs within 0.05 nats per token (bf16 keeps 8 mantissa bits: about 0.4 % relative
error per matmul, and the sampler's cached decode rounds in a different order than the trainer's
full pass); the first inner iteration's ratio is still exactly 1 (pi_old is that very pass).
"""

import pytest
import torch

import grpo_env.policy.precision as precision_module
from grpo_env.agents.grpo import GRPOAgent, GRPOConfig
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.logprobs import pack_sequences, token_logprobs
from grpo_env.policy.models import load_policy
from grpo_env.policy.precision import Precision, check_master_weights, resolve_precision
from grpo_env.testing import next_digit_env
from grpo_env.training.rollout import rollout_groups

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
BF16_BOUND = 0.05


def test_auto_follows_the_cpus_bf16_units(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_bf16_units", lambda: ("amx_bf16",))
    full = resolve_precision("auto", CPU, lora=False)
    assert (full.weights, full.autocast, full.name) == (torch.float32, torch.bfloat16, "bfloat16")
    assert "amx_bf16" in full.describe()
    lora = resolve_precision("auto", CPU, lora=True)  # the frozen base in bf16, adapters fp32
    assert (lora.weights, lora.autocast) == (torch.bfloat16, torch.bfloat16)
    monkeypatch.setattr(precision_module, "cpu_bf16_units", lambda: ())
    monkeypatch.delenv("GRPO_ENV_CPU_BF16", raising=False)
    assert resolve_precision("auto", CPU, lora=False) == Precision(
        reason="auto: cpu without bf16 matrix units"
    )
    # The tests' own switch says so, rather than blaming the CPU.
    monkeypatch.setenv("GRPO_ENV_CPU_BF16", "0")
    assert "GRPO_ENV_CPU_BF16=0" in resolve_precision("auto", CPU, lora=False).describe()


def test_explicit_dtypes_and_the_cuda_rule():
    assert resolve_precision("float32", CPU, lora=True).autocast is None
    assert resolve_precision("bfloat16", CPU, lora=False).weights == torch.float32
    # CUDA keeps its rule: LoRA on a bf16 base without autocast; full: fp32 + autocast.
    assert resolve_precision("auto", CUDA, lora=True).weights == torch.bfloat16
    assert resolve_precision("auto", CUDA, lora=False).autocast == torch.bfloat16


def test_float16_and_pure_low_precision_training_are_refused(toy_model):
    with pytest.raises(ValueError, match="GradScaler"):
        resolve_precision("float16", CPU, lora=False)
    with pytest.raises(ValueError, match="master weights"):
        check_master_weights([torch.nn.Parameter(torch.zeros(2, dtype=torch.bfloat16))])
    policy = load_policy(ModelConfig(name=str(toy_model), lora=False, dtype="float32"))
    policy.model.to(torch.bfloat16)
    with pytest.raises(ValueError, match="pure low-precision"):
        GRPOAgent(
            policy, HFGenerator(policy), SamplingParams(), GRPOConfig(beta=0.0), total_steps=1
        )


@pytest.mark.parametrize("lora", [False, True])
def test_bf16_keeps_float32_master_weights_and_float32_logprobs(toy_model, lora):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=lora, dtype="bfloat16"))
    assert policy.precision.autocast == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in policy.trainable_parameters())
    prompt = policy.encode_chat([{"role": "user", "content": "4"}])
    torch.manual_seed(0)
    completions = HFGenerator(policy).generate(
        [prompt], 8, SamplingParams(max_new_tokens=6, temperature=0.7)
    )[0]
    batch = pack_sequences(
        [c.prompt_ids for c in completions], [c.token_ids for c in completions], 0
    )
    with torch.no_grad(), policy.autocast():
        logp, _ = token_logprobs(policy.model, batch, 0.7)
    assert logp.dtype == torch.float32
    for row, completion in enumerate(completions):
        gap = (logp[row, : len(completion.token_ids)] - torch.tensor(completion.logprobs)).abs()
        assert gap.max() < BF16_BOUND


def test_bf16_update_has_ratio_one_and_moves_float32_weights(toy_model):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=False, dtype="bfloat16"))
    sampling = SamplingParams(max_new_tokens=4, temperature=1.0)
    agent = GRPOAgent(
        policy, HFGenerator(policy), sampling, GRPOConfig(beta=0.04, lr=1e-2), total_steps=2
    )
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    env = next_digit_env()
    torch.manual_seed(0)
    metrics = agent.update(rollout_groups(env, agent, env.tasks[:4], 6, tag="bf16"))
    assert metrics["ratio_mean"] == 1.0 and metrics["kl"] < 1e-6
    assert metrics["sampler_logprob_gap"] < BF16_BOUND
    moved = [n for n, p in policy.model.named_parameters() if not torch.equal(p, before[n])]
    assert moved and all(p.dtype == torch.float32 for p in policy.model.parameters())


def test_ppo_critic_gets_float32_master_weights_over_a_bf16_lora_base(toy_model):
    from grpo_env.agents.ppo import PPOAgent, PPOConfig

    policy = load_policy(ModelConfig(name=str(toy_model), lora=True, dtype="bfloat16"))
    assert any(p.dtype == torch.bfloat16 for p in policy.model.parameters())  # the frozen base
    agent = PPOAgent(
        policy, HFGenerator(policy), SamplingParams(max_new_tokens=3), PPOConfig(), total_steps=1
    )
    assert all(p.dtype == torch.float32 for p in agent.critic.trainable_parameters())
    env = next_digit_env()
    torch.manual_seed(0)
    metrics = agent.update(rollout_groups(env, agent, env.tasks[:2], 4, tag="ppo"))
    assert metrics["critic_grad_norm"] >= 0


def test_lora_under_autocast_skips_peft_input_casts_with_the_same_logits(toy_model):
    from peft.tuners.tuners_utils import BaseTunerLayer

    policy = load_policy(ModelConfig(name=str(toy_model), lora=True, dtype="bfloat16"))
    layers = [m for m in policy.model.modules() if isinstance(m, BaseTunerLayer)]
    assert layers and not any(m.cast_input_dtype_enabled for m in layers)
    torch.manual_seed(0)
    for module in policy.model.modules():  # non-zero adapters, so they take part
        if hasattr(module, "lora_B"):
            torch.nn.init.normal_(module.lora_B["default"].weight, std=0.5)
    ids = torch.tensor([[4, 5, 6, 7, 8]])
    with torch.no_grad(), policy.autocast():
        skipped = policy.model(input_ids=ids).logits
        for module in layers:
            module.cast_input_dtype_enabled = True
        cast = policy.model(input_ids=ids).logits
    assert torch.equal(skipped, cast)
    # Without autocast (the CUDA LoRA rule: bf16 base, float32 adapters) peft must cast.
    fp32 = load_policy(ModelConfig(name=str(toy_model), lora=True, dtype="float32"))
    assert all(
        m.cast_input_dtype_enabled for m in fp32.model.modules() if isinstance(m, BaseTunerLayer)
    )
