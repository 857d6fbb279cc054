"""``grpo-env sandbox run``: the command the held-out attack suite drives."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from grpo_env.cli import main

SOLUTION = "def add(a, b):\n    return a + b\n"
TESTS = (
    "assert add(1, 2) == 3\nx = add(2, 2)\nassert x == 4\n"
    "for i in range(3):\n    assert add(i, 0) == i\n"
)


def grpo_env(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from grpo_env.cli import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def exit_code_of(files, sandbox: str) -> int:
    """Run `grpo-env sandbox run` in-process (user errors exit before any sandbox starts)."""
    argv = ["sandbox", "run", str(files / "solution.py"), "--tests", str(files / "tests.py")]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--sandbox", sandbox])
    return exit_info.value.code


@pytest.fixture
def files(tmp_path):
    (tmp_path / "solution.py").write_text(SOLUTION)
    (tmp_path / "tests.py").write_text(TESTS)
    return tmp_path


@pytest.mark.docker
def test_run_json_reports_each_assert(files, docker_sandbox):
    proc = grpo_env(
        "sandbox", "run", str(files / "solution.py"), "--tests", str(files / "tests.py"), "--json"
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {"status", "tests_passed", "tests_total", "stdout", "stderr", "duration_s"} <= set(
        result
    )
    assert (result["status"], result["tests_passed"], result["tests_total"]) == ("passed", 3, 3)


@pytest.mark.docker
def test_run_exit_code_is_one_when_not_all_pass(files, docker_sandbox):
    (files / "solution.py").write_text("import sys\nsys.exit(0)\n")
    proc = grpo_env(
        "sandbox", "run", str(files / "solution.py"), "--tests", str(files / "tests.py"), "--json"
    )
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["status"] == "error"


def test_run_with_the_unsafe_local_backend_warns(files):
    proc = grpo_env(
        "sandbox",
        "run",
        str(files / "solution.py"),
        "--tests",
        str(files / "tests.py"),
        "--sandbox",
        "local-unsafe",
    )
    assert proc.returncode == 0, proc.stderr
    assert "WITHOUT isolation" in proc.stderr
    assert "3/3 tests passed" in proc.stdout


def test_sandbox_error_exit_code(files, monkeypatch, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from grpo_env.cli import main; main()",
            "sandbox",
            "run",
            str(files / "solution.py"),
            "--tests",
            str(files / "tests.py"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"},
    )
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["status"] == "sandbox_error"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"tests.py": "x = 1\n"}, "no assert statements"),
        ({"tests.py": "assert (\n"}, "tests.py:1: invalid syntax"),
        ({"solution.py": None}, "solution file not found"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(files, capsys, setup, message):
    for name, content in setup.items():
        if content is None:
            (files / name).unlink()
        else:
            (files / name).write_text(content)
    assert exit_code_of(files, "docker") == 2
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines for the terminal
    assert err.startswith("error: ") and message in err and err.count("error:") == 1


def test_unknown_sandbox_kind_is_a_user_error(files, capsys):
    assert exit_code_of(files, "chroot") == 2
    assert "unknown sandbox 'chroot'" in capsys.readouterr().err
