"""``grpo-env eval`` and ``grpo-env rescore``: options in, a report and a samples file out.

The CLI validates its options into ``EvalOptions`` / ``RescoreOptions`` and calls
``run_eval`` / ``run_rescore``; everything else (which split, which weights, where the samples
go, resuming) is decided here.

Held-out by default: the environment is made with ``split="test"`` when its factory takes a
``split``; an environment without one is evaluated on its tasks, with a warning.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import grpo_env
from grpo_env.evaluation.evaluate import (
    EvalReport,
    SampleRecord,
    evaluate_samples,
    read_records,
    rescore_records,
    summarize,
    write_records,
)
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import SamplingParams, make_generator
from grpo_env.training.guard import check_verifier
from grpo_env.training.preflight import check_out_file
from grpo_env.training.rollout import unwrap_env
from grpo_env.types import Task

log = logging.getLogger(__name__)


class EvalOptions(BaseModel):
    """What ``grpo-env eval`` was asked (see its ``--help``)."""

    model_config = ConfigDict(extra="forbid")

    env: str
    model: str | None = None
    checkpoint: str | None = None
    samples: int = Field(1, ge=1)
    tasks: int | None = Field(None, ge=1, description="first N tasks of the split (None: all)")
    split: str | None = Field(None, description="None: test when the env has splits")
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    temperature: float | None = Field(None, ge=0, description="None: 0 for 1 sample, else 1")
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1)
    batch_size: int = Field(64, ge=1, description="sequences per generate call")
    seed: int = 0
    threshold: float = Field(1.0, description="a sample is correct when its reward reaches this")
    device: str | None = None
    out: Path | None = None
    resume: bool = False
    overwrite: bool = False

    @model_validator(mode="after")
    def _one_policy(self) -> EvalOptions:
        if (self.model is None) == (self.checkpoint is None):
            raise ValueError("give exactly one of --model and --checkpoint")
        if self.resume and self.overwrite:
            raise ValueError("--resume and --overwrite exclude each other")
        return self

    @property
    def sampling_temperature(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 1.0


class RescoreOptions(BaseModel):
    """What ``grpo-env rescore`` was asked."""

    model_config = ConfigDict(extra="forbid")

    file: Path
    env: str
    env_kwargs: dict[str, Any] = Field(default_factory=dict)
    out: Path | None = None
    threshold: float = 1.0
    force_env: bool = Field(False, description="score with another env/options on purpose")


def _canonical(env_id: str) -> str:
    try:
        return grpo_env.envs.resolve(env_id).id  # "math" and "math-v0" are the same env
    except KeyError:
        return env_id


def check_same_env(options: RescoreOptions, record: SampleRecord) -> None:
    """Rescoring with another environment than the samples were made with scores another
    task (often everything 0): refuse unless asked for on purpose."""
    then, now = _canonical(record.env), _canonical(options.env)
    # The split only picked the tasks; the records carry them.
    kwargs = {k: v for k, v in options.env_kwargs.items() if k != "split"}
    old = (
        None
        if record.env_kwargs is None
        else {k: v for k, v in record.env_kwargs.items() if k != "split"}
    )
    if then == now and (old is None or old == kwargs):
        return
    made = f"{then} {old}" if old else then
    asked = f"{now} {kwargs}" if kwargs else now
    raise ValueError(
        f"{options.file} was made with --env {made}, not {asked}: rescore with the same "
        "environment and --env-set options, or pass --force-env to score it with another"
    )


def make_split_env(env_id: str, split: str | None, kwargs: dict[str, Any]) -> tuple[Any, str]:
    """The environment on its held-out split, and a note of which tasks that is.

    ``split=None`` (the default) means ``"test"`` when the environment's factory takes a
    ``split``, else its own tasks (with a warning). A split named explicitly must exist.
    """
    if "split" in kwargs:
        return grpo_env.make(env_id, **kwargs), f"split {kwargs['split']}"
    try:
        return grpo_env.make(env_id, split=split or "test", **kwargs), f"split {split or 'test'}"
    except TypeError as err:
        if "split" not in str(err):
            raise ValueError(f"environment {env_id!r} rejected its options: {err}") from err
        if split is not None:
            raise ValueError(f"environment {env_id!r} has no split {split!r} (no splits)") from err
    log.warning("%s has no held-out split: using its tasks", env_id)
    return grpo_env.make(env_id, **kwargs), "its own tasks (no held-out split)"


def supports_split(env_id: str, kwargs: dict[str, Any]) -> bool:
    """Whether ``env_id`` can be made on its held-out split (``split="test"``)."""
    env, where = make_split_env(env_id, None, kwargs)
    env.close()
    return where == "split test"


def default_out(options: EvalOptions) -> Path:
    source = options.checkpoint or options.model or "model"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.strip("/")).strip("_")[-60:]
    return Path("runs") / "eval" / f"{options.env}-{name}-k{options.samples}.jsonl"


def load_eval_policy(options: EvalOptions) -> Any:
    from grpo_env.evaluation.saved_policy import load_saved_policy
    from grpo_env.policy.models import load_policy

    if options.checkpoint is not None:
        return load_saved_policy(options.checkpoint, device=options.device)
    assert options.model is not None
    return load_policy(ModelConfig(name=options.model, lora=False, device=options.device or "auto"))


def run_eval(options: EvalOptions, *, console: Console | None = None) -> EvalReport:
    """Evaluate (see the module docstring); the samples go to ``options.out``."""
    console = console or Console(stderr=True)
    out = options.out or default_out(options)
    check_out_file(out)
    if options.resume and not out.is_file():
        raise ValueError(
            f"--resume: {out} does not exist, so there is no evaluation to resume; check --out "
            "(and --samples, part of the default name), or leave out --resume"
        )
    done = []
    if out.exists():
        if options.resume:
            done = read_records(out)
        elif not options.overwrite:
            raise ValueError(
                f"{out} exists: --resume continues that evaluation, --overwrite starts afresh, "
                "--out picks another file"
            )
    env_wrapper, where = make_split_env(options.env, options.split, options.env_kwargs)
    env = unwrap_env(env_wrapper)
    tasks: list[Task] = list(env.tasks)
    if options.tasks is not None:
        tasks = tasks[: options.tasks]
    if not tasks:
        raise ValueError(f"environment {options.env!r} has no tasks on {where}")
    check_verifier(env, options.env)  # before the model loads and anything is generated
    policy = load_eval_policy(options)
    generator = make_generator("hf", policy)
    params = SamplingParams(
        max_new_tokens=options.max_new_tokens,
        temperature=options.sampling_temperature,
        top_p=options.top_p,
    )
    torch.manual_seed(options.seed)
    console.print(
        f"evaluating {options.checkpoint or options.model} on {options.env} ({where}): "
        f"{len(tasks)} tasks x {options.samples} samples, temperature {params.temperature}"
    )
    progress = Progress(
        TextColumn("[bold]eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tasks"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        bar = progress.add_task("eval", total=len(tasks))
        try:
            return evaluate_samples(
                env,
                policy,
                generator,
                tasks,
                env_id=options.env,
                env_kwargs=options.env_kwargs,
                model=options.checkpoint or options.model or "",
                samples=options.samples,
                params=params,
                out=out,
                threshold=options.threshold,
                batch_size=options.batch_size,
                done=done,
                on_tasks=lambda n: progress.advance(bar, n),
            )
        finally:
            env.close()


def run_rescore(options: RescoreOptions) -> EvalReport:
    """Score an evaluation's completions again with ``options.env``; write them beside."""
    records = read_records(options.file)
    if not records:
        raise ValueError(f"{options.file} holds no samples")
    if not options.force_env:
        check_same_env(options, records[0])
    env = unwrap_env(grpo_env.make(options.env, **options.env_kwargs))
    try:
        check_verifier(env, options.env)
        rescored = rescore_records(records, env, env_id=options.env, env_kwargs=options.env_kwargs)
    finally:
        env.close()
    out = options.out or options.file.with_name(f"{options.file.stem}.rescored.jsonl")
    if out.resolve() == options.file.resolve():
        raise ValueError("--out must differ from the input file (the original is kept)")
    write_records(out, rescored)
    report = summarize(rescored, threshold=options.threshold)
    return report.model_copy(update={"samples_file": str(out)})
