"""What goes into a sandbox and what comes out: the boundary, so pydantic models.

A request runs in one of two modes:

- **tests** (the verdict mode): ``code`` is the candidate's program (loaded as the module
  ``solution``), ``tests`` a ``TestSuite`` of trusted test code. The tests run in a trusted
  process that never executes the candidate's code; every name the solution defines reaches
  them through a proxy that crosses the process boundary as plain data. A case passes when
  its trusted code runs to the end with no incident; anything else, including a case that
  never ran, counts as failed.
- **stdio** (a verdict mode too): ``code`` is a program; ``io`` an ``IOSuite`` of cases. Each
  case runs the program afresh with the case's ``input`` on stdin; the trusted harness
  compares its stdout with ``output``. A case that crashes, times out or floods output fails
  alone; the other cases still count.
- **command**: run ``command`` (an argv) in the work dir and report how it ended (exit code,
  output). There is no verdict in this mode; ``passed`` only means "exited with code 0".

``files`` are written into the fresh work dir first in both modes.
"""

from __future__ import annotations

import posixpath
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_PAYLOAD_BYTES = 16 * 1024 * 1024


class ExecutionStatus(StrEnum):
    """How a run ended.

    ``passed``: every test passed. ``failed``: it ran and some test failed. ``timeout``,
    ``memory_exceeded``, ``output_exceeded``: a limit ended (part of) the run. ``error``: the
    solution did not compile or load, or broke the harness. ``sandbox_error``: the sandbox
    itself failed (engine down, image missing, the box or the engine lost during the run: any
    run the in-box server could not report on): says nothing about the solution.
    """

    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    MEMORY_EXCEEDED = "memory_exceeded"
    OUTPUT_EXCEEDED = "output_exceeded"
    ERROR = "error"
    SANDBOX_ERROR = "sandbox_error"


class Limits(BaseModel):
    """Resource limits of one run. The container-level ones (memory, cpus, pids, work dir,
    file size, open files) pick which warm container runs it; the rest apply per run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout_s: float = Field(10.0, gt=0, le=3600, description="Wall clock for the whole run.")
    test_timeout_s: float | None = Field(
        None, gt=0, description="Wall clock per test case (default: what is left of the run's)."
    )
    memory_mb: int = Field(512, ge=32, le=1 << 16, description="Memory; swap is not allowed.")
    cpus: float = Field(1.0, gt=0, le=64, description="CPU quota, in cores.")
    pids: int = Field(64, ge=8, le=4096, description="Processes and threads, all included.")
    work_dir_mb: int = Field(64, ge=1, le=4096, description="Size of /work and of /tmp.")
    max_output_bytes: int = Field(
        1 << 20, ge=1024, description="stdout+stderr the solution may write; past it the run ends."
    )
    max_file_bytes: int = Field(16 << 20, ge=1024, description="Largest file it may write.")
    max_open_files: int = Field(256, ge=32, le=1 << 16, description="Open file descriptors.")

    def container_key(self) -> tuple[int, float, int, int, int, int]:
        return (
            self.memory_mb,
            self.cpus,
            self.pids,
            self.work_dir_mb,
            self.max_file_bytes,
            self.max_open_files,
        )


class TestCase(BaseModel):
    """One counted test: trusted Python that passes when it runs to the end without raising."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    __test__ = False  # not a pytest class

    name: str = Field(min_length=1, max_length=500)
    code: str = Field(min_length=1)


class TestSuite(BaseModel):
    """Trusted test code, run on the trusted side (never in the solution's process).

    Names the solution defines are bound first, as if ``from solution import *`` came first
    (never shadowing a builtin). Then ``shared_setup`` and ``setup`` run, in that order; then
    every name in ``entry_points`` and ``aliases`` is (re)bound to the solution's definition.

    Args:
        cases: the counted tests, run in order in one namespace (a case may use names an
            earlier case defined).
        setup: helpers for the tests only (imports, constants, a ``check`` function).
        shared_setup: task context run before the solution's code in its process AND on the
            trusted side (HumanEval: the prompt, with helpers such as ``poly``). On the
            trusted side this copy wins over the solution's definitions of the same names.
        entry_points: names that always mean the solution's definition on the trusted side.
        aliases: extra names for solution definitions: ``{"candidate": "has_close_elements"}``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    __test__ = False

    cases: list[TestCase] = Field(min_length=1)
    setup: str = ""
    shared_setup: str = ""
    entry_points: list[str] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)

    @field_validator("entry_points")
    @classmethod
    def _identifiers(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if not n.isidentifier()]
        if bad:
            raise ValueError(f"entry points must be Python identifiers, got {bad}")
        return names

    @field_validator("aliases")
    @classmethod
    def _alias_identifiers(cls, aliases: dict[str, str]) -> dict[str, str]:
        bad = [
            f"{k}->{v}" for k, v in aliases.items() if not (k.isidentifier() and v.isidentifier())
        ]
        if bad:
            raise ValueError(f"aliases must map identifiers to identifiers, got {bad}")
        return aliases


Compare = Literal["exact", "tokens", "float"]


class IOCase(BaseModel):
    """One stdin/stdout case: the program gets ``input`` on stdin and must print ``output``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=500)
    input: str = ""
    output: str


class IOSuite(BaseModel):
    """Stdin/stdout cases for a program, judged on the trusted side.

    ``compare``: ``exact`` (line by line, trailing whitespace and trailing blank lines
    ignored), ``tokens`` (whitespace-separated tokens equal) or ``float`` (tokens; numbers
    equal within ``tolerance``, absolute or relative). The per-case time limit is the request's
    ``limits.test_timeout_s`` (default: what is left of the run's)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["stdio"] = "stdio"
    cases: list[IOCase] = Field(min_length=1)
    compare: Compare = "exact"
    tolerance: float = Field(1e-6, ge=0, le=1)


class ExecutionRequest(BaseModel):
    """One run: files, the entry (solution code + tests, or a command) and limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field("", description="The candidate's program, loaded as module `solution`.")
    tests: TestSuite | None = None
    io: IOSuite | None = Field(None, description="Stdin/stdout mode: cases for the program.")
    command: list[str] | None = Field(None, description="Program mode: argv run in /work.")
    files: dict[str, str] = Field(default_factory=dict, description="Relative path -> text.")
    limits: Limits = Field(default_factory=Limits)

    @field_validator("command")
    @classmethod
    def _command_not_empty(cls, command: list[str] | None) -> list[str] | None:
        if command is not None and (not command or not command[0]):
            raise ValueError("command must be a non-empty argv list")
        return command

    @field_validator("files")
    @classmethod
    def _relative_paths(cls, files: dict[str, str]) -> dict[str, str]:
        for path in files:
            normal = posixpath.normpath(path) if path else ""
            if not path or path.startswith("/") or normal.startswith("..") or "\x00" in path:
                raise ValueError(f"file path {path!r} must be relative and stay in the work dir")
        return files

    @model_validator(mode="after")
    def _one_mode(self) -> ExecutionRequest:
        modes = [m for m in (self.tests, self.io, self.command) if m is not None]
        if len(modes) != 1:
            raise ValueError(
                "give exactly one of tests (unit-test mode), io (stdin/stdout) or command"
            )
        if self.command is None and "solution.py" in self.files:
            raise ValueError("'solution.py' is reserved for the code in unit-test and io modes")
        size = len(self.code.encode("utf-8")) + sum(
            len(k) + len(v.encode("utf-8")) for k, v in self.files.items()
        )
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"code and files total {size} bytes, over {MAX_PAYLOAD_BYTES}")
        return self

    @property
    def tests_total(self) -> int:
        return len(self.case_names)

    @property
    def case_names(self) -> list[str]:
        """The counted cases, in order: the host's own list, whatever the box reports."""
        if self.tests is not None:
            return [case.name for case in self.tests.cases]
        if self.io is not None:
            return [case.name for case in self.io.cases]
        return []


class TestOutcome(BaseModel):
    """The verdict on one test case. ``kind``: passed, failed, error (the test or the solution
    could not run), timeout, memory, output, died, exit, protocol, signal, file_size,
    not_run."""

    model_config = ConfigDict(extra="forbid")
    __test__ = False

    name: str
    passed: bool
    kind: str
    detail: str = ""
    duration_s: float = 0.0


class ExecutionResult(BaseModel):
    """How a run ended. ``tests_passed`` counts only cases the trusted harness saw pass."""

    model_config = ConfigDict(extra="forbid")

    status: ExecutionStatus
    tests_passed: int = 0
    tests_total: int = 0
    tests: list[TestOutcome] = Field(default_factory=list)
    compiled: bool | None = None
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    output_truncated: bool = False
    duration_s: float = 0.0
    error: str = ""
    backend: str = ""

    @property
    def pass_fraction(self) -> float:
        return self.tests_passed / self.tests_total if self.tests_total else 0.0

    @property
    def is_sandbox_error(self) -> bool:
        return self.status is ExecutionStatus.SANDBOX_ERROR
