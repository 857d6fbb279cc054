"""grpo-env: reinforcement learning of language models with verifiable rewards.

Tasks are Gymnasium environments (``grpo_env.make("math-chain-sum")``) whose reward is a
verifier's verdict; agents (``grpo_env.agents``) train a policy against them.
"""

from grpo_env.env import EpisodeError, VerifiableEnv
from grpo_env.registry import (
    Spec,
    UnknownIdError,
    agents,
    envs,
    make,
    make_agent,
    register,
    register_agent,
)
from grpo_env.rubric import Criterion, Rubric
from grpo_env.spaces import ChatSpace, UnicodeText
from grpo_env.tasks import (
    JsonlTaskSource,
    ListTaskSource,
    ReasoningGymSource,
    TaskFieldError,
    TaskFileError,
    TaskSource,
)
from grpo_env.types import Episode, Group, Message, Status, Task, VerifyResult

__version__ = "0.1.0"

__all__ = [
    "ChatSpace",
    "Criterion",
    "Episode",
    "EpisodeError",
    "Group",
    "JsonlTaskSource",
    "ListTaskSource",
    "Message",
    "ReasoningGymSource",
    "Rubric",
    "Spec",
    "Status",
    "Task",
    "TaskFieldError",
    "TaskFileError",
    "TaskSource",
    "UnicodeText",
    "UnknownIdError",
    "VerifiableEnv",
    "VerifyResult",
    "__version__",
    "agents",
    "envs",
    "make",
    "make_agent",
    "register",
    "register_agent",
]

# Register the built-in and plugin environments now (cheap: factories are imported only when
# an env is made), so that `gymnasium.make("grpo_env:format-v0")` finds them.
envs.ensure_loaded()
