"""Load a trained policy back from a run directory or a checkpoint (for ``grpo-env eval``).

Accepted paths: a run directory (its latest checkpoint is used), a checkpoint directory
(``DIR/checkpoints/step-000100``), or the ``policy/`` folder inside one. What is there says
how to load it (``policy/policy.json``):

- full fine-tuning: the folder is a complete transformers model (weights + tokenizer);
- LoRA: an adapter; the base named in ``policy.json`` is loaded and the adapter merged in;
- the frozen control: only a pointer to the initial weights, which are loaded.

The run's ``config.json`` (two levels up), when present, supplies the model settings that are
not weights: extra EOS tokens, device and dtype.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grpo_env.policy.config import ModelConfig
from grpo_env.policy.models import Policy, load_policy, load_tokenizer, resolve_device
from grpo_env.policy.precision import resolve_precision
from grpo_env.training.checkpoint import latest_checkpoint

POLICY_DIR = "policy"
POINTER = "policy.json"


def find_policy_dir(path: str | Path) -> Path:
    """The ``policy/`` folder that ``path`` (run, checkpoint or policy folder) designates."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if (path / POINTER).is_file():
        return path
    if (path / POLICY_DIR / POINTER).is_file():
        return path / POLICY_DIR
    latest = latest_checkpoint(path)
    if latest is not None and (latest / POLICY_DIR / POINTER).is_file():
        return latest / POLICY_DIR
    raise FileNotFoundError(
        f"{path} is not a run directory, a checkpoint or a policy folder (no {POINTER} found "
        "in it, in policy/, or in its latest checkpoint)"
    )


def run_model_config(policy_dir: Path) -> dict[str, Any]:
    """The ``[model]`` table of the run that wrote ``policy_dir`` (empty when unknown)."""
    config = policy_dir.parent.parent.parent / "config.json"
    if not config.is_file():
        return {}
    return dict(json.loads(config.read_text(encoding="utf-8")).get("model", {}))


def load_saved_policy(path: str | Path, *, device: str | None = None) -> Policy:
    """The policy saved at ``path`` (see the module docstring), ready to sample from."""
    policy_dir = find_policy_dir(path)
    pointer = json.loads((policy_dir / POINTER).read_text(encoding="utf-8"))
    run = run_model_config(policy_dir)
    settings = {
        "lora": False,
        "device": device or run.get("device", "auto"),
        "dtype": run.get("dtype", "auto"),
        "extra_eos_tokens": run.get("extra_eos_tokens", []),
    }
    if pointer.get("frozen"):
        return load_policy(ModelConfig(name=pointer["source"], **settings))
    if not pointer.get("lora"):
        return load_policy(ModelConfig(name=str(policy_dir), **settings))
    return _load_merged_lora(
        policy_dir, pointer["source"], ModelConfig(name=pointer["source"], **settings)
    )


def _load_merged_lora(policy_dir: Path, source: str, config: ModelConfig) -> Policy:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from grpo_env.policy.models import resolve_model_source, wrap_policy

    source = resolve_model_source(source)
    device = resolve_device(config.device)
    precision = resolve_precision(config.dtype, device, lora=False)
    base = AutoModelForCausalLM.from_pretrained(source, dtype=precision.weights)
    # Merged: sampling runs at the speed of the plain model, nothing of peft stays in the way.
    model = PeftModel.from_pretrained(base, str(policy_dir)).merge_and_unload()
    return wrap_policy(
        model, load_tokenizer(source), config, source=source, device=device, precision=precision
    )
