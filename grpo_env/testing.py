"""Tiny models for tests and examples, built offline from a config (nothing is downloaded).

``char_tokenizer`` makes a character-level tokenizer with chat special tokens and a minimal
chat template; ``tiny_llama`` a randomly initialised Llama of a few thousand to a million
parameters sized to it; ``save_tiny_model`` writes both where ``--model DIR`` can load them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

BOS, EOS, PAD, UNK = "<|im_start|>", "<|im_end|>", "<pad>", "<unk>"

# The prompt's contents, then "=" to open the answer; roles are dropped to keep vocab tiny.
MINIMAL_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}={% endif %}"
)


def char_tokenizer(
    alphabet: str,
    *,
    pad_is_eos: bool = False,
    extra_specials: Sequence[str] = (),
    chat_template: str = MINIMAL_CHAT_TEMPLATE,
) -> Any:
    """One token per character of ``alphabet`` plus BOS/EOS/PAD/UNK (and ``extra_specials``).

    ``pad_is_eos`` makes the pad token the EOS token, as many chat models do.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = [PAD, BOS, EOS, UNK, *extra_specials]
    chars = list(dict.fromkeys(alphabet))
    vocab = {token: i for i, token in enumerate(specials + chars)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=UNK,
        pad_token=EOS if pad_is_eos else PAD,
        additional_special_tokens=list(extra_specials),
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def tiny_llama(
    tokenizer: Any,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
    eos_token_ids: Sequence[int] | None = None,
    architecture: str = "llama",
    **config: Any,
) -> Any:
    """A randomly initialised Llama-family causal LM for ``tokenizer``'s vocabulary:
    ``architecture`` llama (the default), qwen2 or mistral; ``config`` overrides its config."""
    import torch
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        MistralConfig,
        MistralForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    classes = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "mistral": (MistralConfig, MistralForCausalLM),
    }
    config_class, model_class = classes[architecture]
    eos = list(eos_token_ids) if eos_token_ids is not None else tokenizer.eos_token_id
    settings: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": max(1, heads // 2),
        "max_position_embeddings": 256,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": eos,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": False,
    }
    torch.manual_seed(seed)
    return model_class(config_class(**{**settings, **config}))


def save_tiny_model(directory: str | Path, tokenizer: Any, model: Any) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


# ----- the toy task of the learning tests ---------------------------------------------------

DIGITS = "0123456789"


def next_digit_env(offset: int = 1) -> Any:
    """Toy verifiable task: the prompt is a digit d, the reward is 1 when the completion
    starts with (d + offset) mod 10. A random tiny model scores about 1/len(vocab)."""
    from grpo_env.env import VerifiableEnv

    tasks = [
        {"id": f"digit-{d}", "prompt": str(d), "answer": str((d + offset) % 10)} for d in range(10)
    ]

    def first_char_matches(task: Any, completion: str) -> float:
        return 1.0 if completion.strip()[:1] == task.answer else 0.0

    return VerifiableEnv(tasks, rubric=first_char_matches)


def toy_model_dir(directory: str | Path, *, pad_is_eos: bool = False, seed: int = 0) -> Path:
    """A tiny Llama + tokenizer over digits and '=' (the next-digit task's vocabulary)."""
    tokenizer = char_tokenizer(DIGITS + "=", pad_is_eos=pad_is_eos)
    return save_tiny_model(directory, tokenizer, tiny_llama(tokenizer, seed=seed))


def toy_learning_run(
    directory: str | Path,
    agent: dict[str, Any],
    seed: int,
    *,
    steps: int = 100,
    max_new_tokens: int = 2,
) -> tuple[list[float], Any]:
    """The learning tests' run: a fresh tiny Llama (full fine-tuning) trained by ``agent`` (an
    ``[agent]`` table) on the next-digit task, 8 prompts x 8 samples per step, evaluated
    greedily on the 10 tasks before and after. Returns the per-step mean rewards and the
    ``TrainSummary``."""
    import json

    from grpo_env.training.config import validate_config
    from grpo_env.training.trainer import Trainer

    directory = Path(directory)
    out = directory / f"{agent['name']}-seed{seed}"
    model = toy_model_dir(directory / f"model-seed{seed}", seed=seed)
    config = validate_config(
        {
            "env": "next-digit",
            "steps": steps,
            "group_size": 8,
            "prompts_per_step": 8,
            "seed": seed,
            "out": str(out),
            "model": {"name": str(model), "lora": False},
            "generation": {"max_new_tokens": max_new_tokens, "temperature": 1.0},
            "agent": agent,
            "log": {"save_every": 0, "tensorboard": False, "progress": False},
            "eval": {"tasks": 10},
        }
    )
    summary = Trainer(config, env=next_digit_env(), eval_env=next_digit_env()).run()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["reward_mean"] for line in lines], summary


# ----- the multi-turn toy game ---------------------------------------------------------------

GAME_ALPHABET = DIGITS + "abcdefghijklmnopqrstuvwxyz ="


def game_model_dir(directory: str | Path, *, seed: int = 0) -> Path:
    """A tiny Llama + tokenizer whose characters cover ``guess-number``'s prompts and replies."""
    tokenizer = char_tokenizer(GAME_ALPHABET)
    return save_tiny_model(directory, tokenizer, tiny_llama(tokenizer, seed=seed))


def guess_number_env(**kwargs: Any) -> Any:
    """``guess-number`` (1..7, 3 turns) for tests; ``kwargs`` override."""
    from grpo_env.environments.guess_number import GuessNumberEnv

    return GuessNumberEnv(**kwargs)


# ----- a fake installed distribution, for plugin tests -------------------------------------


def fake_distribution(
    directory: str | Path,
    name: str,
    entry_points: dict[str, dict[str, str]],
    modules: dict[str, str] | None = None,
) -> Path:
    """Write what ``pip install`` would leave in site-packages for a package ``name`` that
    declares ``entry_points`` (``{group: {name: "module:attr"}}``) and ships ``modules``
    (``{module name: source}``). Put the returned directory on ``sys.path`` (or
    ``PYTHONPATH``) and ``importlib.metadata`` finds the entry points."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = directory / f"{name.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1.0\n")
    lines = []
    for group, points in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in points.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))
    for module, source in (modules or {}).items():
        (directory / f"{module}.py").write_text(source)
    return directory


# ----- gradients of one update, for the micro-batch invariance tests ------------------------


def capture_update_grads(agent: Any) -> dict[str, Any]:
    """Make ``agent``'s optimiser steps copy the gradients they would apply instead (summed
    over steps; keys ``policy.NAME`` and, for an agent with a critic, ``critic.NAME``), so a
    test can compare one update's gradients across micro-batch splits. Returns the dict the
    next ``agent.update`` fills."""
    captured: dict[str, Any] = {}

    def copy_instead_of_stepping(prefix: str, module: Any, optimizer: Any) -> Any:
        def step() -> float:
            for name, param in module.named_parameters():
                if param.grad is not None:
                    key = prefix + name
                    captured[key] = captured.get(key, 0) + param.grad.clone()
            optimizer.zero_grad()
            return 0.0

        return step

    agent.optimizer_step = copy_instead_of_stepping("policy.", agent.policy.model, agent.optimizer)
    if getattr(agent, "critic", None) is not None and hasattr(agent, "_critic_step"):
        agent._critic_step = copy_instead_of_stepping(
            "critic.", agent.critic, agent.critic_optimizer
        )
    return captured


def toy_groups(
    agent: Any,
    seed: int = 0,
    prompts: int = 4,
    group_size: int = 6,
    signal: bool = True,
    greedy_signal: bool = False,
) -> list[Any]:
    """Groups of the next-digit task sampled by ``agent`` after seeding torch with ``seed``.
    ``signal``: each group's rewards are set to ``(i + g) % 3 == 0`` (a random model rarely
    scores, so every group gets some spread); ``greedy_signal``: a greedy episode (ReMax's
    baseline) gets ``g % 2`` as well."""
    import torch

    from grpo_env.training.rollout import rollout_groups

    torch.manual_seed(seed)
    env = next_digit_env()
    groups = rollout_groups(env, agent, [env.tasks[i] for i in range(prompts)], group_size, tag="t")
    if signal:
        for g, group in enumerate(groups):
            for i, episode in enumerate(group.episodes):
                episode.reward = float((i + g) % 3 == 0)
            if greedy_signal and group.greedy is not None:
                group.greedy.reward = float(g % 2)
    return groups
