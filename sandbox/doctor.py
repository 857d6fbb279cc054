"""``grpo-env sandbox doctor``: is the engine there, is the image there, which limits does this
kernel really enforce, and does a run give the right verdicts?

Every limit is tested for real from inside a sandbox (a probe program tries to break it),
not read from configuration: a kernel without swap accounting, say, shows up as a failed
memory check instead of a silent hole.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from .docker_backend import DockerSandbox, connect, default_image
from .doctor_probe import PROBE
from .engines import engine_hosts, engine_name, image_missing
from .models import ExecutionRequest, ExecutionResult, ExecutionStatus, Limits, TestCase, TestSuite
from .protocol import SandboxUnavailable

# Small limits, so each can be hit quickly.
PROBE_LIMITS = Limits(
    timeout_s=30,
    memory_mb=128,
    cpus=0.5,
    pids=32,
    work_dir_mb=8,
    max_file_bytes=1 << 20,
    max_open_files=64,
    max_output_bytes=1 << 20,
)
CANARY = "GRPO_ENV_DOCTOR_CANARY"


class Check(BaseModel):
    name: str
    ok: bool
    expected: str
    observed: str


class EngineReport(BaseModel):
    """One engine: does it answer, has it the image, what do its sandboxes enforce."""

    host: str
    reachable: bool = False
    engine: dict[str, Any] = Field(default_factory=dict)
    image: dict[str, Any] = Field(default_factory=dict)
    checks: list[Check] = Field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.checks) and all(c.ok for c in self.checks)


class DoctorReport(BaseModel):
    """Every engine the sandbox would use ($GRPO_ENV_DOCKER_HOSTS, else the environment's)."""

    engines: list[EngineReport] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.engines) and all(e.ok for e in self.engines)

    @property
    def checks(self) -> list[Check]:
        return [c for e in self.engines for c in e.checks]

    @property
    def error(self) -> str:
        return "; ".join(f"{e.host}: {e.error}" for e in self.engines if e.error)


def run_doctor(
    image: str | None = None,
    progress: Callable[[str], None] | None = None,
    docker_hosts: str | Sequence[str] | None = None,
) -> DoctorReport:
    """Check each engine, its image, limits and verdicts (see the module docstring)."""
    image = image or default_image()
    hosts = engine_hosts(docker_hosts)
    return DoctorReport(engines=[_check_engine(h, image, progress, len(hosts) > 1) for h in hosts])


def _check_engine(
    host: str | None, image: str, progress: Callable[[str], None] | None, named: bool
) -> EngineReport:
    report = EngineReport(host=engine_name(host))

    def say(message: str) -> None:
        if progress is not None:
            progress(f"{report.host}: {message}" if named else message)

    say("engine...")
    try:
        client = connect(host=host)
        report.reachable = True
        report.engine = _engine_facts(client)
    except SandboxUnavailable as err:
        report.error = str(err)
        return report
    say("image...")
    try:
        info = client.api.inspect_image(image)
    except Exception:
        report.error = str(image_missing(image, host))
        report.image = {"name": image, "present": False}
        return report
    report.image = {
        "name": image,
        "present": True,
        "id": str(info.get("Id", ""))[:19],
        "size_mb": round(info.get("Size", 0) / 1e6, 1),
        "created": info.get("Created", ""),
    }
    os.environ[CANARY] = "host-secret"  # must not be visible inside
    try:
        with DockerSandbox(image=image, concurrency=1, client=client, docker_hosts=host) as sandbox:
            say("limits (probing from inside a sandbox)...")
            report.checks += _limit_checks(sandbox, report)
            say("verdicts (smoke test)...")
            report.checks += _verdict_checks(sandbox)
    except SandboxUnavailable as err:
        report.error = str(err)
    finally:
        os.environ.pop(CANARY, None)
    return report


def _engine_facts(client: Any) -> dict[str, Any]:
    version = client.version()
    info = client.info()
    return {
        "version": version.get("Version"),
        "api_version": version.get("ApiVersion"),
        "os": info.get("OperatingSystem"),
        "kernel": info.get("KernelVersion"),
        "cgroup": f"v{info.get('CgroupVersion', '1')} ({info.get('CgroupDriver')})",
        "security": info.get("SecurityOptions", []),
        "warnings": info.get("Warnings") or [],
    }


def _command(sandbox: DockerSandbox, code: str, **limits: Any) -> ExecutionResult:
    request = ExecutionRequest(
        command=["python3", "-c", code],
        limits=PROBE_LIMITS.model_copy(update=limits),
    )
    return sandbox.run(request)


def _limit_checks(sandbox: DockerSandbox, report: EngineReport) -> list[Check]:
    started = time.monotonic()
    probe = _command(sandbox, PROBE)
    if probe.is_sandbox_error:
        raise SandboxUnavailable(probe.error)
    try:
        seen = json.loads(probe.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [
            Check(
                name="probe",
                ok=False,
                expected="a JSON report",
                observed=f"{probe.status}: {probe.stderr[-300:] or probe.error}",
            )
        ]
    report.image["python"] = seen.get("python", "")
    limits = PROBE_LIMITS
    checks = [
        Check(
            name="non-root user",
            ok=seen["uid"] != 0,
            expected="uid != 0",
            observed=f"uid {seen['uid']}",
        ),
        Check(
            name="capabilities dropped",
            ok=seen["cap_eff"] == "0000000000000000",
            expected="CapEff 0",
            observed=f"CapEff {seen['cap_eff']}",
        ),
        Check(
            name="no-new-privileges",
            ok=seen["no_new_privs"] == "1",
            expected="NoNewPrivs 1",
            observed=f"NoNewPrivs {seen['no_new_privs']}",
        ),
        Check(
            name="seccomp filter",
            ok=seen["seccomp"] == "2",
            expected="Seccomp 2 (filter)",
            observed=f"Seccomp {seen['seccomp']}",
        ),
        Check(
            name="no network",
            ok=seen["network"] != "connected to 1.1.1.1:53" and seen["interfaces"] == ["lo"],
            expected="connect fails, only lo",
            observed=f"{seen['network']}; interfaces {seen['interfaces']}",
        ),
        Check(
            name="read-only root",
            ok=not seen["root_writes"],
            expected="no writes outside tmpfs",
            observed=f"wrote {seen['root_writes']}" if seen["root_writes"] else "all refused",
        ),
        Check(
            name="work dir size",
            ok=seen["work_written_mb"] <= limits.work_dir_mb + 0.5,
            expected=f"<= {limits.work_dir_mb} MiB",
            observed=f"{seen['work_written_mb']} MiB, then {seen.get('work_full_error')}",
        ),
        Check(
            name="file size ulimit",
            ok=seen["fsize_written"] <= limits.max_file_bytes,
            expected=f"<= {limits.max_file_bytes} bytes",
            observed=f"{seen['fsize_written']} bytes, then {seen.get('fsize_error')}",
        ),
        Check(
            name="open files ulimit",
            ok=seen["open_files"] <= limits.max_open_files,
            expected=f"<= {limits.max_open_files}",
            observed=f"{seen['open_files']}, then {seen.get('nofile_error')}",
        ),
        Check(
            name="pids limit",
            ok=seen["forked"] < limits.pids,
            expected=f"< {limits.pids}",
            observed=f"forked {seen['forked']}, then {seen.get('fork_error')}",
        ),
        Check(
            name="CPU quota",
            ok=seen["cpu_cores_used"] <= limits.cpus * 1.3,
            expected=f"<= {limits.cpus} cores (2 busy processes)",
            observed=f"{seen['cpu_cores_used']} cores",
        ),
        Check(
            name="no host environment",
            ok=CANARY not in seen["env"],
            expected="host variables absent",
            observed=f"variables {seen['env']}",
        ),
    ]
    memory = _command(sandbox, "b = bytearray(512 << 20)\nb[::4096] = b'x' * len(b[::4096])")
    checks.append(
        Check(
            name="memory limit (memory+swap)",
            ok=memory.status is ExecutionStatus.MEMORY_EXCEEDED,
            expected=f"512 MiB in a {limits.memory_mb} MiB box: memory_exceeded",
            observed=f"{memory.status.value} (exit {memory.exit_code})",
        )
    )
    clock = _command(sandbox, "import time\ntime.sleep(60)", timeout_s=1.0)
    checks.append(
        Check(
            name="wall-clock kill",
            ok=clock.status is ExecutionStatus.TIMEOUT,
            expected="sleep 60 with a 1 s limit: timeout",
            observed=f"{clock.status.value} after {clock.duration_s:.1f} s",
        )
    )
    report.image["probe_s"] = round(time.monotonic() - started, 1)
    return checks


def _verdict_checks(sandbox: DockerSandbox) -> list[Check]:
    suite = TestSuite(
        cases=[
            TestCase(name="small", code="assert add(2, 3) == 5"),
            TestCase(name="negative", code="assert add(-4, 1) == -3"),
        ]
    )
    cases = {
        "correct solution passes": ("def add(a, b):\n    return a + b\n", "passed"),
        "wrong solution fails": ("def add(a, b):\n    return a - b\n", "failed"),
        "sys.exit(0) at import fails": ("import sys\nsys.exit(0)\n", "error"),
        "os._exit(0) in the call fails": ("import os\ndef add(a, b):\n    os._exit(0)\n", "failed"),
        "always-equal result fails": (
            "class Eq:\n    def __eq__(self, other):\n        return True\n"
            "def add(a, b):\n    return Eq()\n",
            "failed",
        ),
    }
    checks = []
    for name, (code, expected) in cases.items():
        result = sandbox.run(ExecutionRequest(code=code, tests=suite))
        checks.append(
            Check(
                name=name,
                ok=result.status.value == expected,
                expected=f"{expected}",
                observed=f"{result.status.value}, "
                f"{result.tests_passed}/{result.tests_total} passed",
            )
        )
    # State must not cross runs: files, processes, SysV IPC left by one run, looked for next.
    leave = (
        "import os, subprocess\n"
        "open('/work/left', 'w').write('x'); open('/tmp/left', 'w').write('x')\n"
        "subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
    )
    look = (
        "import os\n"
        "procs = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "argv0 = [open(f'/proc/{p}/cmdline', 'rb').read().split(bytes(1))[0] for p in procs]\n"
        "print(any(a.endswith(b'sleep') for a in argv0), os.path.exists('/work/left'),"
        " os.path.exists('/tmp/left'))\n"
    )
    _command(sandbox, leave)
    after = _command(sandbox, look)
    checks.append(
        Check(
            name="no state between runs",
            ok=after.stdout.strip() == "False False False",
            expected="no process, no file left (False False False)",
            observed=after.stdout.strip() or after.status.value,
        )
    )
    return checks
