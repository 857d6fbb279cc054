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
from grpo_env.registry import UnknownIdError, import_user_module
from grpo_env.tasks import TaskFileError

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
    scores full marks, an empty answer scores nothing. Exits 1 if any check fails."""
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
    else:
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


@sandbox_app.command("run")
def sandbox_run(
    solution: Annotated[Path, typer.Argument(help="Python file with the code to test.")],
    tests: Annotated[
        Path,
        typer.Option(
            "--tests",
            help="Python file of module-level asserts using the solution's names (as if "
            "`from solution import *` came first); each top-level assert is one test.",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    sandbox: Annotated[
        str, typer.Option(help="docker (isolated) or local-unsafe (NO isolation, opt-in).")
    ] = "docker",
    timeout: Annotated[float, typer.Option(help="Wall-clock limit of the run, seconds.")] = 10.0,
    memory_mb: Annotated[int, typer.Option(help="Memory limit (no swap), MiB.")] = 512,
    image: Annotated[
        str | None, typer.Option(help="Sandbox image (default: $GRPO_ENV_SANDBOX_IMAGE).")
    ] = None,
) -> None:
    """Run SOLUTION.py against TESTS.py in the sandbox and report each test.

    The tests run in a trusted process that never executes the solution's code, so exiting
    early, faking equality or patching helpers cannot pass them. Exit code: 0 all passed,
    1 not all passed, 3 the sandbox itself failed (engine down, image missing)."""
    from grpo_env.sandbox import Limits
    from grpo_env.sandbox.commands import run_files

    limits = Limits(timeout_s=timeout, memory_mb=memory_mb)
    result = run_files(solution, tests, sandbox=sandbox, image=image, limits=limits)
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        _print_execution(result)
    if result.is_sandbox_error:
        raise typer.Exit(3)
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
        if text:
            console.print(f"[dim]{name}:[/dim]\n{escape(text.rstrip())}")


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
) -> None:
    """Check the Docker engine, the image, which limits the kernel really enforces (each is
    tried from inside a sandbox) and the verdicts of a smoke test. Exits 1 on any failure."""
    from grpo_env.sandbox.doctor import run_doctor

    report = run_doctor(image, progress=None if as_json else _progress)
    if as_json:
        print(json.dumps({**report.model_dump(), "ok": report.ok}, indent=2))
    else:
        for title, facts in (("engine", report.engine), ("image", report.image)):
            if facts:
                console.print(
                    f"[bold]{title}[/bold]: " + ", ".join(f"{k} {v}" for k, v in facts.items())
                )
        if report.checks:
            _print_outcomes(
                "sandbox",
                [
                    CheckOutcome(
                        name=c.name, passed=c.ok, detail=f"{c.observed} (want {c.expected})"
                    )
                    for c in report.checks
                ],
                as_json=False,
            )
        if report.error:
            err_console.print(f"[red]error:[/red] {escape(report.error)}", highlight=False)
        console.print("[green]sandbox OK[/green]" if report.ok else "[red]sandbox NOT OK[/red]")
    if not report.ok:
        raise typer.Exit(1)


def _progress(message: str) -> None:
    err_console.print(f"[dim]{escape(message)}[/dim]")


# ----- entry point --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> Any:
    try:
        return app(args=argv, standalone_mode=True)
    except USER_ERRORS as err:
        if os.environ.get("GRPO_ENV_DEBUG"):
            raise
        err_console.print(f"[red]error:[/red] {_one_line(err)}", highlight=False)
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
