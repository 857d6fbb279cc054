"""Checks of what the user named (output paths, the run to resume, the agent and its knobs),
done before any model is loaded: a typo costs a second and one clear line, not a model load
and a traceback. Every failure is a ``ValueError`` (the CLI prints it and exits 2)."""

from __future__ import annotations

from pathlib import Path

from grpo_env.registry import agents as agent_registry
from grpo_env.training.checkpoint import latest_checkpoint
from grpo_env.training.config import TrainConfig, resolve_agent_config


class PreflightError(ValueError):
    """Something the user named cannot be used; the message says what and what exists."""


def check_out_dir(path: Path, *, option: str = "--out") -> None:
    """``path`` is, or can be created as, a directory (it is created here)."""
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker == path:
        raise PreflightError(f"{option} {path} is a file, not a directory: name a directory")
    if blocker is not None:
        raise PreflightError(f"{option} {path}: {blocker} is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PreflightError(f"{option} {path}: cannot create it ({err.strerror})") from None


def check_out_file(path: Path, *, option: str = "--out") -> None:
    """``path`` is, or can be created as, a file (its directory is created here)."""
    if path.is_dir():
        raise PreflightError(f"{option} {path} is a directory: name a file")
    check_out_dir(path.parent, option=f"{option} {path}: its directory")


def describe_run_dir(run_dir: Path) -> str:
    """What ``run_dir`` holds, in a few words (for messages about resuming)."""
    if not run_dir.exists():
        return f"{run_dir} does not exist"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in run_dir.iterdir())
    if not names:
        return f"{run_dir} is empty"
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return f"{run_dir} holds {shown}"


def check_resumable(run_dir: Path) -> None:
    """``--resume`` needs a run: its saved ``config.json`` (a run that stopped before its first
    checkpoint restarts from step 0) or a checkpoint."""
    if (run_dir / "config.json").is_file() or latest_checkpoint(run_dir) is not None:
        return
    raise PreflightError(
        f"--resume: no run to resume: {describe_run_dir(run_dir)} (no config.json, no "
        "checkpoint); check --out, or leave out --resume to start a new run"
    )


def checkpoint_note(run_dir: Path) -> str:
    """Which checkpoint a stopped run leaves behind, for the user's next step."""
    checkpoint = latest_checkpoint(run_dir) if run_dir.exists() else None
    if checkpoint is None:
        return f"no checkpoint was saved in {run_dir}: --resume restarts it from step 0"
    return f"the last checkpoint, {checkpoint.name}, stands: --resume continues from it"


def check_train_config(config: TrainConfig, *, resume: bool) -> None:
    """Everything about a training run that can be checked without loading a model."""
    if resume:
        check_resumable(Path(config.out))
    check_out_dir(Path(config.out))
    spec = agent_registry.resolve(config.agent.name)  # unknown name: UnknownIdError
    config_class = getattr(spec.load(), "Config", None)
    if config_class is not None:
        resolve_agent_config(config.agent, config_class)
