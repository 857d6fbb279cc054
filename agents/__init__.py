"""Agents: GRPO and the baselines it is compared with, chosen by name (``--agent grpo``).

Each agent registers itself here with ``grpo_env.register_agent``; third-party agents come in
through the ``grpo_env.agents`` entry-point group. Entry points are ``"module:Class"`` strings,
so nothing heavy is imported until an agent is made.

Every learning agent but PPO is critic-free and shares one update (``policy_gradient``); they
differ in their advantages and in where the KL to the reference goes.
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
register_agent(
    "ppo",
    "grpo_env.agents.ppo:PPOAgent",
    description="PPO with a separate critic (value model, own weights), GAE, value clipping, "
    "per-token KL penalty in the reward.",
    source=_BUILTIN,
)
register_agent(
    "rloo",
    "grpo_env.agents.rloo:RLOOAgent",
    description="REINFORCE leave-one-out: the other samples' mean reward as baseline, KL in "
    "the reward.",
    source=_BUILTIN,
)
register_agent(
    "reinforce_pp",
    "grpo_env.agents.reinforce_pp:ReinforcePPAgent",
    description="REINFORCE++: token-level KL in the reward, returns normalised over the batch.",
    source=_BUILTIN,
)
register_agent(
    "reinforce_pp_baseline",
    "grpo_env.agents.reinforce_pp:ReinforcePPBaselineAgent",
    description="REINFORCE++-baseline: group-mean baseline, batch std, k2 KL in the loss.",
    source=_BUILTIN,
)
register_agent(
    "dr_grpo",
    "grpo_env.agents.dr_grpo:DrGRPOAgent",
    description="Dr. GRPO: GRPO without std scaling or per-length normalisation, no KL.",
    source=_BUILTIN,
)
register_agent(
    "dapo",
    "grpo_env.agents.dapo:DAPOAgent",
    description="DAPO: GRPO with clip-higher, token-mean loss, dynamic sampling, overlong "
    "reward shaping, no KL.",
    source=_BUILTIN,
)
