"""Sampled evaluation on a tiny model: per-sample records, rescoring without regenerating,
resuming after a crash, and loading trained policies back from checkpoints."""

import json

import pytest
import torch

from grpo_env.env import VerifiableEnv
from grpo_env.evaluation.evaluate import evaluate_samples, read_records, rescore_records, summarize
from grpo_env.evaluation.runner import EvalOptions, run_eval
from grpo_env.evaluation.saved_policy import find_policy_dir, load_saved_policy
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import load_policy
from grpo_env.testing import next_digit_env
from grpo_env.training.config import validate_config
from grpo_env.training.trainer import Trainer

PARAMS = SamplingParams(max_new_tokens=2, temperature=1.0)


class CountingGenerator(HFGenerator):
    def __init__(self, policy):
        super().__init__(policy)
        self.prompts = 0

    def generate(self, prompts, n, params):
        self.prompts += len(prompts)
        return super().generate(prompts, n, params)


def evaluate(policy, out, done=(), tasks=None):
    env = next_digit_env()
    generator = CountingGenerator(policy)
    torch.manual_seed(0)
    report = evaluate_samples(
        env,
        policy,
        generator,
        tasks or list(env.tasks),
        env_id="next-digit",
        model="toy",
        samples=4,
        params=PARAMS,
        out=out,
        batch_size=12,
        done=done,
    )
    return report, generator


def test_records_summarise_to_the_report_and_rescore_without_regenerating(tmp_path, toy_model):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=False))
    out = tmp_path / "eval.jsonl"
    report, _ = evaluate(policy, out)
    records = read_records(out)
    assert len(records) == 40 and report.tasks == 10 and report.samples_per_task == 4
    assert {(r.task_id, r.sample) for r in records} == {
        (f"digit-{d}", s) for d in range(10) for s in range(4)
    }
    assert summarize(records) == report.model_copy(update={"samples_file": None})
    same = rescore_records(records, next_digit_env(), env_id="next-digit")
    assert [r.reward for r in same] == [r.reward for r in records]
    # A fixed verifier (lenient: the answer anywhere) scores the same completions again.
    lenient = VerifiableEnv(next_digit_env().tasks, rubric=lambda task, c: float(task.answer in c))
    other = rescore_records(records, lenient, env_id="next-digit-lenient")
    for before, after in zip(records, other, strict=True):
        assert after.completion == before.completion and after.env == "next-digit-lenient"
        assert after.reward == float(before.task["answer"] in before.completion)
    assert summarize(other).mean_reward >= report.mean_reward


def test_a_resumed_evaluation_redoes_only_unfinished_tasks(tmp_path, toy_model):
    policy = load_policy(ModelConfig(name=str(toy_model), lora=False))
    out = tmp_path / "eval.jsonl"
    evaluate(policy, out)
    lines = out.read_text().splitlines()
    # A crash: four tasks complete, two samples of the fifth, and a torn line.
    out.write_text("\n".join(lines[:18]) + "\n" + lines[18][:40])
    done = read_records(out)
    assert len(done) == 18
    report, generator = evaluate(policy, out, done=done)
    assert generator.prompts == 6  # tasks 5..10 only
    records = read_records(out)
    keys = [(r.task_id, r.sample) for r in records]
    assert len(keys) == 40 and len(set(keys)) == 40
    assert report.tasks == 10


def test_a_bad_line_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"env": "x"}\n{"env": "x"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: "):
        read_records(path)


def test_eval_options_and_existing_output(tmp_path, toy_model):
    with pytest.raises(ValueError, match="exactly one of --model and --checkpoint"):
        EvalOptions(env="x")
    out = tmp_path / "e.jsonl"
    out.write_text("")
    options = EvalOptions(env="format", model=str(toy_model), out=out)
    with pytest.raises(ValueError, match="--resume continues"):
        run_eval(options)


def train_tiny(tmp_path, toy_model, agent, lora):
    config = validate_config(
        {
            "env": "toy",
            "steps": 2,
            "group_size": 4,
            "prompts_per_step": 3,
            "out": str(tmp_path / f"{agent}-{lora}"),
            "model": {"name": str(toy_model), "lora": lora},
            "generation": {"max_new_tokens": 3},
            "agent": {"name": agent, **({"lr": 5e-2} if agent != "frozen" else {})},
            "log": {"progress": False, "tensorboard": False},
        }
    )
    # Even first digits score: a random tiny model hits that often enough to learn from.
    env = VerifiableEnv(next_digit_env().tasks, rubric=lambda task, c: float(c[:1] in "02468"))
    trainer = Trainer(config, env=env)
    trainer.run()
    return trainer


def logits(policy):
    ids = torch.tensor([[1, 5, 6, 7, 4]])
    with torch.no_grad():
        return policy.model(input_ids=ids).logits


@pytest.mark.parametrize(("agent", "lora"), [("grpo", True), ("grpo", False), ("frozen", True)])
def test_trained_policies_load_back_from_their_checkpoints(tmp_path, toy_model, agent, lora):
    trainer = train_tiny(tmp_path, toy_model, agent, lora)
    run_dir = trainer.run_dir
    loaded = load_saved_policy(run_dir)  # the run dir: its latest checkpoint
    assert torch.allclose(logits(loaded), logits(trainer.policy), atol=1e-5)
    initial = load_policy(ModelConfig(name=str(toy_model), lora=False))
    moved = not torch.allclose(logits(initial), logits(loaded), atol=1e-4)
    assert moved == (agent != "frozen")
    assert loaded.eos_token_ids == trainer.policy.eos_token_ids
    checkpoint = run_dir / "checkpoints" / "step-000002"
    assert find_policy_dir(checkpoint) == checkpoint / "policy"
    assert find_policy_dir(checkpoint / "policy") == checkpoint / "policy"
    pointer = json.loads((checkpoint / "policy" / "policy.json").read_text())
    assert pointer["lora"] == (lora and agent != "frozen")


def test_a_path_that_is_no_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory, a checkpoint"):
        find_policy_dir(tmp_path)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        find_policy_dir(tmp_path / "missing")
