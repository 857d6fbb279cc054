"""Third-party chatter goes to the run's log file, not the user's console.

During ``train``, ``eval`` and ``compare`` the console shows our progress and results only:
Python warnings, the log records of transformers, peft, accelerate, datasets and the HF hub,
and transformers' weight-loading progress bars are written to a file (``DIR/train.log``...)
instead. Our own loggers (``grpo_env.*``) are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

THIRD_PARTY = (
    "transformers",
    "huggingface_hub",
    "peft",
    "accelerate",
    "datasets",
    "torch",
    "py.warnings",
)


@contextmanager
def third_party_output_to(path: str | Path) -> Iterator[Path]:
    """Route third-party warnings, logs and progress bars to ``path`` while the block runs."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    # transformers adds its own stderr handler to its logger at its first import: import it
    # now, or a first import inside the block would add that handler after ours and its
    # records ("[transformers] The following generation flags are not valid...") would reach
    # the console.
    _configure_transformers_logging()
    saved = []
    for name in THIRD_PARTY:
        logger = logging.getLogger(name)
        saved.append((logger, list(logger.handlers), logger.propagate))
        logger.handlers = [handler]
        logger.propagate = False
    logging.captureWarnings(True)
    restore_bars = _progress_bars_off()
    try:
        yield path
    finally:
        restore_bars()
        logging.captureWarnings(False)
        for logger, handlers, propagate in saved:
            logger.handlers = handlers
            logger.propagate = propagate
        handler.close()


def _configure_transformers_logging() -> None:
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    hf_logging.get_logger("transformers")  # configures the library's root logger once


def _progress_bars_off():  # -> a function that restores them
    restores = []
    try:
        from transformers.utils import logging as hf_logging

        if hf_logging.is_progress_bar_enabled():
            hf_logging.disable_progress_bar()
            restores.append(hf_logging.enable_progress_bar)
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )

        if not are_progress_bars_disabled():
            disable_progress_bars()
            restores.append(enable_progress_bars)
    except ImportError:  # pragma: no cover
        pass

    def restore() -> None:
        for undo in restores:
            undo()

    return restore
