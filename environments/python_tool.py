"""The ``python`` tool: runs model-written programs in the sandbox, never in this process.

Each call runs the program afresh (no state carries from one call to the next) in the
sandbox's program mode: Docker by default, with every isolation rule of the sandbox (no
network, read-only root, memory/pids/CPU limits, a wall-clock kill from outside); the
unisolated local backend only when asked for by name (``sandbox="local-unsafe"``). The tool
message holds the program's stdout and stderr, cut to ``max_output_chars``, and says when it
timed out, ran out of memory or exited with an error. A sandbox that cannot run anything
raises ``ToolInfraError``: the episode is scored ``infra_error`` (masked), never 0.
"""

from __future__ import annotations

from grpo_env.sandbox import ExecutionRequest, ExecutionResult, ExecutionStatus, Limits, Sandbox
from grpo_env.sandbox.commands import make_sandbox
from grpo_env.tools import Tool, ToolInfraError, cap_output

PROGRAM_FILE = "main.py"


class PythonSandboxTool:
    """Owns a sandbox (made on first use) and offers ``python`` as a concurrent ``Tool``.

    Args:
        sandbox: ``docker``, ``local-unsafe`` (no isolation!) or a ``Sandbox`` instance.
        concurrency: programs running at once (the calls of one turn run in parallel).
        image: Docker image (default: $GRPO_ENV_SANDBOX_IMAGE or grpo-env-sandbox:1).
        timeout_s: wall clock of one program.
        memory_mb: its memory (no swap).
        max_output_chars: the tool message is cut to about this many characters.
    """

    def __init__(
        self,
        sandbox: str | Sandbox = "docker",
        *,
        concurrency: int = 2,
        image: str | None = None,
        timeout_s: float = 5.0,
        memory_mb: int = 256,
        max_output_chars: int = 2000,
    ):
        self._spec = sandbox
        self._sandbox: Sandbox | None = None if isinstance(sandbox, str) else sandbox
        self._concurrency = concurrency
        self._image = image
        # The sandbox stops a program at 64 KiB of output; the message keeps less of it.
        self.limits = Limits(timeout_s=timeout_s, memory_mb=memory_mb, max_output_bytes=1 << 16)
        self.max_output_chars = max_output_chars

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            assert isinstance(self._spec, str)
            self._sandbox = make_sandbox(
                self._spec, concurrency=self._concurrency, image=self._image
            )
        return self._sandbox

    def tool(self) -> Tool:
        return Tool(self.python, name="python", concurrent=True)

    def python(self, code: str) -> str:
        """Run a Python 3 program in an isolated sandbox and return what it printed.

        Each call starts from scratch: define everything you use, and print() every value you
        want to see. There is no network and no input.

        Args:
            code: the complete program to run
        """
        request = ExecutionRequest(
            command=["python3", PROGRAM_FILE], files={PROGRAM_FILE: code}, limits=self.limits
        )
        return self.describe(self.sandbox.run(request))

    def describe(self, result: ExecutionResult) -> str:
        """The tool message for one run (``ToolInfraError`` when the sandbox failed)."""
        if result.is_sandbox_error:
            raise ToolInfraError(f"sandbox error: {result.error}")
        parts = []
        if result.stdout:
            parts.append(f"stdout:\n{result.stdout.rstrip()}")
        if result.stderr:
            parts.append(f"stderr:\n{result.stderr.rstrip()}")
        status = result.status
        if status is ExecutionStatus.TIMEOUT:
            parts.append(f"(stopped: the program ran past the {self.limits.timeout_s:g} s limit)")
        elif status is ExecutionStatus.MEMORY_EXCEEDED:
            parts.append(f"(stopped: the program used more than {self.limits.memory_mb} MB)")
        elif status is ExecutionStatus.OUTPUT_EXCEEDED:
            parts.append("(stopped: the program printed too much)")
        elif result.exit_code not in (0, None):
            parts.append(f"(exit code {result.exit_code})")
        elif status is ExecutionStatus.ERROR:
            parts.append(f"(the program could not run: {result.error[:300]})")
        if not parts:
            parts.append("(no output: print() the values you want to see)")
        return cap_output("\n".join(parts), self.max_output_chars)

    def check(self) -> None:
        self.sandbox.check()

    def close(self) -> None:
        # Only a sandbox we made is ours to close.
        if isinstance(self._spec, str) and self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
