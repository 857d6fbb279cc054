"""One rank of the 1-rank vs 2-rank training test (run by
tests/grpo_env/training/test_distributed.py).

    [torchrun --nproc-per-node N] dist_train_worker.py MODEL_DIR OUT STEPS [DIE_RANK DIE_CALL]

GRPO with LoRA on the tiny next-digit model, 4 groups x 4 samples per step, each group sampled
from its own seed. With DIE_RANK/DIE_CALL that rank's process exits (code 3) in its DIE_CALL-th
scoring call: a rank that dies mid-run. GRPO_TEST_RESUME=1 resumes the run in OUT;
GRPO_TEST_FSDP2=1 trains the full model under FSDP2 (and evaluates 3 tasks on every rank);
GRPO_TEST_DTYPE sets model.dtype (default auto).
"""

import os
import sys

from grpo_env.testing import next_digit_env
from grpo_env.training.config import validate_config
from grpo_env.training.trainer import Trainer


def main() -> None:
    model_dir, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    env = next_digit_env()
    if len(sys.argv) > 4:
        die_rank, die_call = int(sys.argv[4]), int(sys.argv[5])
        calls = [0]
        score_many = env.score_many

        def dying_score_many(*args, **kwargs):
            calls[0] += 1
            if int(os.environ.get("RANK", "0")) == die_rank and calls[0] == die_call:
                os._exit(3)
            return score_many(*args, **kwargs)

        env.score_many = dying_score_many
    fsdp2 = os.environ.get("GRPO_TEST_FSDP2") == "1"
    config = validate_config(
        {
            "env": "next-digit",
            "steps": steps,
            "group_size": 4,
            "prompts_per_step": 4,
            "seed": 3,
            "out": out,
            "model": {
                "name": model_dir,
                "lora": not fsdp2,
                "dtype": os.environ.get("GRPO_TEST_DTYPE", "auto"),
            },
            "generation": {"max_new_tokens": 3, "temperature": 1.0},  # the default hf_decode
            "agent": {
                "name": "grpo",
                "lr": 0.01 if fsdp2 else 0.05,
                "beta": 0.04,
                "micro_batch_size": 3,
            },
            "log": {"progress": False, "tensorboard": False, "save_every": 2},
            "eval": {"tasks": 3 if fsdp2 else 0},
            "distributed": {
                "seed_per_group": True,
                "timeout_s": 60,
                "strategy": "fsdp2" if fsdp2 else "ddp",
            },
        }
    )
    resume = os.environ.get("GRPO_TEST_RESUME") == "1"
    Trainer(config, env=env, eval_env=next_digit_env(), resume=resume).run()


if __name__ == "__main__":
    main()
