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

# ----- math (issue 3) -----------------------------------------------------------------------
_MATH = "grpo_env.environments.math.env"

envs.register(
    "math-v0",
    f"{_MATH}:MathEnv",
    description="Math problems with a reference answer (GSM8K or MATH form JSONL: path=...; "
    "shipped set by default, split='test' held out). Exact answer checking, hard timeouts.",
    source=_BUILTIN,
)
envs.register(
    "math-gsm-symbolic-v0",
    f"{_MATH}:ReasoningGymMathEnv",
    dataset="gsm_symbolic",
    description="reasoning-gym gsm_symbolic word problems (split='test' held out; size, seed).",
    source=_BUILTIN,
)
envs.register(
    "math-basic-arithmetic-v0",
    f"{_MATH}:ReasoningGymMathEnv",
    dataset="basic_arithmetic",
    description="reasoning-gym basic_arithmetic expressions (split='test' held out).",
    source=_BUILTIN,
)
envs.register(
    "math-chain-sum-v0",
    f"{_MATH}:ReasoningGymMathEnv",
    dataset="chain_sum",
    description="reasoning-gym chain_sum additions and subtractions (min_terms, max_terms, "
    "min_digits, max_digits; split='test' held out).",
    source=_BUILTIN,
)
envs.register(
    "math-countdown-v0",
    f"{_MATH}:ReasoningGymMathEnv",
    dataset="countdown",
    description="reasoning-gym countdown: reach the target with the given numbers (scored by "
    "reasoning-gym's score_answer, full marks only; split='test' held out).",
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

# ----- multi-turn and tools (issue 13) ------------------------------------------------------

envs.register(
    "guess-number-v0",
    "grpo_env.environments.guess_number:GuessNumberEnv",
    description="Multi-turn game: guess a secret number in low..high (default 1..7) with "
    "higher/lower feedback, max_turns guesses (default 3). Reward 1 when found; per-turn "
    "rewards 1 / 0 / -1 (right / wrong / invalid or repeated) for process supervision.",
    source=_BUILTIN,
)
envs.register(
    "math-python-v0",
    "grpo_env.environments.math_python:MathPythonEnv",
    description="Math problems with a `python` tool run in the Docker sandbox (stdout/stderr "
    "back, capped, timeout); the final answer is scored by the math checker. Shipped set by "
    "default, path=... or dataset='gsm_symbolic' (reasoning-gym); max_turns=4.",
    source=_BUILTIN,
    nondeterministic=True,
)
envs.register(
    "code-feedback-v0",
    "grpo_env.environments.code_feedback:CodeFeedbackEnv",
    description="A code-unittest task over several attempts (max_turns=3): after a failing "
    "attempt the env says which tests failed and why; reward = share of tests the final "
    "attempt passes (turn_penalty=... penalises extra turns). Beginner set by default.",
    source=_BUILTIN,
    nondeterministic=True,
)
