"""The built-in environments. Importing this registers them (cheaply: each factory is a
``"module:attr"`` string, imported only when the environment is made)."""

from grpo_env.registry import envs

_BUILTIN = "built-in"

envs.register(
    "format-v0",
    "grpo_env.environments.format:FormatEnv",
    description="Reward for answering as <think>…</think><answer>…</answer> (strict; "
    "partial_credit=True gives a quarter per part).",
    source=_BUILTIN,
)

envs.register(
    "code-unittest-v0",
    "grpo_env.environments.code_unittest:CodeUnittestEnv",
    description="Python written by the model, run against unit tests in a Docker sandbox; "
    "reward = share of tests passed (HumanEval train split by default; tasks_path= for "
    "MBPP-style JSONL).",
    source=_BUILTIN,
    nondeterministic=True,
)
