"""Hostile code in the Docker sandbox: each attack ends with the expected status, and the next
run in the same warm sandbox is unharmed. ``limits`` are small so attacks hit them quickly."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator

import pytest

from grpo_env.sandbox import (
    DockerSandbox,
    ExecutionRequest,
    ExecutionResult,
    Limits,
    TestCase,
    TestSuite,
)
from grpo_env.sandbox.docker_backend import INSTANCE_LABEL, connect
from grpo_env.sandbox.testing import docker_sandbox_or_skip

pytestmark = pytest.mark.docker

ADD = "def add(a, b):\n    return a + b\n"
ADD_TESTS = ["assert add(2, 3) == 5", "assert add(-4, 1) == -3"]


@pytest.fixture(scope="module")
def box() -> Iterator[DockerSandbox]:
    """One warm container, so that every run after an attack lands in the attacked box."""
    sandbox = docker_sandbox_or_skip(concurrency=1)
    yield sandbox
    sandbox.close()


def run(sandbox, code: str, tests: list[str] = ADD_TESTS, **limits) -> ExecutionResult:
    limits.setdefault("timeout_s", 5.0)
    cases = [TestCase(name=f"t{i}", code=t) for i, t in enumerate(tests)]
    request = ExecutionRequest(
        code=textwrap.dedent(code), tests=TestSuite(cases=cases), limits=Limits(**limits)
    )
    return sandbox.run(request)


def assert_next_run_healthy(sandbox) -> None:
    result = run(sandbox, ADD)
    assert result.status.value == "passed", result


FORK_BOMB = """
while True:
    try:
        os.fork()
    except OSError:
        pass
"""


@pytest.mark.parametrize("where", ["import", "call"])
def test_fork_bomb(box, where):
    if where == "import":
        code = "import os\n" + FORK_BOMB
    else:
        code = "import os\ndef add(a, b):\n" + textwrap.indent(FORK_BOMB, "    ")
    result = run(box, code, timeout_s=3.0)
    assert result.status.value == "timeout" and result.tests_passed == 0, result
    assert_next_run_healthy(box)


def test_memory_bomb(box):
    code = """
    def add(a, b):
        hog = bytearray(1 << 30)
        hog[::4096] = b"x" * len(hog[::4096])
        return a + b
    """
    result = run(box, code, memory_mb=128)
    assert result.status.value == "memory_exceeded" and result.tests_passed == 0, result
    assert_next_run_healthy(box)


def test_memory_bomb_at_import_in_many_processes(box):
    code = """
    import os
    for _ in range(8):
        if os.fork() == 0:
            break
    hog = []
    while True:
        hog.append(bytearray(8 << 20))
        hog[-1][::4096] = b"x" * len(hog[-1][::4096])
    """
    result = run(box, code, memory_mb=128, timeout_s=10.0)
    assert result.status.value in ("memory_exceeded", "error", "timeout"), result
    assert result.tests_passed == 0
    assert_next_run_healthy(box)


@pytest.mark.parametrize("where", ["import", "call"])
def test_sleep_forever(box, where):
    code = (
        "import time\ntime.sleep(10**6)\n"
        if where == "import"
        else "import time\ndef add(a, b):\n    time.sleep(10**6)\n"
    )
    result = run(box, code, timeout_s=1.5)
    assert result.status.value == "timeout" and result.tests_passed == 0, result
    assert_next_run_healthy(box)


def test_output_flood(box):
    code = """
    import sys
    def add(a, b):
        while True:
            sys.stdout.write("x" * 65536)
            sys.stderr.write("y" * 65536)
    """
    result = run(box, code, max_output_bytes=100_000)
    assert result.status.value == "output_exceeded" and result.tests_passed == 0, result
    assert len(result.stdout) + len(result.stderr) <= 100_000
    assert result.output_truncated
    assert_next_run_healthy(box)


def test_output_flood_from_a_background_process(box):
    code = """
    import os
    if os.fork() == 0:
        os.setsid()
        while True:
            os.write(1, b"z" * 65536)
    def add(a, b):
        return a + b
    """
    result = run(box, code, max_output_bytes=100_000)
    # Either it answered before the flood hit the cap, or the flood ended the run.
    assert result.status.value in ("passed", "output_exceeded"), result
    assert len(result.stdout) + len(result.stderr) <= 100_000
    assert_next_run_healthy(box)


def test_no_network_egress(box):
    code = """
    import socket
    def egress():
        reached = []
        for host, port in (("1.1.1.1", 53), ("8.8.8.8", 53), ("172.17.0.1", 2375),
                           ("172.17.0.1", 80), ("10.0.0.1", 80), ("deb.debian.org", 80)):
            try:
                socket.create_connection((host, port), timeout=1).close()
                reached.append(f"{host}:{port}")
            except OSError:
                pass
        try:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.sendto(b"x", ("1.1.1.1", 53))
            reached.append("udp")
        except OSError:
            pass
        return reached
    """
    result = run(box, code, ["assert egress() == []"], timeout_s=15.0)
    assert result.status.value == "passed", result  # passes only when nothing was reached


def test_host_environment_is_not_visible():
    os.environ["GRPO_ENV_TEST_CANARY"] = "host-secret-value"
    try:
        sandbox = docker_sandbox_or_skip(concurrency=1)  # containers created after the canary
        code = """
        import os
        def leaked():
            found = [k for k, v in os.environ.items() if "host-secret" in v or "CANARY" in k]
            for pid in os.listdir("/proc"):
                try:
                    if b"host-secret" in open(f"/proc/{pid}/environ", "rb").read():
                        found.append(pid)
                except OSError:
                    pass
            return found
        """
        with sandbox:
            result = run(sandbox, code, ["assert leaked() == []"])
        assert result.status.value == "passed", result
    finally:
        del os.environ["GRPO_ENV_TEST_CANARY"]


def test_killing_everything_in_reach(box):
    code = """
    import os, signal
    def add(a, b):
        for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP):
            for pid in (1, os.getppid(), -1):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        return a + b
    """
    result = run(box, code)
    assert result.status.value != "passed" and result.tests_passed == 0, result
    assert_next_run_healthy(box)


def test_no_way_into_the_trusted_processes(box):
    # Server, harness and zygote run as the candidate's user, so only their being
    # non-dumpable keeps their descriptors (the host channel, the zygote's socket) and memory
    # out of reach: /proc, ptrace and pidfd_getfd must all be refused.
    code = """
    import ctypes, os
    libc = ctypes.CDLL(None, use_errno=True)
    PTRACE_ATTACH, SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 16, 434, 438
    def reachable():
        opened = []
        for pid in [int(p) for p in os.listdir("/proc") if p.isdigit()]:
            if pid == os.getpid():
                continue
            for fd in range(0, 12):
                try:
                    open(f"/proc/{pid}/fd/{fd}", "rb").close()
                    opened.append(f"{pid}/fd/{fd}")
                except OSError:
                    pass
            for name in ("mem", "environ", "maps"):
                try:
                    open(f"/proc/{pid}/{name}", "rb").read(1)
                    opened.append(f"{pid}/{name}")
                except OSError:
                    pass
            if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
                opened.append(f"ptrace {pid}")
            pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
            if pidfd >= 0:
                for fd in range(0, 12):
                    if libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0) >= 0:
                        opened.append(f"pidfd_getfd {pid}/{fd}")
        return opened
    """
    result = run(box, code, ["assert reachable() == []"])
    assert result.status.value == "passed", result


def test_read_only_root_and_stdlib(box):
    code = """
    import json, os
    def writable():
        hits = []
        for path in ("/usr/lib/x", "/etc/x", "/x", "/var/x", "/root/x",
                     os.path.join(os.path.dirname(json.__file__), "__pycache__", "x"),
                     os.path.join(os.path.dirname(json.__file__), "x.py")):
            try:
                open(path, "w").close()
                hits.append(path)
            except OSError:
                pass
        return hits
    """
    result = run(box, code, ["assert writable() == []"])
    assert result.status.value == "passed", result


def test_filling_the_work_dir(box):
    code = """
    import os
    def add(a, b):
        i = 0
        try:
            while True:
                with open(f"/work/f{i}", "wb") as handle:
                    handle.write(b"x" * (1 << 20))
                i += 1
        except OSError:
            pass
        try:
            while True:
                open(f"/tmp/e{i}", "w").close()
                i += 1
        except OSError:
            return None
    """
    result = run(box, code, timeout_s=20.0, work_dir_mb=16)
    assert result.status.value == "failed", result
    assert_next_run_healthy(box)


def test_no_state_crosses_runs(box):
    leave = """
    import ctypes, os, subprocess, sys, time
    for folder in ("/work", "/tmp", "/dev/shm", "/dev/mqueue"):
        try:
            with open(os.path.join(folder, "left"), "w") as handle:
                handle.write("x")
        except OSError:
            pass
    os.makedirs("/work/__pycache__", exist_ok=True)
    open("/work/__pycache__/solution.cpython-311.pyc", "wb").write(b"junk")
    os.makedirs("/work/locked/deeper", exist_ok=True)
    os.chmod("/work/locked/deeper", 0)
    os.chmod("/work/locked", 0)
    libc = ctypes.CDLL(None)
    libc.shmget(0x1234, 4096, 0o1666)
    libc.msgget(0x1235, 0o1666)
    libc.semget(0x1236, 1, 0o1666)
    if os.fork() == 0:          # a daemon, in its own session
        os.setsid()
        if os.fork() == 0:
            while True:
                time.sleep(0.01)
        os._exit(0)
    subprocess.Popen(["sleep", "300"], start_new_session=True)
    sys.modules["json"] = "poisoned"
    def add(a, b):
        return a + b
    """
    first = run(box, leave)
    assert first.status.value == "passed", first
    look = """
    import json, os
    def leftovers():
        found = []
        for folder in ("/work", "/tmp", "/dev/shm", "/dev/mqueue"):
            found += [os.path.join(folder, n) for n in os.listdir(folder)
                      if n != "solution.py"]
        me = os.getpid()
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) in (1, me, os.getppid()):
                continue
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\\0")
            if b"-c" not in argv[:4]:      # not one of the sandbox's own interpreters
                found.append(argv[0].decode())
        for kind in ("shm", "msg", "sem"):
            rows = open(f"/proc/sysvipc/{kind}").read().splitlines()[1:]
            found += [f"sysv {kind}" for row in rows if row.strip()]
        if not isinstance(json.loads("[1]"), list):
            found.append("json module")
        return found
    """
    second = run(box, look, ["assert leftovers() == []"])
    assert second.status.value == "passed", second


def test_tampering_with_the_server_does_not_reach_later_runs(box):
    # Same user as the server: prlimit/setpriority/sched_* on PID 1 are allowed, and every
    # later harness and executor would inherit them unless the server proves them intact.
    tamper = """
    import os, resource
    def add(a, b):
        for pid in (1, os.getppid()):
            for action in (
                lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (16, 16)),
                lambda: resource.prlimit(pid, resource.RLIMIT_CPU, (1, 1)),
                lambda: resource.prlimit(pid, resource.RLIMIT_AS, (1 << 24, 1 << 24)),
                lambda: os.setpriority(os.PRIO_PROCESS, pid, 19),
                lambda: os.sched_setaffinity(pid, {min(os.sched_getaffinity(0))}),
                lambda: os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0)),
            ):
                try:
                    action()
                except OSError:
                    pass
        return a + b
    """
    run(box, tamper)
    look = """
    import os, resource
    def attributes():
        return [
            resource.getrlimit(resource.RLIMIT_NOFILE),
            resource.getrlimit(resource.RLIMIT_AS)[1] == resource.RLIM_INFINITY,
            resource.getrlimit(resource.RLIMIT_CPU)[1] > 2,
            os.getpriority(os.PRIO_PROCESS, 0),
            os.sched_getscheduler(0) == os.SCHED_OTHER,
            len(os.sched_getaffinity(0)) == os.cpu_count(),
        ]
    """
    result = run(box, look, ["assert attributes() == [(256, 256), True, True, 0, True, True]"])
    assert result.status.value == "passed", result
    assert_next_run_healthy(box)


def test_containers_are_removed_on_close():
    sandbox = docker_sandbox_or_skip(concurrency=2)
    client = connect()
    owner = {"label": f"{INSTANCE_LABEL}={sandbox.instance}"}
    with sandbox:
        sandbox.warm(2)
        assert len(client.api.containers(filters=owner)) >= 2
    assert client.api.containers(all=True, filters=owner) == []
