"""Character ends of an env's steps -> token ends of the sampled ids (grpo_env.policy.spans)."""

import pytest

from grpo_env.policy.spans import token_ends
from grpo_env.testing import char_tokenizer

# A byte-level vocabulary, as byte-level BPE has: "é" is two tokens, "7 +" one.
VOCAB = [
    b"3",
    b" +",
    b" 4",
    b" = ",
    b"7 +",
    b" 5",
    b"\xc3",
    b"\xa9",
    b"\xf0\x9f\x99",
    b"\x82",
    b"!",
]


def byte_decode(ids):
    return b"".join(VOCAB[i] for i in ids).decode("utf-8", errors="replace")


def test_steps_end_at_the_token_that_completes_them_by_hand():
    ids = [0, 1, 2, 3, 4, 5]  # "3" " +" " 4" " = " "7 +" " 5"
    text = byte_decode(ids)
    assert text == "3 + 4 = 7 + 5"
    # "3 + 4" ends inside nothing: token 3 (" 4") completes it; "3 + 4 = 7" ends inside the
    # token "7 +", which completes it (token end 5); the whole text ends at the last token.
    assert token_ends(ids, [5, 9, len(text)], byte_decode) == [3, 5, 6]
    assert token_ends(ids, [1, 0, 99], byte_decode) == [1, 0, 6]  # any order; clamped


def test_a_character_split_over_tokens_ends_at_its_last_byte():
    ids = [0, 6, 7, 8, 9, 10]  # "3" + "é" (2 tokens) + U+1F642 (2 tokens, 4 bytes) + "!"
    text = byte_decode(ids)
    assert text == "3é\U0001f642!"
    # "3é" is 2 characters: decode(ids[:2]) is "3\ufffd", which does not hold "é" yet.
    assert byte_decode(ids[:2]) == "3\ufffd"
    assert token_ends(ids, [1, 2, 3, 4], byte_decode) == [1, 3, 5, 6]


def test_special_tokens_decode_to_nothing_and_the_final_step_covers_eos():
    tokenizer = char_tokenizer("0123456789=+ ")
    ids = [*tokenizer.encode("3+4=7", add_special_tokens=False), tokenizer.eos_token_id]

    def decode(token_ids):
        return tokenizer.decode(list(token_ids), skip_special_tokens=True)

    assert decode(ids) == "3+4=7"
    assert token_ends(ids, [3, 5], decode) == [3, 6]  # the final step takes the EOS too


def test_a_real_byte_level_tokenizer_when_cached():
    from pathlib import Path

    directory = Path.home() / ".cache/grpo-env/models/smollm2-135m-instruct"
    if not (directory / "tokenizer.json").exists():
        pytest.skip("the embedded SmolLM2 tokenizer is not cached here")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    text = "Café: 12 + 30 = 42 🙂 so 42 + 7 = 49"
    ids = tokenizer.encode(text, add_special_tokens=False)

    def decode(token_ids):
        return tokenizer.decode(list(token_ids), skip_special_tokens=True)

    assert decode(ids) == text
    char_ends = [4, text.index("42") + 2, text.index("🙂") + 1, len(text)]
    for char_end, end in zip(char_ends, token_ends(ids, char_ends, decode), strict=True):
        assert decode(ids[:end])[:char_end] == text[:char_end]  # the step is complete...
        assert decode(ids[: end - 1])[:char_end] != text[:char_end]  # ...and not before
