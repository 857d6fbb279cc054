"""Agents: GRPO and the baselines it is compared with, chosen by name (``--agent grpo``).

Each agent registers itself here with ``grpo_env.register_agent``; third-party agents come in
through the ``grpo_env.agents`` entry-point group.
"""
