"""Run configuration: TOML + overrides, unknown keys rejected with the valid ones listed."""

import pytest

from grpo_env.agents.grpo import GRPOConfig
from grpo_env.training.config import (
    AgentSection,
    ConfigError,
    build_train_config,
    load_config,
    parse_assignment,
    resolve_agent_config,
)

GOOD = """
env = "format-v0"
steps = 3
group_size = 4

[model]
name = "smollm2-135m-instruct"
lora = false

[generation]
max_new_tokens = 32

[agent]
name = "grpo"
lr = 1e-5
beta = 0.0
"""


def write(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_full_file_loads_and_options_override_it(tmp_path):
    path = write(tmp_path, GOOD)
    config = load_config(path, {"agent.lr": 3e-5, "steps": 7})
    assert config.steps == 7 and config.group_size == 4
    assert config.model.lora is False and config.generation.max_new_tokens == 32
    assert config.agent.name == "grpo" and config.agent.options() == {"lr": 3e-5, "beta": 0.0}
    agent = resolve_agent_config(config.agent, GRPOConfig)
    assert agent.lr == 3e-5 and agent.epsilon_high == agent.epsilon_low == 0.2


def test_unknown_top_level_key_lists_valid_keys(tmp_path):
    path = write(tmp_path, 'env = "x"\nstepz = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and "'stepz'" in message and "the top level" in message
    assert "valid keys:" in message and "steps" in message and "group_size" in message


def test_unknown_key_in_a_table_names_the_table(tmp_path):
    path = write(tmp_path, 'env = "x"\n[generation]\ntemprature = 0.7\n')
    with pytest.raises(
        ConfigError, match=r"'temprature' in \[generation\]; valid keys: .*temperature"
    ):
        load_config(path)


def test_unknown_agent_key_lists_the_agents_own_keys():
    section = AgentSection(name="grpo", epsilon=0.3)
    with pytest.raises(ConfigError, match=r"'epsilon' in \[agent\]; valid keys: .*epsilon_high"):
        resolve_agent_config(section, GRPOConfig)


def test_bad_values_say_where(tmp_path):
    with pytest.raises(ConfigError, match=r"agent\.lr"):
        resolve_agent_config(AgentSection(name="grpo", lr=-1), GRPOConfig)
    with pytest.raises(ConfigError, match="group_size"):
        load_config(None, {"env": "x", "group_size": 1})
    with pytest.raises(ConfigError, match="loss_agg"):
        resolve_agent_config(AgentSection(name="grpo", loss_agg="sum"), GRPOConfig)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "env = \n"))
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "missing.toml")


def test_resume_reuses_the_runs_saved_config(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"env": "format-v0", "steps": 5, "agent": {"name": "grpo"}}')
    config = build_train_config(None, {"out": str(run), "steps": 9}, resume=True)
    assert config.env == "format-v0" and config.steps == 9


def test_parse_assignment():
    assert parse_assignment("agent.mu=2") == ("agent.mu", 2)
    assert parse_assignment("agent.loss_agg=token-mean") == ("agent.loss_agg", "token-mean")
    assert parse_assignment('eval.env_kwargs={ split = "test" }') == (
        "eval.env_kwargs",
        {"split": "test"},
    )
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignment("agent.mu")
