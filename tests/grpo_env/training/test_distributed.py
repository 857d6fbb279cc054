"""Training on several ranks (DESIGN rule 11), run here on CPU with the gloo backend.

The multi-process tests start real ranks (``torchrun``, or processes given the launcher's
variables by hand) running tests/grpo_env/training/dist_*_worker.py, and compare with one process.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from grpo_env.agents.losses import LossNormalizer
from grpo_env.testing import next_digit_env
from grpo_env.training import distributed
from grpo_env.training.rollout import rollout_groups

HERE = Path(__file__).parent
LAUNCHER_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR")
LAUNCHER_VARS += ("MASTER_PORT", "GROUP_RANK", "ROLE_RANK", "TORCHELASTIC_RUN_ID")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def run(args: list[str], *, ranks: int = 1, **extra: str) -> subprocess.CompletedProcess:
    """One process, or ``ranks`` of them under torchrun; the timeout only guards a hang."""
    prefix = [sys.executable]
    if ranks > 1:
        prefix += ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    return subprocess.run(
        [*prefix, *args], env=clean_env(**extra), capture_output=True, text=True, timeout=600
    )


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# ----- the pieces, in one process -------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3, 4, 7])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_are_contiguous_and_give_each_group_to_one_rank(count, world):
    shares = [distributed.shard(count, rank, world) for rank in range(world)]
    assert [i for share in shares for i in share] == list(range(count))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_group_seed_is_a_function_of_seed_step_and_group():
    assert distributed.group_seed(0, 1, 2) == distributed.group_seed(0, 1, 2)
    seeds = {distributed.group_seed(s, t, i) for s in (0, 1) for t in (1, 2) for i in range(4)}
    assert len(seeds) == 16


def test_one_process_reductions_are_identities():
    assert not distributed.current().enabled
    norm = LossNormalizer.for_batch("token-mean", [3, 4], 8)
    assert distributed.global_normalizer(norm) == norm
    assert distributed.all_reduce([1.5, 2.0]) == [1.5, 2.0]
    assert distributed.reduce_metrics({"loss": 0.5}) == {"loss": 0.5}
    assert distributed.gradient_scale() == 1.0


def test_a_group_sampled_from_its_seed_does_not_depend_on_the_others(toy_model):
    from grpo_env.agents.frozen import FrozenAgent
    from grpo_env.policy.config import ModelConfig
    from grpo_env.policy.generation import HFGenerator, SamplingParams
    from grpo_env.policy.models import load_policy

    policy = load_policy(ModelConfig(name=str(toy_model), lora=False))
    agent = FrozenAgent(policy, HFGenerator(policy), SamplingParams(max_new_tokens=4))
    env = next_digit_env()
    tasks = [env.tasks[i] for i in range(4)]
    seeds = [distributed.group_seed(5, 1, i) for i in range(4)]
    whole = rollout_groups(env, agent, tasks, 4, tag="s", seeds=seeds)
    torch.manual_seed(123)  # the global RNG state must not matter
    share = rollout_groups(env, agent, tasks[2:], 4, tag="s", first_index=2, seeds=seeds[2:])
    for mine, theirs in zip(share, whole[2:], strict=True):
        assert mine.group_id == theirs.group_id
        assert [e.completion_ids for e in mine.episodes] == [
            e.completion_ids for e in theirs.episodes
        ]


# ----- several ranks --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_two_ranks_give_the_single_process_gradient(tmp_path, mode):
    """ddp: LoRA; fsdp2: full fine-tuning with the reference sharded too. 3 groups on 2 ranks
    (unequal shares, pad passes), micro-batches of 2, KL on."""
    worker = str(HERE / "dist_grad_worker.py")
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    single = run([worker, mode, str(one)])
    assert single.returncode == 0, single.stderr[-3000:]
    double = run([worker, mode, str(two)], ranks=2)
    assert double.returncode == 0, double.stderr[-3000:]
    g1, g2 = torch.load(one), torch.load(two)
    assert g1.norm() > 0
    assert float((g2 - g1).norm() / g1.norm()) <= 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["ddp", "fsdp2"])
def test_two_ranks_train_like_one_and_resume_the_same(tmp_path, toy_model, strategy):
    """ddp: LoRA. fsdp2: full fine-tuning, sharded sampling in lock-step, evaluation on every
    rank, checkpoints gathered and written by rank 0."""
    worker = str(HERE / "dist_train_worker.py")
    extra = {"GRPO_TEST_FSDP2": "1"} if strategy == "fsdp2" else {}
    # Float reduction order: DDP's loss agrees to ~1e-7; FSDP2's sharded sums to ~1e-3 after
    # AdamW steps on slightly different gradients.
    rel = 1e-4 if strategy == "ddp" else 1e-2
    one, two, resumed = tmp_path / "one", tmp_path / "two", tmp_path / "resumed"
    result = run([worker, str(toy_model), str(one), "3"], **extra)
    assert result.returncode == 0, result.stderr[-3000:]
    result = run([worker, str(toy_model), str(two), "3"], ranks=2, **extra)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = metrics(one), metrics(two)
    assert [m["step"] for m in b] == [1, 2, 3]
    for m1, m2 in zip(a, b, strict=True):  # the same tasks and completions
        for key in ("reward_mean", "reward_std", "gen_tokens", "train_tokens", "frac_truncated"):
            assert m1[key] == m2[key], key
        assert m2["samples_trained"] == 16
        # The loss of a step's first pass is ~0 (ratio 1, advantages summing to 0): what is
        # left is float noise of order the sampler/trainer logprob gap (~1e-6 in float32).
        assert m1["loss"] == pytest.approx(m2["loss"], rel=rel, abs=1e-5)
    # Rank 0 alone writes: one metrics line per step, one checkpoint per save.
    assert sorted(p.name for p in (two / "checkpoints").glob("step-*")) == [
        "step-000002",
        "step-000003",
    ]
    if strategy == "fsdp2":

        def evals(run_dir: Path) -> list[dict]:
            rows = [json.loads(line) for line in (run_dir / "eval.jsonl").read_text().splitlines()]
            return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

        assert [row["step"] for row in evals(two)] == [0, 3]
        assert evals(two) == evals(one)
    # --resume under the same world size: stop after 2 steps, continue to 3.
    result = run([worker, str(toy_model), str(resumed), "2"], ranks=2, **extra)
    assert result.returncode == 0, result.stderr[-3000:]
    result = run(
        [worker, str(toy_model), str(resumed), "3"], ranks=2, GRPO_TEST_RESUME="1", **extra
    )
    assert result.returncode == 0, result.stderr[-3000:]
    c = metrics(resumed)
    assert [m["step"] for m in c] == [1, 2, 3]
    for key in ("reward_mean", "gen_tokens", "train_tokens"):
        assert c[2][key] == b[2][key], key
    assert c[2]["loss"] == pytest.approx(b[2]["loss"], rel=1e-5, abs=1e-8)
    assert c[2]["grad_norm"] == pytest.approx(b[2]["grad_norm"], rel=1e-5)


@pytest.mark.slow
def test_fsdp2_shards_a_bf16_reference_and_trains(tmp_path, toy_model):
    """Under bf16 the reference stores its linear weights in bf16 beside float32 embeddings
    and norms: FSDP2 shards that mixed-dtype model and the run trains like one rank."""
    extra = {"GRPO_TEST_FSDP2": "1", "GRPO_TEST_DTYPE": "bfloat16"}
    worker = str(HERE / "dist_train_worker.py")
    one, two = tmp_path / "one", tmp_path / "two"
    assert run([worker, str(toy_model), str(one), "2"], **extra).returncode == 0
    result = run([worker, str(toy_model), str(two), "2"], ranks=2, **extra)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = metrics(one), metrics(two)
    assert [m["precision"] for m in b] == ["bfloat16", "bfloat16"]
    for m1, m2 in zip(a, b, strict=True):
        assert m1["reward_mean"] == m2["reward_mean"]
        assert m2["kl"] >= 0.0


@pytest.mark.parametrize(("strategy", "attention"), [("fsdp2", "model"), ("ddp", "auto")])
def test_fsdp2_runs_keep_the_models_attention(strategy, attention):
    from grpo_env.training.config import validate_config
    from grpo_env.training.trainer import model_config_for

    config = validate_config({"env": "next-digit", "distributed": {"strategy": strategy}})
    assert model_config_for(config).attention == attention
    assert config.model.attention == "auto"  # the config itself is left as written


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_a_rank_that_dies_ends_the_others_with_a_clear_message(tmp_path, toy_model):
    """Two ranks started by hand (as SLURM would): rank 1 exits in step 3's rollout; rank 0
    must stop with PeerFailure at its next collective, not wait forever."""
    worker = str(HERE / "dist_train_worker.py")
    common = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    # Rank 1's scoring calls: 1 verifier health check, then 2 groups a step: the 6th is step 3's.
    args = [sys.executable, worker, str(toy_model), str(tmp_path / "run"), "4", "1", "6"]
    procs = [
        subprocess.Popen(
            args,
            env=clean_env(RANK=str(rank), LOCAL_RANK=str(rank), **common),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    _, err0 = procs[0].communicate(timeout=600)
    procs[1].communicate(timeout=600)
    assert procs[1].returncode == 3
    assert procs[0].returncode != 0
    assert "PeerFailure: rank 0 of 2" in err0
    assert "another rank died or did not answer within 60 s" in err0
    # The checkpoint of step 2 stands.
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "step-000002"


@pytest.mark.slow
def test_a_rank_that_hangs_times_out_the_collective(tmp_path):
    """Rank 1 is alive but never enters the all_reduce: rank 0 fails after its 3 s timeout."""
    worker = str(HERE / "dist_hang_worker.py")
    common = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    procs = [
        subprocess.Popen(
            [sys.executable, worker, "3"],
            env=clean_env(RANK=str(rank), LOCAL_RANK=str(rank), **common),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    try:
        _, err0 = procs[0].communicate(timeout=100)  # well before rank 1 wakes (120 s)
    finally:
        procs[1].kill()
        procs[1].communicate()
    assert procs[0].returncode == 2, err0[-2000:]
    assert "rank 0 of 2: all_reduce(sum) failed" in err0
    assert "within 3 s" in err0


@pytest.mark.slow
def test_torchrun_ends_the_run_when_a_rank_dies(tmp_path, toy_model):
    worker = str(HERE / "dist_train_worker.py")
    result = run([worker, str(toy_model), str(tmp_path / "run"), "4", "1", "5"], ranks=2)
    assert result.returncode != 0
    assert "exitcode  : 3" in result.stderr


def test_agents_whose_advantages_need_the_whole_batch_say_so(toy_model):
    """The trainer refuses these on several ranks: a rank's share would whiten differently."""
    from grpo_env.agents.grpo import GRPOAgent, GRPOConfig
    from grpo_env.agents.ppo import PPOAgent
    from grpo_env.agents.reinforce_pp import ReinforcePPAgent, ReinforcePPBaselineAgent
    from grpo_env.agents.rloo import RLOOAgent
    from grpo_env.policy.config import ModelConfig
    from grpo_env.policy.generation import HFGenerator, SamplingParams
    from grpo_env.policy.models import load_policy

    assert PPOAgent.batch_wide_advantages and ReinforcePPAgent.batch_wide_advantages
    assert ReinforcePPBaselineAgent.batch_wide_advantages
    assert not RLOOAgent.batch_wide_advantages and not GRPOAgent.batch_wide_advantages
    policy = load_policy(ModelConfig(name=str(toy_model)))
    sampling = SamplingParams(max_new_tokens=2)

    def grpo(scale: str) -> GRPOAgent:
        return GRPOAgent(policy, HFGenerator(policy), sampling, GRPOConfig(scale_rewards=scale))

    assert grpo("batch").advantages_need_whole_batch
    assert not grpo("group").advantages_need_whole_batch
