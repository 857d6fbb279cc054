"""The grpo-env command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys


def grpo_env_cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grpo_env.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_help_teaches_the_commands():
    result = grpo_env_cli("--help")
    assert result.returncode == 0
    assert "envs" in result.stdout and "--import" in result.stdout
    assert grpo_env_cli().returncode in (0, 2)  # no args: help, not a crash


def test_envs_list_json_has_builtins():
    result = grpo_env_cli("envs", "list", "--json")
    rows = json.loads(result.stdout)
    assert any(r["id"] == "format-v0" and r["source"] == "built-in" for r in rows)


def test_envs_show_prints_spec_components_and_sample():
    result = grpo_env_cli("envs", "show", "format", "--seed", "2")
    assert result.returncode == 0, result.stderr
    for needed in ["format-v0", "components: format", "sample task", "gold completion"]:
        assert needed in result.stdout


def test_envs_check_passes_on_format():
    result = grpo_env_cli("envs", "check", "format-v0", "--json")
    assert result.returncode == 0, result.stderr
    checks = json.loads(result.stdout)["checks"]
    assert [c["passed"] for c in checks] == [True, True, True, True, None]  # no reference


def test_unknown_env_is_one_clear_line_and_exit_2():
    result = grpo_env_cli("envs", "show", "fromat")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: unknown environment 'fromat'")
    assert "Did you mean" in result.stderr


def test_missing_import_module_is_a_clear_error(tmp_path):
    result = grpo_env_cli("--import", "no_such_module_here", "envs", "list", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot import module 'no_such_module_here'" in result.stderr


def test_bad_option_is_a_usage_error_without_traceback():
    result = grpo_env_cli("envs", "check", "format", "--seed", "abc")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "seed" in result.stderr


def test_failing_env_check_exits_1(tmp_path):
    (tmp_path / "bad_envs.py").write_text(
        "import grpo_env\n"
        "from grpo_env import Task, VerifiableEnv\n"
        "class Generous(VerifiableEnv):\n"
        "    def verify(self, task, completion):\n"
        "        from grpo_env import VerifyResult\n"
        "        return VerifyResult(score=1.0)  # rewards even an empty answer\n"
        "def make(**kw):\n"
        "    return Generous([Task(id='a', prompt='q')], **kw)\n"
        "grpo_env.register('generous-v0', make)\n"
    )
    result = grpo_env_cli("-I", "bad_envs", "envs", "check", "generous", "--json", cwd=tmp_path)
    assert result.returncode == 1
    checks = {c["name"]: c["passed"] for c in json.loads(result.stdout)["checks"]}
    assert checks["empty completion scores 0"] is False
    assert checks["gold completion scores full marks"] is None


def test_help_shows_every_options_default():
    import re

    for command in ("train", "compare", "eval"):
        result = subprocess.run(
            [sys.executable, "-m", "grpo_env.cli", command, "--help"],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "COLUMNS": "200"},
        )
        assert result.returncode == 0, result.stderr
        blocks: list[str] = []  # one per option: its first line and its continuation lines
        for line in result.stdout.splitlines():
            if re.match(r"│ (\*\s+)?--", line):
                blocks.append(line)
            elif blocks and line.startswith("│ "):
                blocks[-1] += line
        blocks = [b for b in blocks if "--help" not in b.split()[1:3]]
        missing = [b[:40] for b in blocks if "[default:" not in b and "[required]" not in b]
        assert blocks and not missing, (command, missing)
