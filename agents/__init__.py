"""Agents: GRPO and the baselines it is compared with, chosen by name (``--agent grpo``).

Each agent registers itself here with ``grpo_env.register_agent``; third-party agents come in
through the ``grpo_env.agents`` entry-point group. Entry points are ``"module:Class"`` strings,
so nothing heavy is imported until an agent is made.

Every learning agent but PPO is critic-free; all but online DPO (a pairwise loss) share one
update (``policy_gradient``): they differ in their advantages (or, for RFT, the coefficient of
the log-likelihood) and in where the KL to the reference goes.
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
register_agent(
    "online_rft",
    "grpo_env.agents.online_rft:OnlineRFTAgent",
    description="Online rejection-sampling fine-tuning: maximise the likelihood of the samples "
    "whose reward passes a threshold (or the group's best); no reference, no critic.",
    source=_BUILTIN,
)
register_agent(
    "rft",
    "grpo_env.agents.rft:RFTAgent",
    description="Offline RFT: samples from the initial policy for the run's budget, then "
    "fine-tunes on the kept samples for several epochs.",
    source=_BUILTIN,
)
register_agent(
    "online_dpo",
    "grpo_env.agents.online_dpo:OnlineDPOAgent",
    description="Online DPO: best vs worst sample of each group as a preference pair, DPO loss "
    "against the frozen reference.",
    source=_BUILTIN,
)
register_agent(
    "remax",
    "grpo_env.agents.remax:ReMaxAgent",
    description="ReMax: REINFORCE with the reward of the prompt's greedy completion as "
    "baseline (one extra greedy sample per prompt).",
    source=_BUILTIN,
)
