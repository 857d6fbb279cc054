"""``grpo-env compare`` without running anything: the plan of runs, option routing, the
numbers taken from a run's logs, the per-agent aggregation and the plot."""

import json

import pytest

from grpo_env.evaluation.compare import (
    CompareOptions,
    RunResult,
    build_compare_options,
    collect_result,
    parse_agent_setting,
    parse_seeds,
    plan_runs,
)
from grpo_env.evaluation.compare_report import (
    agent_rows,
    console_table,
    markdown_table,
    smooth,
    write_report,
)
from grpo_env.strict_model import ConfigError
from grpo_env.training.config import validate_config


def options(tmp_path, agents=("grpo", "ppo", "frozen"), seeds=(0, 1), agent=None, **extra):
    base = {"env": "format", "steps": 5, "model": {"name": "m"}, "agent": agent or {}}
    return CompareOptions(
        base=base, agents=list(agents), seeds=list(seeds), out=tmp_path / "cmp", **extra
    )


def test_every_run_is_the_same_config_but_agent_seed_and_out(tmp_path):
    configs = plan_runs(options(tmp_path, agent={"lr": 1e-3, "lam": 0.9}))
    assert [(c.agent.name, c.seed) for c in configs] == [
        ("grpo", 0), ("grpo", 1), ("ppo", 0), ("ppo", 1), ("frozen", 0), ("frozen", 1),
    ]  # fmt: skip
    # shared [agent] options reach the agents that have the knob, and only those
    assert configs[0].agent.options() == {"lr": 1e-3}
    assert configs[2].agent.options() == {"lr": 1e-3, "lam": 0.9}
    assert configs[4].agent.options() == {}
    assert configs[0].out == tmp_path / "cmp" / "runs" / "grpo-seed0"
    assert not configs[0].log.progress
    strip = {"agent", "out", "seed"}
    dumps = [
        {k: v for k, v in c.model_dump(mode="json").items() if k not in strip} for c in configs
    ]
    assert all(d == dumps[0] for d in dumps)


def test_options_no_agent_knows_or_for_agents_not_compared_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="known to none"):
        plan_runs(options(tmp_path, agent={"lamda": 0.9}))
    with pytest.raises(ConfigError, match="not compared"):
        plan_runs(options(tmp_path, agent_options={"rloo": {"beta": 0.1}}))
    with pytest.raises(ConfigError, match="lamda"):
        plan_runs(options(tmp_path, agent_options={"ppo": {"lamda": 0.9}}))


def test_file_table_and_command_line_merge(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        'env = "format"\nsteps = 7\n[agent]\nlr = 0.001\n'
        '[compare]\nagents = ["grpo", "rloo"]\nseeds = 3\n'
        "[compare.agent_options.rloo]\nbeta = 0.2\n"
    )
    built = build_compare_options(
        env=None,
        out=tmp_path / "o",
        config_file=config,
        overrides={"steps": 9},
        agent_options={"rloo": {"mu": 2}},
    )
    assert built.agents == ["grpo", "rloo"] and built.seeds == [0, 1, 2]
    assert built.base["steps"] == 9 and built.base["agent"] == {"lr": 0.001}
    assert built.agent_options == {"rloo": {"beta": 0.2, "mu": 2}}
    assert built.base["eval"]["tasks"] == 50
    assert "env_kwargs" not in built.base["eval"]  # format-v0 has no held-out split
    cli = build_compare_options(env="format", out=tmp_path / "o", agents=["ppo"], seeds=[4])
    assert (cli.agents, cli.seeds) == (["ppo"], [4])
    with pytest.raises(KeyError, match="unknown agent 'grop'"):
        build_compare_options(env="format", out=tmp_path / "o", agents=["grop"])
    with pytest.raises(ConfigError, match="--env"):
        build_compare_options(env=None, out=tmp_path / "o")


def test_the_all_agents_comparison_plans_every_agent(tmp_path):
    from pathlib import Path

    config = Path(__file__).resolve().parents[3] / "bench" / "compare_all_agents.toml"
    built = build_compare_options(env=None, out=tmp_path / "o", config_file=config)
    agents = ["grpo", "ppo", "rloo", "online_rft", "online_dpo", "remax", "frozen"]
    assert built.agents == agents and built.seeds == [0, 1, 2]
    configs = plan_runs(built.model_copy(update={"base": {**built.base, "model": {"name": "m"}}}))
    assert [c.agent.name for c in configs] == [a for a in agents for _ in range(3)]
    assert all(c.agent.options() == {"lr": 3e-4} for c in configs if c.agent.name != "frozen")
    with_kl = plan_runs(options(tmp_path, agents=agents[3:6], agent={"beta": 0.04}))
    assert {c.agent.options()["beta"] for c in with_kl} == {0.04}  # every one takes beta


def test_held_out_split_is_used_for_evaluation_when_the_env_has_one(tmp_path):
    built = build_compare_options(env="math-chain-sum", out=tmp_path / "o")
    assert built.base["eval"]["env_kwargs"] == {"split": "test"}


def test_seed_and_agent_setting_syntax():
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("0,5,7") == [0, 5, 7]
    for bad in ("x", "1,1", "0"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    assert parse_agent_setting("ppo.critic_lr=1e-5") == ("ppo", "critic_lr", 1e-5)
    with pytest.raises(ConfigError, match=r"AGENT\.KEY=VALUE"):
        parse_agent_setting("lr=1")


def write_run(run_dir, rewards, evals):
    run_dir.mkdir(parents=True)
    with (run_dir / "metrics.jsonl").open("w") as handle:
        for step, reward in enumerate(rewards, start=1):
            row = {"step": step, "reward_mean": reward, "step_seconds": 2.0 * step,
                   "gen_seconds": 1.0, "gen_tokens": 10.0 * step, "train_tokens_per_s": 50.0,
                   "peak_memory_mb": 100.0 + step}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    with (run_dir / "eval.jsonl").open("w") as handle:
        for step, accuracy in evals:
            handle.write(json.dumps({"step": step, "accuracy": accuracy, "mean_reward": accuracy,
                                     "tasks": 10}) + "\n")  # fmt: skip


def test_a_runs_numbers_by_hand(tmp_path):
    rewards = [0.0, 0.1, 0.9, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.2, 0.6, 0.4, 0.5,
               0.6, 0.7, 0.8, 0.0]  # fmt: skip
    config = validate_config(
        {"env": "x", "steps": 20, "out": str(tmp_path / "run"), "agent": {"name": "grpo"}}
    )
    write_run(tmp_path / "run", rewards, [(0, 0.1), (20, 0.6)])
    result = collect_result(config, wall_seconds=9.0)
    # window = 20 // 10 = 2: final = mean of the last 2 steps; best 2-step average = 0.95
    assert result.final_reward == pytest.approx(0.4)
    assert result.best_reward == pytest.approx(0.95)
    assert (result.eval_before, result.eval_final, result.eval_tasks) == (0.1, 0.6, 10)
    assert result.seconds_per_step == pytest.approx(21.0)
    assert result.gen_tokens_per_s == pytest.approx(sum(10.0 * s for s in range(1, 21)) / 20)
    assert result.peak_memory_mb == 120.0 and result.train_tokens_per_s == 50.0
    short = validate_config({"env": "x", "steps": 21, "out": str(tmp_path / "run")})
    with pytest.raises(ValueError, match="20 steps logged, 21 expected"):
        collect_result(short, wall_seconds=1.0)


def result(agent, seed, rewards, final_eval, memory=100.0):
    return RunResult(
        agent=agent, seed=seed, run_dir="r", steps=len(rewards), rewards=rewards,
        eval_before=0.1, eval_final=final_eval, eval_final_reward=final_eval, eval_tasks=10,
        eval_split="test", final_reward=rewards[-1], best_reward=max(rewards),
        seconds_per_step=2.0, gen_tokens_per_s=30.0, train_tokens_per_s=None,
        peak_memory_mb=memory, wall_seconds=5.0,
    )  # fmt: skip


def test_agent_rows_average_seeds_and_the_report_is_written(tmp_path):
    results = [
        result("grpo", 0, [0.1, 0.5], 0.4, memory=100.0),
        result("grpo", 1, [0.2, 0.7], 0.6, memory=120.0),
        result("frozen", 0, [0.1, 0.1], 0.1),
    ]
    grpo, frozen = agent_rows(results)
    assert grpo.agent == "grpo" and grpo.seeds == 2
    assert grpo.eval_final == pytest.approx(0.5) and grpo.eval_final_std == pytest.approx(0.1)
    assert grpo.final_reward == pytest.approx(0.6) and grpo.peak_memory_mb == 110.0
    assert frozen.train_tokens_per_s is None
    table = markdown_table([grpo, frozen])
    assert "| grpo | 2 | 0.100 | 0.500 ± 0.100 | 0.600 ± 0.100 |" in table
    assert "| frozen | 1 |" in table and "| - |" in table
    out = tmp_path / "report"
    out.mkdir()
    write_report(out, results, env="format", model="m", steps=2)
    assert {p.name for p in out.iterdir()} >= {"compare.md", "compare.csv", "runs.csv",
                                                "reward_curves.png"}  # fmt: skip
    assert "held-out tasks (split test)" in (out / "compare.md").read_text()


def test_smooth_is_a_trailing_moving_average():
    assert smooth([1.0, 3.0, 5.0, 7.0], 2).tolist() == [1.0, 2.0, 4.0, 6.0]
    assert smooth([1.0, 2.0], 1).tolist() == [1.0, 2.0]


def test_the_console_table_keeps_agent_names_at_80_columns_without_a_tty():
    from io import StringIO

    from rich.console import Console

    results = [
        result("reinforce_pp_baseline", 0, [0.1, 0.5], 0.4, memory=3158.0),
        result("grpo", 0, [0.2, 0.7], 0.6, memory=3628.0),
    ]
    results += [result("grpo", 1, [0.2, 0.6], 0.5, memory=3628.0)]  # spread over seeds
    out = StringIO()
    Console(file=out, width=80, force_terminal=False).print(
        console_table(agent_rows(results), "compare: runs/x", 80)
    )
    text = out.getvalue()
    assert "reinforce_pp_baseline" in text and "grpo" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    # Numbers are whole on one line, the spread over seeds included: never folded.
    assert "0.550 ± 0.050" in text and "0.400" in text and "3628" in text
    # A wide console gets every column.
    wide = StringIO()
    Console(file=wide, width=200, force_terminal=False).print(
        console_table(agent_rows(results), "compare: runs/x", 200)
    )
    assert "train tok/s" in wide.getvalue() and "train tok/s" not in text
