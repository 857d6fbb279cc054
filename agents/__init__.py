"""Agents: GRPO and the baselines it is compared with, chosen by name (``--agent grpo``).

Each agent registers itself here with ``grpo_env.register_agent``; third-party agents come in
through the ``grpo_env.agents`` entry-point group. Entry points are ``"module:Class"`` strings,
so nothing heavy is imported until an agent is made.
"""

from grpo_env.registry import register_agent

_BUILTIN = "built-in"

register_agent(
    "grpo",
    "grpo_env.agents.grpo:GRPOAgent",
    description="Group Relative Policy Optimization: group-mean baseline, clipped surrogate, "
    "k3 KL to the reference.",
    source=_BUILTIN,
)
register_agent(
    "frozen",
    "grpo_env.agents.frozen:FrozenAgent",
    description="Control: samples from the initial policy, never updates.",
    source=_BUILTIN,
)
