"""The evaluation room: how good a policy is, and how agents compare.

Greedy held-out accuracy for the trainer, sampled evaluation (pass@k, maj@k) for ``grpo-env
eval`` and ``rescore``, ``grpo-env compare`` and its report, and the sample completions shown
beside every accuracy. Imports the contracts, the policy and the training rooms.
"""
