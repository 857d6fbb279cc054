"""The training loop: draw tasks, roll out groups, let the agent update, log, checkpoint.

    for step in 1..steps:
        tasks  = sampler.draw(prompts_per_step)          # the trainer's RNG, not the agent's
        groups = rollout(env, agent, tasks, group_size)  # G samples per task, scored
        (dynamic sampling: drop groups the agent rejects, refill from a second task stream)
        metrics = agent.update(groups)
        log metrics, samples, TensorBoard; evaluate; checkpoint every K steps

Ctrl-C once: the current step finishes, a checkpoint is saved, the run stops (exit code 130).
Ctrl-C twice: stop now; the last checkpoint stands. ``resume=True`` continues from the latest
checkpoint and replays exactly what an uninterrupted run would have done next (same weights,
optimiser, RNG states and task counters).
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import grpo_env
from grpo_env.env import VerifiableEnv
from grpo_env.evaluation.evaluate import EvalResult, evaluate_greedy
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import Generator, SamplingParams, make_generator
from grpo_env.policy.models import Policy, load_policy
from grpo_env.registry import agents as agent_registry
from grpo_env.training import distributed, parallel
from grpo_env.training.allocator import keep_freed_memory
from grpo_env.training.checkpoint import (
    capture_rng_state,
    latest_checkpoint,
    load_rng_state,
    read_trainer_state,
    restore_rng_state,
    save_checkpoint,
    write_text_atomic,
)
from grpo_env.training.config import TrainConfig, config_to_toml_dict, resolve_agent_config
from grpo_env.training.default_tasks import choose_tasks, eval_env_kwargs
from grpo_env.training.guard import InfraErrorGuard, InfraErrorsPersist, check_verifier
from grpo_env.training.multiturn import episode_metrics
from grpo_env.training.no_signal import NoSignalWatch
from grpo_env.training.preflight import check_train_config, checkpoint_note
from grpo_env.training.rollout import TaskSampler, rollout_groups, unwrap_env
from grpo_env.training.run_log import METRICS, NullRunLog, RunLog, peak_memory_mb
from grpo_env.types import Group, Status

log = logging.getLogger(__name__)

# Mean |sampler logprob - trainer logprob| per token above which the run warns (once): float32
# agrees to ~1e-6, bf16 to 0.02-0.04 (SmolLM2, LoRA or full); a stale vLLM weight sync or a
# leaked logits processor shows up here first, as a larger gap.
SAMPLER_GAP_WARNING = {"float32": 1e-3, "bfloat16": 0.1}


class RunExistsError(ValueError):
    """The output directory already holds a run and --resume was not given."""


class TrainInterrupted(KeyboardInterrupt):
    """Raised after Ctrl-C once the checkpoint is saved."""


class TrainSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_dir: str
    steps_done: int
    checkpoint: str | None
    interrupted: bool
    eval_before: EvalResult | None = None
    eval_after: EvalResult | None = None
    last_metrics: dict[str, float] = {}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_agent(config: TrainConfig, policy: Policy, generator: Generator) -> Any:
    """The agent named in ``[agent]``, its options validated by its own config class."""
    # The registry itself: the attribute grpo_env.agents is shadowed by the grpo_env.agents
    # subpackage once that is imported.
    spec = agent_registry.resolve(config.agent.name)
    factory = spec.load()
    config_class = getattr(factory, "Config", None)
    options: Any = config.agent.options()
    if config_class is not None:
        options = resolve_agent_config(config.agent, config_class)
    return factory(
        **spec.kwargs,
        policy=policy,
        generator=generator,
        sampling=sampling_params(config),
        config=options,
        total_steps=config.steps,
    )


def make_env(env_id: str, kwargs: dict[str, Any]) -> Any:
    try:
        return grpo_env.make(env_id, **kwargs)
    except TypeError as err:  # a keyword the env's factory does not take
        raise ValueError(f"environment {env_id!r} rejected its options {kwargs}: {err}") from err


def sampling_params(config: TrainConfig) -> SamplingParams:
    gen = config.generation
    return SamplingParams(
        max_new_tokens=gen.max_new_tokens,
        temperature=gen.temperature,
        top_p=gen.top_p,
        top_k=gen.top_k,
    )


def model_config_for(config: TrainConfig) -> ModelConfig:
    """``config.model``, with ``attention = "auto"`` kept on the model's SDPA under FSDP2: with
    the CPU matmul attention a 2-rank gloo FSDP2 run aborted at exit ("terminate called
    without an active exception") in about 1 run of 20, cause not found. Decided from the
    strategy, not the rank count, so 1 and N ranks compute alike. FSDP2 on CUDA runs SDPA
    anyway."""
    if config.distributed.strategy == "fsdp2" and config.model.attention == "auto":
        return config.model.model_copy(update={"attention": "model"})
    return config.model


class Trainer:
    """One training run (see the module docstring).

    ``env`` / ``eval_env`` may be passed in (tests, scripts); otherwise they are made from the
    registry with ``config.env`` and ``env_kwargs`` (``eval.env_kwargs`` on top for eval).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: bool = False,
        env: Any = None,
        eval_env: Any = None,
        console: Console | None = None,
    ):
        self.config = config
        self.run_dir = Path(config.out)
        # torchrun: join the ranks first; only rank 0 prints, logs, evaluates and saves.
        self.dist = distributed.init_from_env(config.distributed.timeout_s)
        if console is None or not self.dist.is_main:
            console = Console(stderr=True, quiet=not self.dist.is_main)
        self.console = console
        self._check_run_dir(resume)
        check_train_config(config, resume=resume)  # paths, agent: before any model loads
        distributed.barrier("the run directory check")  # before rank 0 creates anything
        self._checkpoint = latest_checkpoint(self.run_dir) if resume else None
        seed_everything(config.seed)
        self.env_kwargs = config.env_kwargs
        if env is None:
            self.env_kwargs, note = choose_tasks(config.env, config.env_kwargs, config.model.name)
            if note:
                self.console.print(note)
            env = make_env(config.env, self.env_kwargs)
        self.env = unwrap_env(env)
        check_verifier(self.env, config.env)  # before generating: can it score at all?
        self.guard = InfraErrorGuard(config.guard.max_infra_error_frac, config.guard.patience)
        self.no_signal = NoSignalWatch()
        self.policy = load_policy(model_config_for(config))
        # CPU training: large tensors reused step after step, not page-faulted in each time.
        self.malloc_tuned = self.policy.device.type == "cpu" and keep_freed_memory()
        gen = config.generation
        self.generator = make_generator(
            gen.backend,
            self.policy,
            batch_size=gen.batch_size,
            hf_decode=gen.hf_decode,
            gpu_memory_utilization=gen.vllm_gpu_memory_utilization,
            seed=config.seed,
            max_prompt_tokens=gen.vllm_max_prompt_tokens,
            max_new_tokens=gen.max_new_tokens,
            tensor_parallel_size=gen.vllm_tensor_parallel_size,
            sleep=gen.vllm_sleep,
            world_size=self.dist.world_size,
            rank=self.dist.rank,
        )
        self.agent = build_agent(config, self.policy, self.generator)
        shuffle = config.shuffle_tasks
        self.sampler = TaskSampler(self.env.tasks, config.seed, stream=0, shuffle=shuffle)
        self.refill_sampler = TaskSampler(self.env.tasks, config.seed, stream=1, shuffle=shuffle)
        self.eval_env, self.eval_tasks = self._eval_setup(eval_env)
        main = self.dist.is_main
        tensorboard = config.log.tensorboard
        self.log = RunLog(self.run_dir, tensorboard=tensorboard) if main else NullRunLog()
        self.step = 0
        self._stop_requested = False
        self._boundary: dict[str, Any] = {}
        self._last_saved = -1
        self._progress_bar: Progress | None = None
        self._gap_warned = False
        if self.dist.enabled:  # before a restore: FSDP2 loads into the sharded model
            self._check_distributed()
            parallel.prepare_agent(self.agent, self._strategy())
        elif config.distributed.seed_per_group:
            parallel.sample_like_ranks(self.agent)  # so it draws what N ranks draw
        self._fsdp2 = parallel.uses_fsdp2(self.agent)
        self.console.print(self._precision_line(), highlight=False)
        if self._checkpoint is not None:
            self._restore(self._checkpoint)
        elif resume:
            self.console.print(
                f"[yellow]no checkpoint in {self.run_dir} yet: the run starts from step 0[/yellow]"
            )
            self.log.truncate_after(0)
        if main:
            write_text_atomic(
                self.run_dir / "config.json",
                json.dumps(config_to_toml_dict(config), indent=2) + "\n",
            )

    # ----- setup --------------------------------------------------------------------------

    def _check_run_dir(self, resume: bool) -> None:
        if resume:
            return
        if (self.run_dir / METRICS).exists() or (self.run_dir / "checkpoints").exists():
            raise RunExistsError(
                f"{self.run_dir} already holds a run: pass --resume to continue it, or choose "
                "another --out"
            )

    def _precision_line(self) -> str:
        """The run's first line: precision, attention and sampling path (after N-rank setup,
        which can change the last)."""
        line = f"precision: {self.policy.precision.describe()}"
        if self.policy.attention == "short_eager":
            line += "; attention: matmuls for short sequences on CPU, SDPA for long ones"
        describe = getattr(self.generator, "describe", None)
        if callable(describe):
            line += f"; sampling: {describe()}"
        if self.malloc_tuned:
            line += "; malloc: keeps freed memory"
        return line

    def _check_distributed(self) -> None:
        world = self.dist.world_size
        if self.config.prompts_per_step < world:
            raise ValueError(
                f"prompts_per_step={self.config.prompts_per_step} < {world} ranks: every rank "
                "needs at least one group per step"
            )
        if self.agent.refill_rounds:
            raise ValueError("dynamic sampling (refills) is not supported on several ranks yet")
        if not getattr(self.agent, "multi_rank", True):
            raise ValueError(f"{type(self.agent).__name__} runs in one process only (no ranks)")
        if getattr(self.agent, "advantages_need_whole_batch", False):
            raise ValueError(
                f"{type(self.agent).__name__} normalises advantages over the whole batch "
                "(whitening or scale_rewards='batch'), which several ranks do not share yet: "
                "run it in one process, or use group-level scaling"
            )
        if self._strategy() == "fsdp2" and self.config.prompts_per_step % world:
            # Sharded sampling runs in lock-step: every rank the same number of groups.
            raise ValueError(
                f"fsdp2: prompts_per_step={self.config.prompts_per_step} must be a multiple of "
                f"the {world} ranks"
            )

    def _strategy(self) -> distributed.Strategy:
        strategy = self.config.distributed.strategy
        return "ddp" if strategy == "auto" else strategy

    def _eval_setup(self, eval_env: Any) -> tuple[VerifiableEnv | None, list]:
        cfg = self.config.eval
        # Rank 0 evaluates alone, except under FSDP2, where every rank's shards take part.
        sharded = self.dist.enabled and self._strategy() == "fsdp2"
        if cfg.tasks == 0 or not (self.dist.is_main or sharded):
            return None, []
        if eval_env is None:
            kwargs = eval_env_kwargs(self.env_kwargs, cfg.env_kwargs)
            if kwargs == self.env_kwargs:
                log.warning("eval.env_kwargs is empty: evaluating on the training env's tasks")
            eval_env = make_env(self.config.env, kwargs)
        env = unwrap_env(eval_env)
        check_verifier(env, f"{self.config.env} (held-out evaluation)")
        count = min(cfg.tasks, len(env.tasks))
        return env, [env.tasks[i] for i in range(count)]

    def _restore(self, checkpoint: Path) -> None:
        state = read_trainer_state(checkpoint)
        if self._fsdp2:
            parallel.load_full_state(self.agent, checkpoint)
        else:
            self.agent.load(checkpoint)
        self.sampler.drawn = int(state["sampler_drawn"])
        self.refill_sampler.drawn = int(state["refill_drawn"])
        self.step = self._last_saved = int(state["step"])
        self.log.truncate_after(self.step)
        load_rng_state(checkpoint)
        self.console.print(f"resuming {self.run_dir} from {checkpoint.name} (step {self.step})")

    # ----- the loop -----------------------------------------------------------------------

    def run(self) -> TrainSummary:
        cfg = self.config
        eval_before = eval_after = None
        last: dict[str, float] = {}
        interrupted = False
        try:
            with self._sigint_guard(), self._progress() as progress:
                self._progress_bar = progress
                task = progress.add_task(
                    "train steps", total=cfg.steps, completed=self.step, reward="-", seconds="-"
                )
                if self.eval_env is not None and self.step == 0:
                    eval_before = self._evaluate(0)
                while self.step < cfg.steps and not self._stop_requested:
                    self._mark_boundary()
                    with distributed.collective(f"step {self.step + 1}", broad=False):
                        last = self.train_step(self.step + 1)
                    self.step += 1
                    progress.update(
                        task,
                        advance=1,
                        reward=f"{last['reward_mean']:.3f}",
                        seconds=f"{last['step_seconds']:.1f}",
                    )
                    if self._eval_due():
                        self._evaluate(self.step)
                    if cfg.log.save_every and self.step % cfg.log.save_every == 0:
                        self._mark_boundary()
                        self._save()
                interrupted = self._stop_requested and self.step < cfg.steps
                if not interrupted and self.eval_env is not None:
                    eval_after = self._evaluate(self.step)
                self._mark_boundary()
                if self._last_saved != self.step:
                    self._save()
        except InfraErrorsPersist as err:
            raise InfraErrorsPersist(f"{err}; {checkpoint_note(self.run_dir)}") from None
        finally:
            self.log.close()
            self.generator.close()
            distributed.shutdown()
        summary = TrainSummary(
            run_dir=str(self.run_dir),
            steps_done=self.step,
            checkpoint=str(latest_checkpoint(self.run_dir) or "") or None,
            interrupted=interrupted,
            eval_before=eval_before,
            eval_after=eval_after,
            last_metrics=last,
        )
        if interrupted:
            self.console.print(
                f"[yellow]stopped at step {self.step}; checkpoint saved. Continue with --resume"
            )
            raise TrainInterrupted(summary.model_dump_json())
        return summary

    def train_step(self, step: int) -> dict[str, float]:
        """One step: collect a batch of groups, update, log. Returns the step's metrics."""
        started = time.perf_counter()
        groups, rollout_metrics, batch = self.collect(step)
        release = getattr(self.generator, "release_memory", None)
        if release is not None:  # vLLM's sleep mode: its memory is the update's meanwhile
            release()
        update_metrics = self.agent.update(batch) if batch else {"skipped_update": 1.0}
        local = {
            **rollout_metrics,
            **update_metrics,
            "step_seconds": time.perf_counter() - started,
            "peak_memory_mb": peak_memory_mb(self.policy.device),
        }
        if self.dist.enabled:  # every rank's groups, in step order: the 1-process metrics
            groups = [g for part in distributed.gather_objects(groups) for g in part]
            local = distributed.reduce_metrics(local, sums=SUMMED_METRICS)
        metrics = {**reward_metrics(groups), **local}
        self._check_sampler_gap(step, metrics.get("sampler_logprob_gap"))
        # The precision rides on every line: a reader of one line knows how it was computed.
        self.log.metrics(step, {**metrics, "precision": self.policy.precision.name})
        if self.config.log.sample_groups:
            self.log.samples(step, groups[: self.config.log.sample_groups])
        self.guard.observe(step, groups)  # after logging: the step's record shows the failure
        notice = self.no_signal.observe(groups)
        if notice:
            # Logged below WARNING: Python's last-resort handler would print it a second time.
            log.info(notice)
            self.console.print(f"[yellow]{notice}[/yellow]")
        return metrics

    def _check_sampler_gap(self, step: int, gap: float | None) -> None:
        limit = SAMPLER_GAP_WARNING.get(self.policy.precision.name, 1e-3)
        if gap is None or gap <= limit or self._gap_warned:
            return
        self._gap_warned = True
        message = (
            f"step {step}: sampler_logprob_gap {gap:.3g} > {limit:g}: the sampler does not sample "
            "the distribution the loss optimises (stale weights in the generation backend, a "
            "logits processor, or numerics); the ratios are off by that much"
        )
        log.warning(message)
        self.console.print(f"[yellow]warning: {message}[/yellow]", highlight=False)

    def collect(self, step: int) -> tuple[list[Group], dict[str, float], list[Group]]:
        """The step's groups (its own task draw), rollout metrics, and the training batch
        (after dynamic sampling's drops and refills)."""
        cfg = self.config
        started = time.perf_counter()
        tasks = self.sampler.draw(cfg.prompts_per_step)  # every rank draws the whole step
        mine = distributed.shard(len(tasks), self.dist.rank, self.dist.world_size)
        seeds = None
        if cfg.distributed.seed_per_group or self.dist.enabled:
            seeds = [distributed.group_seed(cfg.seed, step, i) for i in mine]
        groups = rollout_groups(
            self.env,
            self.agent,
            tasks[mine.start : mine.stop],
            cfg.group_size,
            tag=f"step{step}",
            first_index=mine.start,
            seeds=seeds,
        )
        batch = [g for g in groups if self.agent.keep_group(g)]
        dropped = len(groups) - len(batch)
        rounds = 0
        all_groups = list(groups)
        while len(batch) < cfg.prompts_per_step and rounds < self.agent.refill_rounds:
            rounds += 1
            extra_tasks = self.refill_sampler.draw(cfg.prompts_per_step - len(batch))
            extra = rollout_groups(
                self.env, self.agent, extra_tasks, cfg.group_size, tag=f"step{step}r{rounds}"
            )
            all_groups.extend(extra)
            for group in extra:
                if self.agent.keep_group(group):
                    batch.append(group)
                else:
                    dropped += 1
        elapsed = time.perf_counter() - started
        # Tokens the model sampled (a multi-turn episode's env tokens are not generated).
        tokens = sum(e.model_tokens for g in all_groups for e in g.episodes)
        greedy = [g.greedy for g in all_groups if g.greedy is not None]
        tokens += sum(e.model_tokens for e in greedy)
        metrics = {
            "gen_seconds": elapsed,
            "gen_tokens": float(tokens),
            "gen_tokens_per_s": tokens / max(elapsed, 1e-9),
            "groups_dropped": float(dropped),
            "refill_rounds": float(rounds),
            # The step's sample budget: every completion generated, greedy baselines included.
            "samples_generated": float(sum(len(g) for g in all_groups) + len(greedy)),
        }
        return groups, metrics, batch

    # ----- evaluation and checkpoints -----------------------------------------------------

    def _evaluate(self, step: int) -> EvalResult:
        assert self.eval_env is not None
        cfg = self.config
        max_new = cfg.eval.max_new_tokens or cfg.generation.max_new_tokens
        state = capture_rng_state()  # evaluation must not shift the training RNG stream
        started = time.perf_counter()
        progress = self._progress_bar
        bar = None
        if progress is not None:
            bar = progress.add_task(
                f"eval tasks (step {step})", total=len(self.eval_tasks), reward="-", seconds="-"
            )
        result = evaluate_greedy(
            self.eval_env,
            self.policy,
            self.generator,
            self.eval_tasks,
            max_new_tokens=max_new,
            batch_size=cfg.eval.batch_size,
            on_batch=(lambda done: progress.update(bar, advance=done)) if bar is not None else None,
        )
        if progress is not None and bar is not None:
            progress.remove_task(bar)
        restore_rng_state(state)
        self.log.evaluation(step, {**result.model_dump(), "seconds": time.perf_counter() - started})
        turns = result.episodes
        extra = (
            f"; {turns['turns_mean']:.2f} turns, {turns['tool_calls']:.0f} tool calls "
            f"({turns['tool_errors']:.0f} errors) in {result.tasks} episodes"
            if turns
            else ""
        )
        self.console.print(
            f"eval step {step}: accuracy {result.accuracy:.3f}, mean reward "
            f"{result.mean_reward:.3f} on {result.tasks} held-out tasks{extra}"
        )
        return result

    def _eval_due(self) -> bool:
        every = self.config.eval.every
        # The last step's evaluation happens after the loop, with the final checkpoint.
        return (
            self.eval_env is not None
            and every > 0
            and self.step % every == 0
            and self.step < self.config.steps
        )

    def _mark_boundary(self) -> None:
        """Remember the state at a step boundary: what a checkpoint must hold."""
        self._boundary = {
            "rng": capture_rng_state(),
            "sampler_drawn": self.sampler.drawn,
            "refill_drawn": self.refill_sampler.drawn,
        }

    def _save(self) -> None:
        # FSDP2: every rank gathers the full state (a collective); rank 0 writes it.
        full = parallel.gather_full_state(self.agent) if self._fsdp2 else None
        if not self.dist.is_main:  # the weights are replicated (ddp): rank 0 writes them once
            self._last_saved = self.step
            distributed.barrier(f"checkpoint {self.step}")
            return
        boundary = self._boundary
        current = capture_rng_state()
        restore_rng_state(boundary["rng"])  # save_checkpoint records the live RNG state
        try:
            save_agent = self.agent.save
            if full is not None:

                def save_agent(directory: Path) -> None:
                    parallel.write_full_state(self.agent, full, directory)

            save_checkpoint(
                self.run_dir,
                self.step,
                save_agent,
                {
                    "sampler_drawn": boundary["sampler_drawn"],
                    "refill_drawn": boundary["refill_drawn"],
                    "seed": self.config.seed,
                },
                keep=self.config.log.keep_checkpoints,
            )
        finally:
            restore_rng_state(current)
        self._last_saved = self.step
        distributed.barrier(f"checkpoint {self.step}")

    # ----- Ctrl-C and progress ------------------------------------------------------------

    @contextmanager
    def _sigint_guard(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True
            self.console.print(
                "\n[yellow]Ctrl-C: saving a checkpoint after this step (Ctrl-C again: stop now, "
                "without saving this step)[/yellow]"
            )

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}"),
            TextColumn("reward {task.fields[reward]}"),
            TextColumn("{task.fields[seconds]} s/step"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.config.log.progress or not self.dist.is_main,
        )


# Rollout and update metrics that are counts: added over the ranks (the rest are averaged).
SUMMED_METRICS = ("gen_tokens", "gen_tokens_per_s", "groups_dropped", "samples_trained")
SUMMED_METRICS += ("samples_generated",)
SUMMED_METRICS += ("masked_infra_error", "masked_truncated")


def reward_metrics(groups: Sequence[Group]) -> dict[str, float]:
    """Reward, component, length and status statistics of a step's sampled groups."""
    episodes = [e for g in groups for e in g.episodes]
    scored = [e for e in episodes if e.result.status is not Status.INFRA_ERROR]
    rewards = np.array([e.reward for e in scored], dtype=float)
    lengths = np.array([len(e.completion_ids) for e in episodes], dtype=float)
    metrics: dict[str, float] = {
        "reward_mean": float(rewards.mean()) if rewards.size else 0.0,
        "reward_std": float(rewards.std()) if rewards.size else 0.0,
        "completion_len_mean": float(lengths.mean()) if lengths.size else 0.0,
        "completion_len_max": float(lengths.max()) if lengths.size else 0.0,
        "frac_truncated": float(np.mean([e.truncated for e in episodes])) if episodes else 0.0,
        "infra_error_frac": (len(episodes) - len(scored)) / max(len(episodes), 1),
    }
    components: dict[str, list[float]] = {}
    for episode in scored:
        for name, value in episode.result.components.items():
            components.setdefault(name, []).append(value)
    for name, values in sorted(components.items()):
        metrics[f"reward/{name}"] = float(np.mean(values))
    statuses: dict[str, int] = {}
    for episode in episodes:
        statuses[str(episode.result.status)] = statuses.get(str(episode.result.status), 0) + 1
    for name, count in sorted(statuses.items()):
        metrics[f"status/{name}"] = count / len(episodes)
    return {**metrics, **episode_metrics(episodes)}


def train(config: TrainConfig, *, resume: bool = False, **kwargs: Any) -> TrainSummary:
    """Run ``config`` to the end (see ``Trainer``)."""
    return Trainer(config, resume=resume, **kwargs).run()
