"""Installed, everything lives under the one namespace grpo_env."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = {
    "grpo_env": "grpo_env",
    "agents": "grpo_env.agents",
    "environments": "grpo_env.environments",
    "sandbox": "grpo_env.sandbox",
}


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = set()
    for folder, installed in ROOMS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((installed, *relative)))
    assert found == listed, (
        f"add to pyproject packages: {sorted(found - listed)}; stale: {sorted(listed - found)}"
    )


def test_root_cli_is_served_as_grpo_env_cli():
    link = ROOT / "grpo_env" / "cli.py"
    assert link.is_symlink() and link.resolve() == (ROOT / "cli.py").resolve()


@pytest.mark.slow
def test_wheel_puts_nothing_generic_at_top_level(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("grpo_env-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"grpo_env"}
    for needed in [
        "grpo_env/cli.py",
        "grpo_env/agents/__init__.py",
        "grpo_env/environments/__init__.py",
        "grpo_env/sandbox/__init__.py",
        "grpo_env/environments/data/format_prompts.jsonl",
    ]:
        assert needed in names, needed
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "grpo-env = grpo_env.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_editable_install_exposes_no_generic_top_level_modules():
    code = (
        "import importlib.util as u; "
        "print([m for m in ('agents', 'sandbox', 'environments', 'cli') if u.find_spec(m)])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True
    ).stdout
    assert out.strip() == "[]"
