"""Registry: versioned ids, latest-version resolution, Gymnasium visibility, entry points."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import gymnasium
import pytest

import grpo_env
from grpo_env import Task, UnknownIdError, VerifiableEnv
from grpo_env.registry import agents as agent_registry
from grpo_env.registry import envs, split_id


def make_echo(word: str = "hi", **kwargs) -> VerifiableEnv:
    tasks = [Task(id="echo", prompt=f"Say {word}", answer=word)]
    return VerifiableEnv(tasks, rubric=lambda t, c: float(c == t.answer), **kwargs)


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test vanish after it (ours and Gymnasium's mirror)."""
    monkeypatch.setattr(envs, "_specs", dict(envs._specs))
    gym_registration = gymnasium.envs.registration
    monkeypatch.setattr(gym_registration, "registry", dict(gym_registration.registry))
    return envs


def test_split_id():
    assert split_id("math-chain-sum-v12") == ("math-chain-sum", 12)
    with pytest.raises(ValueError, match="name-vN"):
        split_id("math")


def test_register_and_make_with_overrides(scratch_registry):
    grpo_env.register("echo-v0", make_echo, description="echo", word="hello")
    env = grpo_env.make("echo-v0")
    env.reset(seed=0)
    assert env.step("hello")[1] == 1.0
    env = grpo_env.make("echo-v0", word="bye")
    env.reset(seed=0)
    assert env.step("bye")[1] == 1.0
    assert env.spec is not None and env.spec.id == "echo-v0" and env.spec.kwargs == {"word": "bye"}


def test_unversioned_id_resolves_to_latest(scratch_registry):
    grpo_env.register("echo-v0", make_echo, word="old")
    grpo_env.register("echo-v2", make_echo, word="new")
    grpo_env.register("echo-v1", make_echo, word="mid")
    assert envs.resolve("echo").id == "echo-v2"
    assert envs.resolve("echo-v1").id == "echo-v1"


def test_unknown_id_suggests_close_matches(scratch_registry):
    grpo_env.register("echo-v0", make_echo)
    with pytest.raises(UnknownIdError) as caught:
        grpo_env.make("ecoh")
    assert "unknown environment 'ecoh'" in str(caught.value)
    assert "Did you mean 'echo'" in str(caught.value)
    with pytest.raises(UnknownIdError):
        grpo_env.make("echo-v9")


def test_bad_ids_are_rejected(scratch_registry):
    with pytest.raises(ValueError, match="name-vN"):
        grpo_env.register("echo", make_echo)


def test_factory_must_return_an_env(scratch_registry):
    grpo_env.register("notenv-v0", lambda: object())
    with pytest.raises(TypeError, match=r"not a gymnasium\.Env"):
        grpo_env.make("notenv-v0")


def test_registered_envs_are_visible_to_gymnasium(scratch_registry):
    grpo_env.register("echo-v0", make_echo, word="gym")
    env = gymnasium.make("echo-v0")
    env.reset(seed=0)
    assert env.step("gym")[1] == 1.0
    assert isinstance(gymnasium.make("grpo_env:format-v0").unwrapped, VerifiableEnv)


def test_agents_registry_uses_plain_names(monkeypatch):
    monkeypatch.setattr(agent_registry, "_specs", dict(agent_registry._specs))
    grpo_env.register_agent("my-agent", lambda lr=0.1: {"lr": lr})
    assert grpo_env.make_agent("my-agent", lr=0.5) == {"lr": 0.5}
    with pytest.raises(UnknownIdError, match="unknown agent"):
        grpo_env.make_agent("no-such-agent")


def write_plugin(root, env_id: str = "plugin-echo-v0") -> None:
    """A fake installed distribution: a module plus a dist-info with an entry point."""
    (root / "echo_plugin.py").write_text(
        textwrap.dedent(
            """
            from grpo_env import Task, VerifiableEnv

            def make_env(**kwargs):
                return VerifiableEnv([Task(id="p", prompt="Say plugin", answer="plugin")],
                                     rubric=lambda t, c: float(c == t.answer), **kwargs)
            """
        )
    )
    dist = root / "echo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        f"[grpo_env.environments]\n{env_id} = echo_plugin:make_env\n"
    )


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch, scratch_registry):
    write_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(envs, "_loaded", False)
    spec = envs.resolve("plugin-echo")
    assert spec.id == "plugin-echo-v0" and spec.source == "entry point (echo-plugin)"
    assert "echo_plugin" not in sys.modules  # listed without being imported
    env = grpo_env.make("plugin-echo")
    env.reset(seed=0)
    assert env.step("plugin")[1] == 1.0


def test_bad_plugin_warns_instead_of_breaking_import(tmp_path, monkeypatch, scratch_registry):
    write_plugin(tmp_path, env_id="not a valid id")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(envs, "_loaded", False)
    with pytest.warns(UserWarning, match="echo-plugin: ignoring bad grpo_env.environments"):
        envs.ensure_loaded()
    assert envs.resolve("format").id == "format-v0"


def test_cli_lists_an_installed_plugin(tmp_path):
    write_plugin(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "grpo_env.cli", "envs", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert '"id": "plugin-echo-v0"' in out and "entry point (echo-plugin)" in out
