"""Tiny models built from a config (no downloads), shared by the engine and agent tests."""

import os
from pathlib import Path

import pytest

from grpo_env.testing import char_tokenizer, save_tiny_model, tiny_llama, toy_model_dir

# model.dtype "auto" means float32 in tests on every machine (CLI subprocesses inherit this):
# the exactness tests (logprobs to 1e-5, ratio 1) hold in float32; bf16 tests ask for bfloat16.
os.environ["GRPO_ENV_CPU_BF16"] = "0"


@pytest.fixture(scope="session")
def toy_model(tmp_path_factory) -> Path:
    """Digits and '=' only; pad is its own token."""
    return toy_model_dir(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="session")
def pad_eos_model(tmp_path_factory) -> Path:
    """pad == eos, and a second EOS id (<stop>) named only in the model's config."""
    tokenizer = char_tokenizer("0123456789=", pad_is_eos=True, extra_specials=["<stop>"])
    stop = tokenizer.convert_tokens_to_ids("<stop>")
    model = tiny_llama(tokenizer, eos_token_ids=[tokenizer.eos_token_id, stop], seed=1)
    return save_tiny_model(tmp_path_factory.mktemp("padeos"), tokenizer, model)
