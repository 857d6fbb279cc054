"""Math: answer checking that cannot be gamed and never hangs, and the math environments.

``check_answer(gold, completion)`` scores a completion's final answer against a reference
(extraction, exact equivalence, hard timeout in a worker process); ``MathEnv`` (``math-v0``)
and ``ReasoningGymMathEnv`` (``math-chain-sum-v0``...) turn it into rewards.

Importing this package is cheap: sympy and math-verify are imported in the worker
processes only.
"""

from grpo_env.environments.math.env import (
    MATH_FORMAT_SYSTEM_PROMPT,
    MATH_SYSTEM_PROMPT,
    MathEnv,
    ReasoningGymMathEnv,
)
from grpo_env.environments.math.extraction import Extraction, extract_answer, reference_answer
from grpo_env.environments.math.pool import (
    DEFAULT_TIMEOUT_S,
    CheckerPool,
    PoolUnavailable,
    check_answer,
    shared_pool,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MATH_FORMAT_SYSTEM_PROMPT",
    "MATH_SYSTEM_PROMPT",
    "CheckerPool",
    "Extraction",
    "MathEnv",
    "PoolUnavailable",
    "ReasoningGymMathEnv",
    "check_answer",
    "extract_answer",
    "reference_answer",
    "shared_pool",
]
