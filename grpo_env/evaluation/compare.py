"""``grpo-env compare``: several agents on one environment, same tasks, same seeds, same budget.

    DIR/runs/AGENT-seedS/      one training run each (config.json, metrics.jsonl, eval.jsonl...)
    DIR/runs/AGENT-seedS/train.log     its console output
    DIR/results.jsonl          one line per finished run (append-only)
    DIR/compare.md, compare.csv, runs.csv, reward_curves.png      (``compare_report``)

Fairness: every run is the same ``TrainConfig`` but for ``agent`` and ``seed``; the trainer
draws tasks from the seed alone (``rollout.TaskSampler``), so agents with one seed see the same
tasks in the same order, start from the same weights, and are evaluated greedily on the same
held-out tasks at the start and the end.

Each run is its own process (``grpo-env train --resume``): memory is measured fresh for each,
and a crash loses that run only. Results are appended as runs finish; running the same command
again skips finished runs, resumes interrupted ones from their last checkpoint, and refuses a
run directory whose configuration differs from the one asked for now. ``--agents`` may grow
between invocations (more agents, more seeds: only the new runs run).
"""

from __future__ import annotations

import copy
import json
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from grpo_env.jsonl import read_jsonl, repair_torn_tail
from grpo_env.registry import agents as agent_registry
from grpo_env.registry import user_modules
from grpo_env.training.config import (
    ConfigError,
    TrainConfig,
    config_to_toml_dict,
    resolve_agent_config,
    validate_config,
)

RESULTS = "results.jsonl"
RUNS = "runs"
RUN_LOG = "train.log"


class CompareOptions(BaseModel):
    """A comparison: the shared run configuration, and what varies."""

    model_config = ConfigDict(extra="forbid")

    base: dict[str, Any] = Field(description="TrainConfig data shared by every run (no out)")
    agents: list[str] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    out: Path
    agent_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="[agent] options of one agent: {'ppo': {'lam': 0.9}}"
    )


class RunResult(BaseModel):
    """What one finished run contributes to the comparison."""

    model_config = ConfigDict(extra="forbid")

    agent: str
    seed: int
    run_dir: str
    steps: int
    rewards: list[float]  # mean reward of each step's sampled completions
    eval_before: float | None  # greedy held-out accuracy at step 0
    eval_final: float | None  # ... after the last step
    eval_final_reward: float | None
    eval_tasks: int
    eval_split: str | None = None  # the eval env's split (None: the env has no held-out split)
    final_reward: float  # mean of the last tenth of the steps
    best_reward: float  # best moving average (window: a tenth of the steps)
    seconds_per_step: float
    gen_tokens_per_s: float
    train_tokens_per_s: float | None
    peak_memory_mb: float
    wall_seconds: float


def run_name(agent: str, seed: int) -> str:
    return f"{agent}-seed{seed}"


def parse_seeds(text: str) -> list[int]:
    """``"3"`` -> seeds 0, 1, 2; ``"0,5,7"`` -> those seeds."""
    try:
        if "," in text:
            seeds = [int(part) for part in text.split(",") if part.strip()]
        else:
            seeds = list(range(int(text)))
    except ValueError as err:
        raise ValueError(f"--seeds expects a count (3) or a list (0,5,7), got {text!r}") from err
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds must name distinct non-negative seeds, got {text!r}")
    return seeds


# ----- planning -----------------------------------------------------------------------------


def agent_fields(name: str) -> set[str] | None:
    """The ``[agent]`` keys agent ``name`` accepts (None: it takes any)."""
    factory = agent_registry.resolve(name).load()
    config_class = getattr(factory, "Config", None)
    return None if config_class is None else set(config_class.model_fields)


def plan_runs(options: CompareOptions) -> list[TrainConfig]:
    """One validated ``TrainConfig`` per (agent, seed), agents outer, in the order given.

    Shared ``[agent]`` options go to every agent that has the knob (the frozen control has
    none); a shared option no agent knows is an error, as is an unknown agent-specific one.
    """
    shared = dict(options.base.get("agent", {}))
    shared.pop("name", None)
    fields = {name: agent_fields(name) for name in options.agents}
    unknown = [k for k in shared if all(f is not None and k not in f for f in fields.values())]
    if unknown:
        raise ConfigError(f"agent option(s) {unknown} are known to none of {options.agents}")
    stray = sorted(set(options.agent_options) - set(options.agents))
    if stray:
        raise ConfigError(f"options given for agent(s) {stray}, which are not compared")
    configs = []
    for agent in options.agents:
        known = fields[agent]
        table = {k: v for k, v in shared.items() if known is None or k in known}
        table.update(options.agent_options.get(agent, {}))
        for seed in options.seeds:
            data = copy.deepcopy(options.base)
            data["agent"] = {"name": agent, **table}
            data["seed"] = seed
            data["out"] = str(options.out / RUNS / run_name(agent, seed))
            data.setdefault("log", {})["progress"] = False
            config = validate_config(data, where=f"run {run_name(agent, seed)}")
            resolve_agent_config(config.agent, agent_registry.resolve(agent).load().Config)
            configs.append(config)
    return configs


def comparable_config(config: TrainConfig | dict[str, Any]) -> dict[str, Any]:
    """A run's configuration as stored in its ``config.json``, minus what may change on a
    resumed comparison without changing the run (the console progress switch)."""
    data = config if isinstance(config, dict) else config_to_toml_dict(config)
    data = json.loads(json.dumps(data, default=str))
    data.get("log", {}).pop("progress", None)
    return data


# ----- running ------------------------------------------------------------------------------


def read_results(out: Path) -> list[RunResult]:
    path = out / RESULTS
    if not path.is_file():
        return []
    # Appended to as runs finish: a torn last line is dropped (and removed before appending).
    read = read_jsonl(path, append_only=True)
    repair_torn_tail(path, read)
    results = []
    for number, row in read.rows:
        try:
            results.append(RunResult.model_validate(row))
        except ValueError as err:
            raise ValueError(f"{path}:{number}: not a run result ({err})") from err
    return results


def check_run_dir(config: TrainConfig) -> None:
    """A run directory left by an earlier comparison must hold the same configuration."""
    saved = Path(config.out) / "config.json"
    if not saved.is_file():
        return
    before = comparable_config(json.loads(saved.read_text(encoding="utf-8")))
    now = comparable_config(config)
    if before != now:
        changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        raise ValueError(
            f"{config.out} was run with another configuration (it differs in {changed}): use "
            "another --out, or delete that run directory"
        )


def launch(config: TrainConfig, log_file: Path) -> subprocess.Popen[bytes]:
    """Start ``grpo-env train --resume`` for ``config`` in its own process."""
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    # --resume without --config reads the run's own config.json: written here first.
    (run_dir / "config.json").write_text(json.dumps(config_to_toml_dict(config), indent=2) + "\n")
    imports = [arg for module in user_modules() for arg in ("-I", module)]
    command = [sys.executable, "-m", "grpo_env.cli", *imports, "train"]
    command += ["--out", str(run_dir), "--resume"]
    with log_file.open("ab") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


class MetricsTail:
    """Follows a run's metrics.jsonl as it grows (for the progress display)."""

    def __init__(self, path: Path):
        self.path, self.offset = path, 0
        self.step, self.reward = 0, float("nan")

    def poll(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode("utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.step, self.reward = int(row.get("step", self.step)), row.get("reward_mean")


def collect_result(config: TrainConfig, wall_seconds: float) -> RunResult:
    """A finished run's numbers, from its metrics.jsonl and eval.jsonl."""
    run_dir = Path(config.out)
    rows = [row for _, row in read_jsonl(run_dir / "metrics.jsonl", append_only=True).rows]
    if len(rows) != config.steps:
        raise ValueError(f"{run_dir}: {len(rows)} steps logged, {config.steps} expected")
    rewards = [float(r["reward_mean"]) for r in rows]
    evals_path = run_dir / "eval.jsonl"
    evals = (
        [row for _, row in read_jsonl(evals_path, append_only=True).rows]
        if evals_path.is_file()
        else []
    )
    before = next((e for e in evals if e["step"] == 0), None)
    final = next((e for e in reversed(evals) if e["step"] == config.steps), None)
    window = max(1, len(rewards) // 10)
    smoothed = np.convolve(rewards, np.ones(window) / window, mode="valid")
    gen_seconds = sum(r.get("gen_seconds", 0.0) for r in rows)
    train_rates = [r["train_tokens_per_s"] for r in rows if "train_tokens_per_s" in r]
    return RunResult(
        agent=config.agent.name,
        seed=config.seed,
        run_dir=str(run_dir),
        steps=len(rows),
        rewards=rewards,
        eval_before=before["accuracy"] if before else None,
        eval_final=final["accuracy"] if final else None,
        eval_final_reward=final["mean_reward"] if final else None,
        eval_tasks=int(final["tasks"]) if final else 0,
        eval_split=config.eval.env_kwargs.get("split", config.env_kwargs.get("split")),
        final_reward=float(np.mean(rewards[-window:])),
        best_reward=float(smoothed.max()),
        seconds_per_step=float(np.mean([r["step_seconds"] for r in rows])),
        gen_tokens_per_s=sum(r.get("gen_tokens", 0.0) for r in rows) / max(gen_seconds, 1e-9),
        train_tokens_per_s=float(np.mean(train_rates)) if train_rates else None,
        peak_memory_mb=max(float(r["peak_memory_mb"]) for r in rows),
        wall_seconds=wall_seconds,
    )


def run_comparison(
    options: CompareOptions,
    *,
    console: Console | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    poll_seconds: float = 1.0,
) -> tuple[list[RunResult], list[str]]:
    """Run every (agent, seed) not finished yet; return all results and the failed runs."""
    console = console or Console(stderr=True)
    configs = plan_runs(options)
    for config in configs:
        check_run_dir(config)
    options.out.mkdir(parents=True, exist_ok=True)
    done = {(r.agent, r.seed) for r in read_results(options.out)}
    todo = [c for c in configs if (c.agent.name, c.seed) not in done]
    failed: list[str] = []
    if todo:
        console.print(
            f"compare: {len(configs)} runs ({len(configs) - len(todo)} already done), "
            f"results in {options.out}"
        )
    with _progress(console) as progress:
        overall = progress.add_task(
            "all runs", total=len(configs), completed=len(configs) - len(todo), info=""
        )
        for config in todo:
            name = run_name(config.agent.name, config.seed)
            result = _run_one(config, progress, name, poll_seconds)
            if isinstance(result, str):
                failed.append(name)
                console.print(f"[red]{name} failed[/red]: {result}", highlight=False)
            else:
                with (options.out / RESULTS).open("a", encoding="utf-8") as handle:
                    handle.write(result.model_dump_json() + "\n")
                console.print(
                    f"{name}: final reward {result.final_reward:.3f}, held-out "
                    f"{_fmt(result.eval_before)} -> {_fmt(result.eval_final)}, "
                    f"{result.seconds_per_step:.1f} s/step, peak {result.peak_memory_mb:.0f} MB",
                    highlight=False,
                )
                if on_result is not None:
                    on_result(result)
            progress.advance(overall)
    wanted = {(c.agent.name, c.seed) for c in configs}
    results = [r for r in read_results(options.out) if (r.agent, r.seed) in wanted]
    order = {(c.agent.name, c.seed): i for i, c in enumerate(configs)}
    return sorted(results, key=lambda r: order[(r.agent, r.seed)]), failed


def _run_one(config: TrainConfig, progress: Progress, name: str, poll: float) -> RunResult | str:
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = run_dir / RUN_LOG
    tail = MetricsTail(run_dir / "metrics.jsonl")
    bar = progress.add_task(name, total=config.steps, info="starting")
    started = time.perf_counter()
    process = launch(config, log_file)
    try:
        while process.poll() is None:
            time.sleep(poll)
            tail.poll()
            reward = (
                "-" if tail.reward is None or tail.reward != tail.reward else f"{tail.reward:.3f}"
            )
            progress.update(bar, completed=tail.step, info=f"reward {reward}")
    except KeyboardInterrupt:
        # The child got the Ctrl-C too: it saves a checkpoint after its step. Wait for that.
        process.send_signal(signal.SIGINT)
        process.wait()
        raise
    finally:
        progress.remove_task(bar)
    if process.returncode != 0:
        return f"exit code {process.returncode}; last lines of {log_file}:\n" + _tail_text(log_file)
    try:
        return collect_result(config, time.perf_counter() - started)
    except (OSError, ValueError, KeyError) as err:
        return f"its logs are incomplete ({err})"


def _tail_text(path: Path, lines: int = 8) -> str:
    if not path.is_file():
        return "(no log)"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,  # a log file gets one line per finished run instead
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# ----- options from the command line and a TOML file ---------------------------------------

DEFAULT_AGENTS = ("grpo", "ppo", "rloo", "frozen")
DEFAULT_EVAL_TASKS = 50


class CompareTable(BaseModel):
    """The optional ``[compare]`` table of a comparison's TOML file (the rest is a run's
    configuration, as for ``grpo-env train --config``)."""

    model_config = ConfigDict(extra="forbid")

    agents: list[str] | None = None
    seeds: list[int] | int | None = None
    agent_options: dict[str, dict[str, Any]] = Field(default_factory=dict)


def build_compare_options(
    *,
    env: str | None,
    out: Path,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    agents: list[str] | None = None,
    seeds: list[int] | None = None,
    agent_options: dict[str, dict[str, Any]] | None = None,
) -> CompareOptions:
    """Merge the TOML file, its ``[compare]`` table and the command line (which wins).

    Unless told otherwise, every run is evaluated greedily on ``DEFAULT_EVAL_TASKS`` held-out
    tasks (the env's ``split="test"``, when it has one) before and after training.
    """
    from grpo_env.evaluation.runner import supports_split
    from grpo_env.training.config import set_dotted

    data: dict[str, Any] = {}
    if config_file is not None:
        if not config_file.is_file():
            raise FileNotFoundError(f"config file not found: {config_file}")
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{config_file}: not valid TOML ({err})") from err
    try:
        table = CompareTable.model_validate(data.pop("compare", {}))
    except ValueError as err:
        raise ConfigError(f"{config_file}: [compare]: {err}") from err
    for dotted, value in (overrides or {}).items():
        set_dotted(data, dotted, value)
    if env is not None:
        data["env"] = env
    if not data.get("env"):
        raise ConfigError("no environment: pass --env (or env = ... in the config file)")
    data.pop("out", None)
    evaluation = data.setdefault("eval", {})
    evaluation.setdefault("tasks", DEFAULT_EVAL_TASKS)
    if "env_kwargs" not in evaluation and evaluation["tasks"]:
        kwargs = dict(data.get("env_kwargs", {}))
        if supports_split(data["env"], kwargs):
            evaluation["env_kwargs"] = {"split": "test"}
    table_seeds = table.seeds
    if isinstance(table_seeds, int):
        table_seeds = list(range(table_seeds))
    names = agents or table.agents or list(DEFAULT_AGENTS)
    for name in names:
        agent_registry.resolve(name)  # an unknown agent fails now, naming the known ones
    merged = {k: dict(v) for k, v in table.agent_options.items()}
    for name, options in (agent_options or {}).items():
        merged.setdefault(name, {}).update(options)
    return CompareOptions(
        base=data,
        agents=names,
        seeds=seeds or table_seeds or [0],
        out=out,
        agent_options=merged,
    )


def parse_agent_setting(text: str) -> tuple[str, str, Any]:
    """``"ppo.critic_lr=1e-5"`` -> ``("ppo", "critic_lr", 1e-05)``."""
    from grpo_env.training.config import parse_assignment

    key, value = parse_assignment(text)
    agent, _, option = key.partition(".")
    if not agent or not option:
        raise ConfigError(f"--agent-set expects AGENT.KEY=VALUE (e.g. ppo.lam=0.9), got {text!r}")
    return agent, option, value
