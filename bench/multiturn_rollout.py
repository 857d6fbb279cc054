"""Rollout speed of a multi-turn step against a single-turn step of the same total length.

A tiny Llama built from a config (no download; ``--hidden`` / ``--layers`` size it) samples
``prompts x G`` episodes with the ``hf`` loop backend:

- ``single-turn``: one completion of ``turns x tokens_per_turn`` new tokens;
- ``multi-turn``: ``turns`` turns of ``tokens_per_turn`` each, the env answering every turn
  ("next", rendered as template tokens, loss mask 0), each turn one batched ``generate`` that
  continues from the episodes' own token ids.

EOS is never sampled (its logit is masked by a bias on the LM head), so both paths sample
exactly the same number of model tokens. Reported: model tokens per second, and the time per
step (mean of ``--repeats`` after one warm-up).

    flock /tmp/grpo-heavy.lock .venv/bin/python bench/multiturn_rollout.py

prints one JSON line per path and a summary line.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from grpo_env import Task, VerifiableEnv, VerifyResult
from grpo_env.policy.config import ModelConfig
from grpo_env.policy.generation import HFGenerator, SamplingParams
from grpo_env.policy.models import wrap_policy
from grpo_env.testing import char_tokenizer, tiny_llama
from grpo_env.training.multiturn import run_episodes

TEMPLATE = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class Next(VerifiableEnv):
    def env_response(self, task, messages, state):
        return "next"

    def verify(self, task, completion):
        return VerifyResult(score=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--tokens-per-turn", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tokenizer = char_tokenizer("abcdefghijklmnopqrstuvwxyz0123456789 ", chat_template=TEMPLATE)
    model = tiny_llama(tokenizer, hidden_size=args.hidden, layers=args.layers, heads=4)
    model.config.max_position_embeddings = 4096
    with torch.no_grad():  # EOS never sampled: both paths sample exactly the same token count
        model.lm_head.bias = torch.nn.Parameter(torch.zeros(len(tokenizer)))
        model.lm_head.bias[tokenizer.eos_token_id] = -1e9
    policy = wrap_policy(
        model, tokenizer, ModelConfig(name="bench", lora=False), source="bench",
        device=torch.device("cpu"),
    )  # fmt: skip
    tasks = [Task(id=f"t{i}", prompt=f"count {i}") for i in range(args.prompts)]
    prompts = [(t, t.messages()) for t in tasks]
    generator = HFGenerator(policy)
    rows = {}
    for name, turns, per_turn in (
        ("single-turn", 1, args.turns * args.tokens_per_turn),
        ("multi-turn", args.turns, args.tokens_per_turn),
    ):
        env = Next(tasks, max_turns=turns)
        params = SamplingParams(max_new_tokens=per_turn, temperature=1.0)
        seconds = []
        for repeat in range(args.repeats + 1):
            torch.manual_seed(repeat)
            started = time.perf_counter()
            if turns == 1:
                groups = generator.generate(
                    [policy.encode_chat(p) for _, p in prompts], args.group, params
                )
                tokens = sum(len(c.token_ids) for g in groups for c in g)
            else:
                played = run_episodes(env, policy, generator, params, prompts, args.group)
                tokens = sum(sum(run.mask) for g in played for run, _ in g)
            if repeat:  # the first is a warm-up
                seconds.append(time.perf_counter() - started)
        mean = sum(seconds) / len(seconds)
        rows[name] = {
            "path": name,
            "turns": turns,
            "episodes": args.prompts * args.group,
            "model_tokens": tokens,
            "step_seconds": round(mean, 4),
            "tokens_per_s": round(tokens / mean, 1),
        }
        print(json.dumps(rows[name]), flush=True)
    ratio = rows["multi-turn"]["tokens_per_s"] / rows["single-turn"]["tokens_per_s"]
    print(
        json.dumps({"summary": "multi-turn / single-turn tokens per s", "ratio": round(ratio, 3)})
    )


if __name__ == "__main__":
    main()
