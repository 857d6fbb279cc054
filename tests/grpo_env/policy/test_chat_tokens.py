"""Token-in, token-out multi-turn sequences: exact sampled ids, env deltas, loss mask (rule 10)."""

import pytest
import torch

from grpo_env import Task, VerifiableEnv, VerifyResult
from grpo_env.agents.losses import LossNormalizer, aggregate, policy_token_loss
from grpo_env.policy.chat_tokens import ChatTokens
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.logprobs import pack_sequences, token_logprobs
from grpo_env.policy.models import wrap_policy
from grpo_env.testing import char_tokenizer, tiny_llama
from grpo_env.training.multiturn import run_episodes

# Qwen3's rule: an assistant turn before the last user message loses its <think> block.
QWEN3_LIKE = (
    "{% set ns = namespace(last_user=-1) %}"
    "{% for m in messages %}{% if m['role'] == 'user' %}{% set ns.last_user = loop.index0 %}"
    "{% endif %}{% endfor %}"
    "{% for m in messages %}{% set content = m['content'] %}"
    "{% if m['role'] == 'assistant' and loop.index0 < ns.last_user and '</think>' in content %}"
    "{% set content = content.split('</think>')[-1].lstrip('\\n') %}{% endif %}"
    "{{ '<|im_start|>' + m['role'] + '\\n' + content + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# A template that leaves the last assistant turn open (no end-of-turn) until another follows.
OPEN_LAST = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] }}"
    "{% if not (loop.last and m['role'] == 'assistant') %}{{ '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789<>/?! \n"
TEMPERATURE = 0.7


class Guess(VerifiableEnv):
    def env_response(self, task, messages, state):
        state["answers"] = state.get("answers", 0) + 1
        guess = messages[-1]["content"].strip()[:1]
        if guess == task.answer:
            return None
        if not guess.isdigit():
            return "a digit please"
        return "higher" if guess < task.answer else "lower"

    def verify(self, task, completion):
        return VerifyResult(score=float(completion.strip()[:1] == task.answer))


def make_policy(template):
    tokenizer = char_tokenizer(ALPHABET, chat_template=template)
    model = tiny_llama(tokenizer, seed=3)
    return wrap_policy(
        model,
        tokenizer,
        ModelConfig(name="tiny", lora=False),
        source="tiny",
        device=torch.device("cpu"),
    )


@pytest.fixture(scope="module", params=[QWEN3_LIKE, OPEN_LAST], ids=["qwen3-like", "open-last"])
def played(request):
    policy = make_policy(request.param)
    env = Guess(
        [Task(id=f"g{d}", prompt="guess a digit", answer=str(d)) for d in (3, 8)], max_turns=3
    )
    torch.manual_seed(0)
    params = SamplingParams(max_new_tokens=5, temperature=TEMPERATURE)
    prompts = [(t, t.messages()) for t in env.tasks]
    runs = run_episodes(env, policy, HFGenerator(policy), params, prompts, 4)
    return policy, [run for group in runs for run, _ in group]


def test_several_turns_were_played_and_env_tokens_sit_between_model_turns(played):
    _policy, runs = played
    assert max(r.turns for r in runs) == 3
    for run in runs:
        assert len(run.ids) == len(run.mask) == len(run.logprobs)
        assert run.mask[0] == 1 and run.mask[-1] == 1  # starts and ends with the model
        runs_of_ones = sum(
            1 for i, b in enumerate(run.mask) if b and (i == 0 or not run.mask[i - 1])
        )
        assert runs_of_ones == run.turns
        assert all(lp == 0.0 for lp, b in zip(run.logprobs, run.mask, strict=True) if not b)


def test_trainer_logprobs_equal_the_sampler_on_every_model_token(played):
    policy, runs = played
    batch = pack_sequences(
        [r.prompt_ids for r in runs],
        [r.ids for r in runs],
        policy.pad_token_id,
        [r.mask for r in runs],
    )
    with torch.no_grad():
        logp, _ = token_logprobs(policy.model, batch, TEMPERATURE)
    checked = 0
    for row, run in enumerate(runs):
        mask = torch.tensor(run.mask, dtype=torch.bool)
        mine = logp[row, : len(run.ids)][mask]
        sampled = torch.tensor(run.logprobs)[mask]
        assert torch.allclose(mine, sampled, atol=1e-5), (mine - sampled).abs().max()
        checked += int(mask.sum())
    assert checked > 20
    assert torch.equal(batch.loss_mask[0, : len(runs[0].mask)], torch.tensor(runs[0].mask).float())


def test_env_tokens_get_exactly_zero_gradient(played):
    policy, runs = played
    batch = pack_sequences(
        [r.prompt_ids for r in runs],
        [r.ids for r in runs],
        policy.pad_token_id,
        [r.mask for r in runs],
    )
    policy.model.train()
    try:
        logp, _ = token_logprobs(policy.model, batch, TEMPERATURE)
        logp.retain_grad()
        advantages = torch.linspace(-1, 1, len(runs))
        per_token, _, _ = policy_token_loss(
            logp, logp.detach(), advantages, eps_low=0.2, eps_high=0.2
        )
        lengths = [sum(r.mask) for r in runs]
        loss = aggregate(
            per_token, batch.loss_mask, LossNormalizer.for_batch("token-mean", lengths, 5)
        )
        loss.backward()
    finally:
        policy.model.zero_grad(set_to_none=True)
        policy.model.eval()
    env_tokens = (batch.completion_mask == 1) & (batch.loss_mask == 0)
    assert env_tokens.sum() > 0
    assert torch.count_nonzero(logp.grad[env_tokens]) == 0
    assert torch.count_nonzero(logp.grad[batch.loss_mask == 1]) > 0


@pytest.mark.parametrize("template", [QWEN3_LIKE, OPEN_LAST], ids=["qwen3-like", "open-last"])
def test_templates_that_rewrite_earlier_turns_do_not_touch_the_sequence(template):
    policy = make_policy(template)
    tok = policy.tokenizer
    chat = ChatTokens(tok, policy.eos_token_ids)
    prompt = [{"role": "user", "content": "guess"}]
    prompt_ids = chat.prompt(prompt)
    sampled = tok("<think>hmm</think>5", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    reply = [{"role": "user", "content": "higher"}]
    env_ids = chat.env_turn(reply, sampled)
    sequence = prompt_ids + sampled + env_ids
    # The model's ids are there verbatim, its think block included; the env's tokens are the
    # template's delta, the model's end-of-turn token not repeated.
    assert sequence[len(prompt_ids) : len(prompt_ids) + len(sampled)] == sampled
    assert tok.decode(env_ids) == "\n<|im_start|>user\nhigher<|im_end|>\n<|im_start|>assistant\n"
    # Re-rendering the transcript would not give this sequence (the template rewrites it).
    transcript = [*prompt, {"role": "assistant", "content": "<think>hmm</think>5"}, *reply]
    rerendered = policy.encode_chat(transcript)
    if template is QWEN3_LIKE:
        assert "think" not in tok.decode(rerendered) and rerendered != sequence
    else:
        assert rerendered == sequence


def test_a_turn_cut_without_end_token_gets_the_template_end_as_env_tokens():
    policy = make_policy(QWEN3_LIKE)
    tok = policy.tokenizer
    chat = ChatTokens(tok, policy.eos_token_ids)
    env_ids = chat.env_turn(
        [{"role": "tool", "content": "42"}], tok("55", add_special_tokens=False)["input_ids"]
    )
    assert (
        tok.decode(env_ids) == "<|im_end|>\n<|im_start|>tool\n42<|im_end|>\n<|im_start|>assistant\n"
    )
