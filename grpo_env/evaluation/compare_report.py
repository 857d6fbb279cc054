"""The comparison's report: per-agent rows (mean and spread over seeds), CSV, Markdown, plot.

Definitions (also printed under the Markdown table):

- held-out accuracy: greedy, on the run's ``eval.tasks`` held-out tasks, before training and
  after the last step (same tasks for every agent);
- final reward: mean training reward (of the sampled completions) over the last tenth of the
  steps; best reward: the best moving average over windows of that size;
- s/step: wall-clock seconds per training step (generation + update), mean over steps;
- gen tok/s: generated tokens per second of generation; train tok/s: completion tokens per
  second of update (scoring pass, policy and critic passes included);
- peak MB: peak memory of the run's process (RSS on CPU, CUDA max allocated on GPU).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict
from rich.console import Console

from grpo_env.evaluation.compare import CompareOptions, RunResult, read_results, run_comparison
from grpo_env.evaluation.shown_samples import ShownSample, samples_markdown
from grpo_env.training.config import TrainConfig

COLUMNS = (
    ("agent", "agent"),
    ("seeds", "seeds"),
    ("eval_before", "held-out acc. before"),
    ("eval_final", "held-out acc. after"),
    ("final_reward", "final reward"),
    ("best_reward", "best reward"),
    ("seconds_per_step", "s/step"),
    ("gen_tokens_per_s", "gen tok/s"),
    ("train_tokens_per_s", "train tok/s"),
    ("peak_memory_mb", "peak MB"),
)
SPREAD = ("eval_final", "final_reward")  # shown as mean ± std over seeds


class AgentRow(BaseModel):
    """One agent's numbers: means over its seeds (``*_std``: standard deviation)."""

    model_config = ConfigDict(extra="forbid")

    agent: str
    seeds: int
    eval_before: float | None
    eval_final: float | None
    eval_final_std: float | None
    final_reward: float
    final_reward_std: float
    best_reward: float
    seconds_per_step: float
    gen_tokens_per_s: float
    train_tokens_per_s: float | None
    peak_memory_mb: float


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def _std(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.std(present)) if present else None


def agent_rows(results: Sequence[RunResult]) -> list[AgentRow]:
    """One row per agent, in the order agents first appear in ``results``."""
    rows = []
    for agent in dict.fromkeys(r.agent for r in results):
        runs = [r for r in results if r.agent == agent]
        rows.append(
            AgentRow(
                agent=agent,
                seeds=len(runs),
                eval_before=_mean([r.eval_before for r in runs]),
                eval_final=_mean([r.eval_final for r in runs]),
                eval_final_std=_std([r.eval_final for r in runs]),
                final_reward=float(np.mean([r.final_reward for r in runs])),
                final_reward_std=float(np.std([r.final_reward for r in runs])),
                best_reward=float(np.mean([r.best_reward for r in runs])),
                seconds_per_step=float(np.mean([r.seconds_per_step for r in runs])),
                gen_tokens_per_s=float(np.mean([r.gen_tokens_per_s for r in runs])),
                train_tokens_per_s=_mean([r.train_tokens_per_s for r in runs]),
                peak_memory_mb=float(np.mean([r.peak_memory_mb for r in runs])),
            )
        )
    return rows


def write_csv(path: Path, rows: Sequence[BaseModel]) -> None:
    """``rows`` (pydantic models of one kind) as CSV, written atomically."""
    if not rows:
        raise ValueError("no rows to write")
    fields = [
        name
        for name, value in rows[0].model_dump().items()
        if not isinstance(value, (list, dict))  # per-step curves stay in results.jsonl
    ]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            data = row.model_dump()
            writer.writerow({k: data[k] for k in fields})
    tmp.replace(path)


def _cell(row: AgentRow, key: str) -> str:
    value = getattr(row, key)
    if value is None:
        return "-"
    if key in SPREAD:
        spread = getattr(row, f"{key}_std")
        return (
            f"{value:.3f} ± {spread:.3f}"
            if row.seeds > 1 and spread is not None
            else f"{value:.3f}"
        )
    if key in ("agent", "seeds"):
        return str(value)
    if key in ("eval_before", "best_reward"):
        return f"{value:.3f}"
    if key == "seconds_per_step":
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    return f"{value:.0f}"


def table_cells(row: AgentRow) -> list[str]:
    return [_cell(row, key) for key, _ in COLUMNS]


# What a console narrower than the full table shows; compare.md and compare.csv keep it all.
NARROW_COLUMNS = (
    ("agent", "agent"),
    ("seeds", "seeds"),
    ("eval_before", "acc. before"),
    ("eval_final", "acc. after"),
    ("seconds_per_step", "s/step"),
    ("peak_memory_mb", "peak MB"),
)
FULL_TABLE_WIDTH = 130


def console_table(rows: Sequence[AgentRow], title: str, width: int | None = None) -> Any:
    """The per-agent table for a console ``width`` columns wide (None: as wide as it needs).
    Below ``FULL_TABLE_WIDTH`` it keeps the columns that matter most, so that agent names and
    numbers are never cut or folded (the report files have every column)."""
    from rich import box
    from rich.table import Table

    columns = COLUMNS if width is None or width >= FULL_TABLE_WIDTH else NARROW_COLUMNS
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for key, title_text in columns:
        if key == "agent":
            table.add_column(title_text, no_wrap=True)
        else:
            table.add_column(title_text, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*(_cell(row, key) for key, _ in columns))
    return table


def markdown_table(rows: Sequence[AgentRow]) -> str:
    header = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" if key == "agent" else "---:" for key, _ in COLUMNS) + "|"
    lines = [header, rule]
    for row in rows:
        lines.append("| " + " | ".join(table_cells(row)) + " |")
    return "\n".join(lines)


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (the first points average what there is so far)."""
    data = np.asarray(values, dtype=float)
    sums = np.cumsum(np.insert(data, 0, 0.0))
    out = np.empty_like(data)
    for i in range(len(data)):
        start = max(0, i + 1 - window)
        out[i] = (sums[i + 1] - sums[start]) / (i + 1 - start)
    return out


def plot_curves(path: Path, results: Sequence[RunResult], *, title: str) -> int:
    """Mean reward per step, one line per agent (mean over seeds), shaded between the lowest
    and highest seed; a trailing moving average over a twentieth of the steps. Returns the
    window."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    steps = min(len(r.rewards) for r in results)
    window = max(1, steps // 20)
    figure, axes = plt.subplots(figsize=(7.0, 4.2), dpi=110)
    for agent in dict.fromkeys(r.agent for r in results):
        curves = np.stack([smooth(r.rewards[:steps], window) for r in results if r.agent == agent])
        x = np.arange(1, steps + 1)
        mean = curves.mean(axis=0)
        (line,) = axes.plot(x, mean, label=f"{agent} ({len(curves)} seed{'s' * (len(curves) > 1)})")
        if len(curves) > 1:
            axes.fill_between(
                x,
                curves.min(axis=0),
                curves.max(axis=0),
                color=line.get_color(),
                alpha=0.18,
                linewidth=0,
            )
    axes.set_xlabel("training step")
    axes.set_ylabel("mean reward of sampled completions")
    suffix = f", moving average over {window} steps" if window > 1 else ""
    axes.set_title(f"{title}{suffix}", fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    figure.savefig(tmp)
    plt.close(figure)
    tmp.replace(path)
    return window


def write_report(
    out: Path,
    results: Sequence[RunResult],
    *,
    env: str,
    model: str,
    steps: int,
    failed: Sequence[str] = (),
) -> list[AgentRow]:
    """Write compare.md, compare.csv, runs.csv and reward_curves.png into ``out``."""
    if not results:
        raise ValueError(f"no finished runs in {out} to report on")
    rows = agent_rows(results)
    write_csv(out / "compare.csv", rows)
    write_csv(out / "runs.csv", results)
    seeds = sorted({r.seed for r in results})
    title = f"{env}, {model}"
    window = plot_curves(out / "reward_curves.png", results, title=title)
    eval_tasks = max((r.eval_tasks for r in results), default=0)
    splits = {r.eval_split for r in results}
    if splits == {"test"}:
        where = f"{eval_tasks} held-out tasks (split test)"
    elif splits == {None}:
        where = f"{eval_tasks} of the env's own tasks (it has no held-out split)"
    else:
        where = f"{eval_tasks} tasks of split(s) {', '.join(sorted(map(str, splits)))}"
    lines = [
        f"# Comparison on {env}",
        "",
        f"Model `{model}`, {steps} steps, seeds {', '.join(map(str, seeds))}; every agent saw "
        "the same tasks in the same order for a given seed. Means over seeds (± standard "
        "deviation where there are several).",
        "",
        markdown_table(rows),
        "",
        "![mean reward per step](reward_curves.png)",
        "",
        f"- held-out accuracy: greedy, on {where}, before training and after the last step;",
        "- final reward: mean training reward over the last tenth of the steps; best reward: "
        "the best moving average over windows of that size;",
        "- s/step: seconds per training step (generation + update); gen tok/s: generated "
        "tokens per second of generation; train tok/s: completion tokens per second of update;",
        "- peak MB: peak memory of the run's own process (RSS on CPU, CUDA max allocated on GPU).",
        f"- the plot: mean reward of the sampled completions per step, mean over seeds "
        f"(shaded: lowest to highest seed), trailing moving average over {window} step(s).",
    ]
    if failed:
        lines += ["", f"Failed runs (see DIR/runs/NAME/train.log): {', '.join(failed)}."]
    lines += sample_sections(results)
    tmp = out / ".compare.md.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(out / "compare.md")
    return rows


def sample_sections(results: Sequence[RunResult]) -> list[str]:
    """Greedy completions of each run's last evaluation, right and wrong: an accuracy is read
    with the answers behind it."""
    lines: list[str] = []
    for result in results:
        evals_path = Path(result.run_dir) / "eval.jsonl"
        if not evals_path.is_file():
            continue
        evals = [json.loads(line) for line in evals_path.read_text().splitlines() if line]
        last = evals[-1] if evals else {}
        samples = [ShownSample.model_validate(s) for s in last.get("samples") or []]
        if samples:
            title = f"### {result.agent}, seed {result.seed}: after step {last['step']}"
            lines += ["", title, "", *samples_markdown(samples)]
    if lines:
        lines = ["", "## Sample completions (greedy, held out)", *lines]
    return lines


class CompareSummary(BaseModel):
    """What ``grpo-env compare`` prints with ``--json``."""

    model_config = ConfigDict(extra="forbid")

    out: str
    agents: list[AgentRow]
    failed: list[str]


def compare_and_report(
    options: CompareOptions, *, console: Console | None = None, report_only: bool = False
) -> CompareSummary:
    """Run what is not finished yet (unless ``report_only``), then write the report."""
    from grpo_env.policy.config import ModelConfig

    if report_only:
        wanted = {(a, s) for a in options.agents for s in options.seeds}
        results = [r for r in read_results(options.out) if (r.agent, r.seed) in wanted]
        failed: list[str] = []
    else:
        results, failed = run_comparison(options, console=console)
    model = options.base.get("model", {}).get("name", ModelConfig().name)
    steps = int(options.base.get("steps", TrainConfig.model_fields["steps"].default))
    rows = write_report(
        options.out, results, env=options.base["env"], model=model, steps=steps, failed=failed
    )
    return CompareSummary(out=str(options.out), agents=rows, failed=failed)
