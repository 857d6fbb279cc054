"""Completion masks end after the first EOS, for every EOS id, even when pad == eos (rule 3)."""

import torch

from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.logprobs import pack_sequences
from grpo_env.policy.masking import completion_mask, trim_completion
from grpo_env.policy.models import load_policy

EOS, PAD = 2, 2  # pad == eos


def test_mask_keeps_the_first_eos_when_pad_is_eos():
    rows = torch.tensor([[5, 7, EOS, PAD, PAD], [5, 7, 8, 9, 6], [EOS, PAD, PAD, PAD, PAD]])
    assert completion_mask(rows, [EOS]).tolist() == [
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 1],
        [1, 0, 0, 0, 0],
    ]


def test_mask_ends_at_whichever_eos_id_comes_first():
    rows = torch.tensor([[5, 9, 8, 2, 2], [5, 6, 2, 9, 7]])
    assert completion_mask(rows, [2, 9]).tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0]]


def test_mask_never_looks_at_the_pad_id():
    # pad (0) inside the completion is a real token; only the EOS (2) ends it.
    assert completion_mask(torch.tensor([[0, 5, 0, 2, 0]]), [2]).tolist() == [[1, 1, 1, 1, 0]]


def test_trim_completion():
    assert trim_completion([5, 7, 2, 2, 2], [2]) == ([5, 7, 2], False)
    assert trim_completion([5, 9, 8], [2, 9]) == ([5, 9], False)
    assert trim_completion([5, 6, 7], [2]) == ([5, 6, 7], True)


def test_packed_batch_mask_comes_from_lengths_not_pad():
    batch = pack_sequences([[4, 5], [6]], [[7, EOS], [7, 8, 9, EOS]], pad_id=PAD)
    assert batch.completion_mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]
    assert batch.completion_ids.tolist() == [[7, EOS, PAD, PAD], [7, 8, 9, EOS]]
    # left-padded prompt: positions restart at 0 where the prompt starts
    assert batch.position_ids.tolist()[1][:3] == [0, 0, 1]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1]]


def test_generation_stops_at_every_eos_id_with_pad_equal_eos(pad_eos_model):
    policy = load_policy(ModelConfig(name=str(pad_eos_model), lora=False))
    stop = policy.tokenizer.convert_tokens_to_ids("<stop>")
    eos = policy.tokenizer.eos_token_id
    assert policy.pad_token_id == eos
    assert set(policy.eos_token_ids) == {eos, stop}
    torch.manual_seed(0)
    prompts = [policy.encode_chat([{"role": "user", "content": str(d)}]) for d in range(8)]
    groups = HFGenerator(policy).generate(prompts, 16, SamplingParams(max_new_tokens=6))
    endings = set()
    for completion in (c for group in groups for c in group):
        ids = completion.token_ids
        assert len(completion.logprobs) == len(ids)
        inner = ids[:-1]
        assert not set(inner) & {eos, stop}, ids  # nothing after the first EOS is kept
        if completion.truncated:
            assert len(ids) == 6 and ids[-1] not in (eos, stop)
        else:
            assert ids[-1] in (eos, stop)
            endings.add(ids[-1])
    assert endings == {eos, stop}  # both EOS ids ended some completion
    # and the EOS that equals pad is inside the training mask
    ended = [c for g in groups for c in g if not c.truncated and c.token_ids[-1] == eos]
    batch = pack_sequences([c.prompt_ids for c in ended], [c.token_ids for c in ended], eos)
    lengths = batch.completion_mask.sum(dim=1).long().tolist()
    assert lengths == [len(c.token_ids) for c in ended]
