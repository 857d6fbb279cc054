"""The ``grpo-env`` command line: wires the rooms together, holds no logic of its own.

Errors a user can fix (unknown id, bad task file, bad option) print one line and exit 2;
set ``GRPO_ENV_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import grpo_env
from grpo_env.checks import CheckOutcome, run_env_checks
from grpo_env.console.preview import preview
from grpo_env.registry import UnknownIdError, import_user_module
from grpo_env.tasks import TaskFileError
from grpo_env.training.guard import INFRA_EXIT_CODE, InfraFailure

console = Console()
err_console = Console(stderr=True)

app = typer.Typer(
    name="grpo-env",
    help="Reinforcement learning of language models with verifiable rewards.\n\n"
    "Environments turn checkable tasks into rewards; agents (GRPO and baselines) train on them.\n"
    "Start with `grpo-env envs list`, then `grpo-env envs show ID`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
envs_app = typer.Typer(
    help="List, inspect and check the registered environments.", no_args_is_help=True
)
app.add_typer(envs_app, name="envs")

# The precision option of train and compare.
DtypeOption = Annotated[
    str | None,
    typer.Option(
        "--dtype",
        help="float32, bfloat16 (autocast, float32 master weights) or auto (bfloat16 on CUDA "
        "and CPUs with AMX/AVX-512 BF16). Default: auto.",
    ),
]

# Errors that come from what the user typed or gave us: one line, exit 2, no traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UnknownIdError,
    TaskFileError,
    FileNotFoundError,
    ValidationError,
    ValueError,
    KeyError,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"grpo-env {grpo_env.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
    imports: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            "-I",
            metavar="MODULE",
            help="Import a module first (repeatable), so the environments and agents it "
            "registers can be used: `grpo-env -I my_envs train --env reverse-word`. The current "
            "directory is importable.",
        ),
    ] = None,
) -> None:
    """Reinforcement learning of language models with verifiable rewards."""
    for module in imports or []:
        import_user_module(module)


# ----- envs ---------------------------------------------------------------------------------


@envs_app.command("list")
def envs_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every registered environment (built-in, plugins, and their versions)."""
    specs = grpo_env.envs.specs()
    if as_json:
        rows = [{"id": s.id, "description": s.description, "source": s.source} for s in specs]
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(specs)} environments", title_justify="left")
    table.add_column("id", style="bold cyan", no_wrap=True)
    table.add_column("description")
    table.add_column("source", style="dim")
    for spec in specs:
        table.add_row(spec.id, spec.description, spec.source)
    console.print(table)
    console.print("[dim]An id without -vN means its latest version: `--env format`.[/dim]")


@envs_app.command("show")
def envs_show(
    env_id: Annotated[str, typer.Argument(help="Environment id, e.g. format-v0 or format.")],
    seed: Annotated[int, typer.Option(help="Seed that picks the sample task.")] = 0,
) -> None:
    """Show an environment: its spec, reward components and one sample task."""
    spec = grpo_env.envs.resolve(env_id)
    env = grpo_env.make(spec.id)
    try:
        obs, info = env.reset(seed=seed)
        task = env.unwrapped.task
        console.print(f"[bold cyan]{spec.id}[/bold cyan]  {spec.description}")
        cls = type(env.unwrapped)
        console.print(f"class:      {cls.__module__}.{cls.__name__}")
        console.print(f"source:     {spec.source}")
        console.print(f"tasks:      {len(env.unwrapped.tasks)} ({env.unwrapped.tasks.name})")
        console.print(f"max turns:  {env.unwrapped.max_turns}")
        console.print(f"components: {', '.join(env.unwrapped.reward_components)}")
        console.print(f"\n[bold]sample task[/bold] {info['task_id']} (seed {seed})")
        for message in obs:
            console.print(f"[magenta]{message['role']}:[/magenta] {escape(message['content'])}")
        if task is not None and task.answer is not None:
            console.print(f"[green]answer:[/green] {escape(str(task.answer))}")
        gold = env.unwrapped.gold_completion(task) if task is not None else None
        if gold is not None:
            console.print(f"[green]gold completion:[/green] {escape(gold)}")
    finally:
        env.close()


@envs_app.command("check")
def envs_check(
    env_id: Annotated[str, typer.Argument(help="Environment id, e.g. format-v0.")],
    seed: Annotated[int, typer.Option(help="Seed for the determinism and scoring checks.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Check an environment: Gymnasium's env checker, seed determinism, the gold answer
    scores full marks, an empty answer scores nothing, and adversarial probes (the prompt
    echoed, the question restated, near misses, junk) score nothing where the env has a
    reference answer. Exits 1 if any check fails."""
    spec = grpo_env.envs.resolve(env_id)
    outcomes = run_env_checks(spec.id, seed=seed)
    _print_outcomes(spec.id, outcomes, as_json)
    if any(o.passed is False for o in outcomes):
        raise typer.Exit(1)


def _print_outcomes(env_id: str, outcomes: list[CheckOutcome], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"env": env_id, "checks": [o.model_dump() for o in outcomes]}, indent=2))
        return
    table = Table(title=f"checks of {env_id}", title_justify="left")
    table.add_column("check", style="bold")
    table.add_column("result")
    table.add_column("detail")
    marks = {True: "[green]PASS[/green]", False: "[red]FAIL[/red]", None: "[yellow]SKIP[/yellow]"}
    for outcome in outcomes:
        table.add_row(outcome.name, marks[outcome.passed], escape(outcome.detail))
    console.print(table)


# ----- train (GRPO and the other agents; logic in grpo_env.training.trainer) ---------------


def _config_overrides(
    options: tuple[tuple[str, Any], ...], settings: list[str] | None
) -> dict[str, Any]:
    """Config overrides from the options given (None: not given), then each --set KEY=VALUE."""
    from grpo_env.training.config import parse_assignment

    overrides = {key: value for key, value in options if value is not None}
    overrides.update(parse_assignment(setting) for setting in settings or [])
    return overrides


@app.command("train", no_args_is_help=True)
def train_command(
    env: Annotated[
        str | None, typer.Option("--env", help="Environment id, e.g. math-chain-sum or format-v0.")
    ] = None,
    agent: Annotated[
        str | None,
        typer.Option("--agent", help="Agent: grpo (default), ppo, rloo... (grpo-env agents list)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Local model dir, embedded model (smollm2-135m-instruct, the default) or hub id.",
        ),
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps.")] = None,
    group_size: Annotated[
        int | None, typer.Option("--group-size", help="G: completions sampled per prompt.")
    ] = None,
    prompts_per_step: Annotated[
        int | None, typer.Option("--prompts-per-step", help="B: prompts (groups) per step.")
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option("--max-new-tokens", help="Completion length limit (tokens).")
    ] = None,
    out: Annotated[
        str | None, typer.Option("--out", help="Run directory (metrics, samples, checkpoints).")
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", help="TOML file with any knob; options override it.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed (task order, sampling).")] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    beta: Annotated[
        float | None, typer.Option("--beta", help="KL weight (0: no reference model).")
    ] = None,
    lora: Annotated[
        bool | None, typer.Option("--lora/--full", help="LoRA adapters or full fine-tuning.")
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="Sampling temperature.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="Generation backend: hf or vllm (CUDA).")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="auto (default), cpu, cuda, cuda:N.")
    ] = None,
    dtype: DtypeOption = None,
    save_every: Annotated[
        int | None, typer.Option("--save-every", help="Checkpoint every K steps.")
    ] = None,
    eval_tasks: Annotated[
        int | None,
        typer.Option("--eval-tasks", help="Held-out tasks evaluated greedily before and after."),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any config key, e.g. --set agent.mu=2 (repeatable)."),
    ] = None,
) -> None:
    """Train a policy on an environment with GRPO (or another agent).

    Example, on the embedded default model:

        grpo-env train --env math-chain-sum --steps 100 --out runs/chain-sum

    Writes DIR/metrics.jsonl (one line per step), DIR/samples.jsonl, TensorBoard events in
    DIR/tb and checkpoints in DIR/checkpoints. Ctrl-C saves a checkpoint after the current
    step; --resume continues exactly where it stopped. Every knob can be set in a TOML file
    (--config; unknown keys are rejected with the valid ones listed) or with --set KEY=VALUE.
    """
    from grpo_env.training.config import build_train_config
    from grpo_env.training.preflight import check_resumable, check_train_config, checkpoint_note
    from grpo_env.training.trainer import TrainInterrupted, train

    overrides = _config_overrides(
        (
            ("env", env),
            ("agent.name", agent),
            ("model.name", model),
            ("steps", steps),
            ("group_size", group_size),
            ("prompts_per_step", prompts_per_step),
            ("generation.max_new_tokens", max_new_tokens),
            ("out", out),
            ("seed", seed),
            ("agent.lr", lr),
            ("agent.beta", beta),
            ("model.lora", lora),
            ("generation.temperature", temperature),
            ("generation.backend", backend),
            ("model.device", device),
            ("model.dtype", dtype),
            ("log.save_every", save_every),
            ("eval.tasks", eval_tasks),
        ),
        settings,
    )
    from grpo_env.console.third_party_log import third_party_output_to

    if resume and out is not None:
        check_resumable(Path(out))  # before its config is looked for: say what is there
    train_config = build_train_config(config, overrides, resume=resume)
    check_train_config(train_config, resume=resume)  # before the log file makes --out
    try:
        # Third-party warnings and loading bars: DIR/train.log (the console shows ours only).
        with third_party_output_to(Path(train_config.out) / "train.log"):
            summary = train(train_config, resume=resume, console=err_console)
    except TrainInterrupted:
        sys.exit(130)
    except KeyboardInterrupt:  # the second Ctrl-C: stop now, without saving this step
        note = checkpoint_note(Path(train_config.out))
        err_console.print(f"[yellow]stopped; {escape(note)}[/yellow]")
        sys.exit(130)
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 alone reports
        return
    table = Table(title=f"trained {summary.steps_done} steps", title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("run dir", summary.run_dir)
    table.add_row("checkpoint", summary.checkpoint or "-")
    if "reward_mean" in summary.last_metrics:
        table.add_row("last reward", f"{summary.last_metrics['reward_mean']:.3f}")
    for name, result in (("before", summary.eval_before), ("after", summary.eval_after)):
        if result is not None:
            table.add_row(f"eval {name}", f"accuracy {result.accuracy:.3f} ({result.tasks} tasks)")
    console.print(table)
    for name, result in (("before", summary.eval_before), ("after", summary.eval_after)):
        if result is not None and result.samples:
            _print_samples(f"greedy completions {name} training", result.samples)


def _print_samples(title: str, samples: list[Any]) -> None:
    """A few scored completions under an accuracy: a number is believed with its samples."""
    console.print(f"[bold]{escape(title)}[/bold] (right, then wrong):")
    for sample in samples:
        mark = "[green]✓[/green]" if sample.score >= 1.0 else "[red]✗[/red]"
        console.print(
            f"{mark} {sample.score:.2f} {sample.status} · task {escape(sample.task_id)}",
            highlight=False,
        )
        console.print(f"  Q: {escape(_flat(sample.question, 160))}", highlight=False)
        console.print(f"  A: {escape(_flat(sample.completion, 240))}", highlight=False)
        read = "" if sample.extracted is None else f"read {sample.extracted!s}"
        why = "" if not sample.reason else f"{sample.reason}"
        if read or why:
            note = " · ".join(p for p in (read, why) if p)
            console.print(f"  [dim]{escape(_flat(note, 160))}[/dim]", highlight=False)


def _flat(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ----- check (issue 3: math) ----------------------------------------------------------------

check_app = typer.Typer(
    help="Check one answer by hand, exactly as the environments' verifiers do (for debugging).",
    no_args_is_help=True,
)
app.add_typer(check_app, name="check")


@check_app.command("math")
def check_math(
    gold: Annotated[
        str,
        typer.Option(
            "--gold",
            "-g",
            help="Reference answer: a bare answer (`\\frac{1}{2}`, `72`) or a worked solution "
            "whose last `\\boxed{}` or `#### N` holds it.",
        ),
    ],
    completion: Annotated[
        str,
        typer.Option(
            "--completion", "-c", help="The model's text, or `-` to read it from standard input."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the VerifyResult as JSON.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Wall-clock limit of the check, in seconds.", min=0.01)
    ] = 5.0,
    last_number_fallback: Annotated[
        bool,
        typer.Option(
            "--last-number-fallback", help="Use the last number when no answer is marked."
        ),
    ] = False,
) -> None:
    """Check a completion's final answer against a reference answer.

    The final answer is the content of an `<answer>` block, else the last `\\boxed{}`, else
    `#### N`, else "the answer is ...". Exits 0 when it is correct, 1 otherwise.

    Example: `grpo-env check math --gold '\\frac{1}{2}' --completion 'So it is \\boxed{0.5}.'`
    """
    from grpo_env.environments.math import check_answer

    text = sys.stdin.read() if completion == "-" else completion
    result = check_answer(gold, text, timeout=timeout, last_number_fallback=last_number_fallback)
    if as_json:
        print(json.dumps(result.model_dump(mode="json"), indent=2))
    if result.details.get("bad_reference"):  # the reference is broken, not the completion
        err_console.print(f"[red]error:[/red] --gold: {escape(result.details['reason'])}")
        raise typer.Exit(2)
    if not as_json:
        verdict = "[green]correct[/green]" if result.score >= 1.0 else "[red]incorrect[/red]"
        console.print(f"{verdict}  score {result.score:g}  status {result.status.value}")
        for key, value in result.details.items():
            console.print(f"[dim]{key}:[/dim] {escape(str(value))}")
    if result.score < 1.0:
        raise typer.Exit(1)


# ----- sandbox ------------------------------------------------------------------------------

sandbox_app = typer.Typer(
    help="Run untrusted Python in the sandbox, build its image, check the setup.\n\n"
    "First time on a machine: `grpo-env sandbox build --offline` (or without --offline where "
    "a registry is reachable), then `grpo-env sandbox doctor`.",
    no_args_is_help=True,
)
app.add_typer(sandbox_app, name="sandbox")
DockerHostsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--docker-host",
        help="Docker engine URL (unix://, tcp:// with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, "
        "ssh://user@host); repeat for several. Default: $GRPO_ENV_DOCKER_HOSTS "
        "(comma-separated), else DOCKER_HOST or the local socket.",
    ),
]


@sandbox_app.command("run")
def sandbox_run(
    solution: Annotated[Path, typer.Argument(help="Python file with the code to test.")],
    tests: Annotated[
        Path,
        typer.Option(
            "--tests",
            help="The tests: a Python file of top-level asserts, a HumanEval `check(candidate)` "
            "file, pytest/unittest test functions (the solution's names are in scope as if "
            "`from solution import *` came first), or a JSON file of stdin/stdout cases "
            '(`{"inputs": [...], "outputs": [...]}`, the APPS/TACO shape).',
        ),
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (by content), asserts, check (HumanEval), functions (pytest/unittest) "
            "or io (stdin/stdout JSON).",
        ),
    ] = "auto",
    compare: Annotated[
        str,
        typer.Option(
            help="io cases: exact (trailing whitespace ignored), tokens, or float (tokens, "
            "numbers within 1e-6)."
        ),
    ] = "exact",
    case_timeout: Annotated[
        float | None, typer.Option(help="Wall-clock limit of each test or case, seconds.")
    ] = None,
    entry_point: Annotated[
        str | None,
        typer.Option(
            help="check files: the function `candidate` means (default: the file's "
            "own `check(name)` call, else the solution's last function)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    sandbox: Annotated[
        str, typer.Option(help="docker (isolated) or local-unsafe (NO isolation, opt-in).")
    ] = "docker",
    timeout: Annotated[float, typer.Option(help="Wall-clock limit of the run, seconds.")] = 10.0,
    memory_mb: Annotated[int, typer.Option(help="Memory limit (no swap), MiB.")] = 512,
    image: Annotated[
        str | None, typer.Option(help="Sandbox image (default: $GRPO_ENV_SANDBOX_IMAGE).")
    ] = None,
    docker_host: DockerHostsOption = None,
) -> None:
    """Run SOLUTION.py against TESTS in the sandbox and report each test.

    The tests run in a trusted process that never executes the solution's code, so exiting
    early, faking equality or patching helpers cannot pass them. Exit code: 0 all passed,
    1 not all passed, 3 the sandbox itself failed (engine down, image missing)."""
    from grpo_env.sandbox import Limits
    from grpo_env.sandbox.commands import run_files

    if compare not in ("exact", "tokens", "float"):
        raise typer.BadParameter("use exact, tokens or float", param_hint="--compare")
    limits = Limits(timeout_s=timeout, memory_mb=memory_mb, test_timeout_s=case_timeout)
    result = run_files(
        solution,
        tests,
        sandbox=sandbox,
        image=image,
        docker_hosts=docker_host,
        limits=limits,
        fmt=fmt,
        entry_point=entry_point,
        compare=compare,  # type: ignore[arg-type]
    )
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        _print_execution(result)
    if result.is_sandbox_error:
        raise typer.Exit(INFRA_EXIT_CODE)
    if result.status != "passed":
        raise typer.Exit(1)


def _print_execution(result: Any) -> None:
    table = Table(
        title=f"{result.tests_passed}/{result.tests_total} tests passed", title_justify="left"
    )
    table.add_column("test")
    table.add_column("result")
    table.add_column("detail")
    for test in result.tests:
        mark = "[green]PASS[/green]" if test.passed else f"[red]{test.kind.upper()}[/red]"
        table.add_row(escape(test.name), mark, escape(test.detail))
    if result.tests:
        console.print(table)
    colour = "green" if result.status == "passed" else "red"
    timing = f"({result.backend}, {result.duration_s:.2f} s)"
    console.print(f"status [{colour}]{result.status}[/{colour}]  {timing}")
    if result.error:
        console.print(f"[red]{escape(result.error)}[/red]")
    for name in ("stdout", "stderr"):
        text = getattr(result, name)
        if text:  # bounded: a 1 MiB line printed whole takes rich an hour to wrap
            shown = preview(text.rstrip())
            more = "" if shown == text.rstrip() else f" ({len(text)} chars; all of it: --json)"
            console.print(f"[dim]{name}{more}:[/dim]\n{escape(shown)}", soft_wrap=True)


@sandbox_app.command("build")
def sandbox_build(
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="No registry: debootstrap a minimal Debian + python3 from the apt mirror, then "
            "`docker import` it (needs root and debootstrap; about 2 minutes).",
        ),
    ] = False,
    tag: Annotated[
        str | None, typer.Option(help="Image name:tag (default: $GRPO_ENV_SANDBOX_IMAGE).")
    ] = None,
    mirror: Annotated[
        str | None, typer.Option(help="--offline: Debian mirror (default: apt's).")
    ] = None,
    suite: Annotated[
        str | None, typer.Option(help="--offline: Debian release (default: this machine's).")
    ] = None,
) -> None:
    """Build the sandbox image (from the shipped Dockerfile, or --offline)."""
    from grpo_env.sandbox import default_image
    from grpo_env.sandbox.image import BuildError, build_from_dockerfile, build_offline
    from grpo_env.sandbox.protocol import SandboxUnavailable

    tag = tag or default_image()

    def progress(message: str) -> None:
        err_console.print(f"[dim]{escape(message)}[/dim]")

    try:
        if offline:
            report = build_offline(tag, progress=progress, mirror=mirror, suite=suite)
        else:
            report = build_from_dockerfile(tag, progress=progress)
    except (BuildError, SandboxUnavailable) as err:
        err_console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False)
        raise typer.Exit(1) from None
    console.print(
        f"built [bold]{report.image}[/bold] ({report.method}) in {report.seconds:.0f} s: "
        f"{report.size_mb:.0f} MB, python {report.python}"
    )


@sandbox_app.command("doctor")
def sandbox_doctor(
    image: Annotated[
        str | None, typer.Option(help="Sandbox image (default: $GRPO_ENV_SANDBOX_IMAGE).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    docker_host: DockerHostsOption = None,
) -> None:
    """Check each Docker engine (reachable, version, image present), which limits its kernel
    really enforces (each tried from inside a sandbox) and the verdicts of a smoke test.
    Exits 1 on any failure."""
    from grpo_env.sandbox.doctor import run_doctor

    try:
        report = run_doctor(image, None if as_json else _progress, docker_host)
    except ValueError as err:  # a malformed engine URL
        raise typer.BadParameter(str(err), param_hint="--docker-host") from None
    if as_json:
        engines = [{**e.model_dump(), "ok": e.ok} for e in report.engines]
        print(json.dumps({"engines": engines, "ok": report.ok}, indent=2))
    else:
        for engine in report.engines:
            _print_engine_report(engine, titled=len(report.engines) > 1)
        console.print("[green]sandbox OK[/green]" if report.ok else "[red]sandbox NOT OK[/red]")
    if not report.ok:
        raise typer.Exit(1)


def _print_engine_report(report: Any, *, titled: bool) -> None:
    if titled:
        state = "[green]reachable[/green]" if report.reachable else "[red]unreachable[/red]"
        console.print(f"[bold]{escape(report.host)}[/bold]: {state}")
    for title, facts in (("engine", report.engine), ("image", report.image)):
        if facts:
            console.print(
                f"[bold]{title}[/bold]: " + ", ".join(f"{k} {v}" for k, v in facts.items())
            )
    if report.checks:
        _print_outcomes(
            f"sandbox on {report.host}" if titled else "sandbox",
            [
                CheckOutcome(name=c.name, passed=c.ok, detail=f"{c.observed} (want {c.expected})")
                for c in report.checks
            ],
            as_json=False,
        )
    if report.error:
        err_console.print(f"[red]error:[/red] {escape(report.error)}", highlight=False)


def _progress(message: str) -> None:
    err_console.print(f"[dim]{escape(message)}[/dim]")


# ----- agents, eval, rescore, compare (issue 6; logic in grpo_env.evaluation.runner, .compare) ----

agents_app = typer.Typer(
    help="List the agents (GRPO, the baselines, plugins).", no_args_is_help=True
)
app.add_typer(agents_app, name="agents")


@agents_app.command("list")
def agents_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List every agent `--agent NAME` accepts: built-in ones and plugins (entry points)."""
    from grpo_env.registry import agents as agent_registry

    specs = agent_registry.specs()
    if as_json:
        rows = [{"name": s.id, "description": s.description, "source": s.source} for s in specs]
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(specs)} agents", title_justify="left")
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("description")
    table.add_column("source", style="dim")
    for spec in specs:
        table.add_row(spec.id, spec.description, spec.source)
    console.print(table)


def _env_kwargs(settings: list[str] | None) -> dict[str, Any]:
    from grpo_env.training.config import parse_assignment

    return dict(parse_assignment(s) for s in settings or [])


def _print_eval_report(report: Any, as_json: bool) -> None:
    from grpo_env.evaluation.episodes import episode_rows

    if report.infra_errors:  # first: these numbers leave out samples that were never scored
        err_console.print(
            f"[red]error:[/red] {report.infra_errors} of {report.samples} samples could not be "
            f"scored (infra_error): {escape(report.infra_error_reason or '?')}; the numbers below "
            "leave them out. Fix the verifier (`grpo-env sandbox doctor` for code), then "
            "`grpo-env rescore` the samples file",
            highlight=False,
            soft_wrap=True,
        )
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    table = Table(
        title=f"{report.env}: {report.tasks} tasks x {report.samples_per_task} samples "
        f"(temperature {report.temperature})",
        title_justify="left",
    )
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in {**report.pass_at, **report.maj_at}.items():
        table.add_row(name, f"{value:.3f}")
    table.add_row("mean reward", f"{report.mean_reward:.3f}")
    for name, value in report.reward_components.items():
        table.add_row(f"  {name}", f"{value:.3f}")
    for name, count in report.statuses.items():
        table.add_row(f"status {name}", str(count))
    table.add_row("length mean / median / max", f"{report.length_mean:.1f} / "
                  f"{report.length_median:.0f} / {report.length_max}")  # fmt: skip
    table.add_row("truncated", f"{report.truncated:.1%}")
    for name, value in episode_rows(report.episodes):
        table.add_row(name, value)
    console.print(table)
    if report.shown:
        _print_samples("sample completions", report.shown)
    console.print(
        f"[dim]samples: {report.samples_file}  (re-score: grpo-env rescore FILE --env ID)"
    )


@app.command("eval", no_args_is_help=True)
def eval_command(
    env: Annotated[str, typer.Option("--env", help="Environment id, e.g. math-chain-sum.")],
    model: Annotated[
        str | None,
        typer.Option("--model", help="Local model dir, embedded model name, or hub id."),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option("--checkpoint", help="A run dir (latest checkpoint), a checkpoint dir."),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", "-k", help="K samples per task.")] = 1,
    tasks: Annotated[
        int | None, typer.Option("--tasks", help="Evaluate the first N tasks (default: all).")
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split", help="Task split (default: test, held out, where the env has one)."
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option("--temperature", help="Default: 0 (greedy) for 1 sample, else 1.0."),
    ] = None,
    top_p: Annotated[float, typer.Option("--top-p", help="Nucleus sampling.")] = 1.0,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", help="Completion length limit.")
    ] = 256,
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Sequences per generate call.")
    ] = 64,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed.")] = 0,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Reward at which a sample counts as correct.")
    ] = 1.0,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda.")] = None,
    out: Annotated[
        str | None,
        typer.Option("--out", help="Per-sample JSONL (default runs/eval/ENV-MODEL-kK.jsonl)."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the evaluation in --out.")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out.")] = False,
    env_settings: Annotated[
        list[str] | None,
        typer.Option("--env-set", help="Environment option KEY=VALUE (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Evaluate a model or a trained checkpoint: K samples per held-out task.

    Reports pass@1, unbiased pass@k (Chen et al. 2021) and maj@k for k = 1, 2, 4, ... K, the
    mean reward and each component, how many samples timed out, failed on infrastructure or
    had an invalid format, and completion lengths. Every sample is written to a JSONL file as
    it is scored; `grpo-env rescore FILE --env ID` scores it again without regenerating.

        grpo-env eval --env math-chain-sum --model smollm2-135m-instruct --samples 8
        grpo-env eval --env math-chain-sum --checkpoint runs/chain-sum --samples 8 --json
    """
    from pathlib import Path

    from grpo_env.evaluation.runner import EvalOptions, run_eval

    options = EvalOptions(
        env=env,
        model=model,
        checkpoint=checkpoint,
        samples=samples,
        tasks=tasks,
        split=split,
        env_kwargs=_env_kwargs(env_settings),
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        threshold=threshold,
        device=device,
        out=Path(out) if out else None,
        resume=resume,
        overwrite=overwrite,
    )
    from grpo_env.console.third_party_log import third_party_output_to
    from grpo_env.evaluation.runner import default_out
    from grpo_env.training.preflight import check_out_file

    samples_file = options.out or default_out(options)
    check_out_file(samples_file)  # before the log file beside it is made
    with third_party_output_to(samples_file.with_suffix(".log")):
        report = run_eval(options, console=err_console)
    _print_eval_report(report, as_json)
    if report.infra_errors:
        sys.exit(INFRA_EXIT_CODE)


@app.command("rescore", no_args_is_help=True)
def rescore_command(
    file: Annotated[str, typer.Argument(help="Samples JSONL written by grpo-env eval.")],
    env: Annotated[str, typer.Option("--env", help="Environment whose verifier scores again.")],
    out: Annotated[
        str | None, typer.Option("--out", help="Where to write (default FILE.rescored.jsonl).")
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Reward at which a sample counts as correct.")
    ] = 1.0,
    env_settings: Annotated[
        list[str] | None,
        typer.Option("--env-set", help="Environment option KEY=VALUE (repeatable)."),
    ] = None,
    force_env: Annotated[
        bool,
        typer.Option(
            "--force-env", help="Score with another env or options than the samples were made with."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Score an evaluation's completions again (a fixed or changed verifier), without
    regenerating them; prints the same report as `grpo-env eval`. The original file is kept."""
    from pathlib import Path

    from grpo_env.evaluation.runner import RescoreOptions, run_rescore

    options = RescoreOptions(
        file=Path(file),
        env=env,
        env_kwargs=_env_kwargs(env_settings),
        out=Path(out) if out else None,
        threshold=threshold,
        force_env=force_env,
    )
    report = run_rescore(options)
    _print_eval_report(report, as_json)
    if report.infra_errors:
        sys.exit(INFRA_EXIT_CODE)


@app.command("compare", no_args_is_help=True)
def compare_command(
    env: Annotated[str | None, typer.Option("--env", help="Environment id.")] = None,
    out: Annotated[
        str, typer.Option("--out", help="Comparison directory (runs, results, report).")
    ] = "runs/compare",
    agents: Annotated[
        str | None,
        typer.Option("--agents", help="Comma-separated agents (default grpo,ppo,rloo,frozen)."),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="A count (3: seeds 0,1,2) or a list (0,5).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps per run.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Local model dir, embedded model, or hub id.")
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", help="TOML: a run's configuration plus a [compare] table."),
    ] = None,
    group_size: Annotated[
        int | None, typer.Option("--group-size", help="G: completions per prompt.")
    ] = None,
    prompts_per_step: Annotated[
        int | None, typer.Option("--prompts-per-step", help="B: prompts per step.")
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option("--max-new-tokens", help="Completion length limit.")
    ] = None,
    lr: Annotated[float | None, typer.Option("--lr", help="Learning rate (every agent).")] = None,
    lora: Annotated[
        bool | None, typer.Option("--lora/--full", help="LoRA adapters or full fine-tuning.")
    ] = None,
    eval_tasks: Annotated[
        int | None,
        typer.Option("--eval-tasks", help="Held-out tasks evaluated before and after (50)."),
    ] = None,
    device: Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda.")] = None,
    dtype: DtypeOption = None,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any run config key, e.g. --set agent.beta=0.02 (all agents)."),
    ] = None,
    agent_settings: Annotated[
        list[str] | None,
        typer.Option("--agent-set", help="One agent's option, e.g. --agent-set ppo.lam=0.9."),
    ] = None,
    report_only: Annotated[
        bool, typer.Option("--report-only", help="Rewrite the report from finished runs only.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Compare agents on one environment: same tasks, same seeds, same budget.

        grpo-env compare --env math-chain-sum --agents grpo,ppo,rloo,frozen \\
            --steps 30 --seeds 2 --out runs/compare-chain-sum

    Each agent/seed is one `grpo-env train` run in its own process (fresh memory measurement;
    a crash loses that run only), in DIR/runs/AGENT-seedS. Results are appended to
    DIR/results.jsonl as runs finish; the same command again skips finished runs and resumes
    interrupted ones (more agents or seeds later: only the new runs run). Writes
    DIR/compare.md, DIR/compare.csv (one row per agent), DIR/runs.csv (one per run) and
    DIR/reward_curves.png. Shared `[agent]` options go to every agent that has the knob.
    """
    from pathlib import Path

    from grpo_env.console.third_party_log import third_party_output_to
    from grpo_env.evaluation.compare import build_compare_options, parse_agent_setting, parse_seeds
    from grpo_env.evaluation.compare_report import compare_and_report

    overrides = _config_overrides(
        (
            ("steps", steps),
            ("model.name", model),
            ("group_size", group_size),
            ("prompts_per_step", prompts_per_step),
            ("generation.max_new_tokens", max_new_tokens),
            ("agent.lr", lr),
            ("model.lora", lora),
            ("eval.tasks", eval_tasks),
            ("model.device", device),
            ("model.dtype", dtype),
        ),
        settings,
    )
    per_agent: dict[str, dict[str, Any]] = {}
    for setting in agent_settings or []:
        name, key, value = parse_agent_setting(setting)
        per_agent.setdefault(name, {})[key] = value
    options = build_compare_options(
        env=env,
        out=Path(out),
        config_file=Path(config) if config else None,
        overrides=overrides,
        agents=[a.strip() for a in agents.split(",") if a.strip()] if agents else None,
        seeds=parse_seeds(seeds) if seeds else None,
        agent_options=per_agent,
    )
    try:
        with third_party_output_to(Path(out) / "compare.log"):
            summary = compare_and_report(options, console=err_console, report_only=report_only)
    except KeyboardInterrupt:
        err_console.print("[yellow]stopped; the same command resumes the comparison[/yellow]")
        sys.exit(130)
    if as_json:
        print(summary.model_dump_json(indent=2))
    else:
        from grpo_env.evaluation.compare_report import console_table

        console.print(console_table(summary.agents, f"compare: {summary.out}", console.width))
        console.print(
            f"[dim]report: {summary.out}/compare.md, plot: {summary.out}/reward_curves.png"
        )
    if summary.failed:
        sys.exit(1)


# ----- entry point --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> Any:
    args = sys.argv[1:] if argv is None else argv
    try:
        if "--help" in args or "-h" in args:
            from grpo_env.console.help_defaults import annotate_defaults

            command = typer.main.get_command(app)
            annotate_defaults(command)
            return command(args=args, standalone_mode=True, prog_name="grpo-env")
        return app(args=argv, standalone_mode=True)
    except InfraFailure as err:  # the verifier's infrastructure, not the user's input
        if os.environ.get("GRPO_ENV_DEBUG"):
            raise
        err_console.print(f"[red]error:[/red] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(INFRA_EXIT_CODE)
    except USER_ERRORS as err:
        if os.environ.get("GRPO_ENV_DEBUG"):
            raise
        # escape: messages name TOML tables ("[agent]"); soft_wrap: one line, however long
        err_console.print(
            f"[red]error:[/red] {escape(_one_line(err))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)


def _one_line(err: BaseException) -> str:
    if isinstance(err, ValidationError):
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
        return f"{err.title}: {where}: {first['msg']}{more}"
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err).splitlines()[0] if str(err) else type(err).__name__


if __name__ == "__main__":
    main()
