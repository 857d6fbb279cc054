"""The training room: the loop that turns an environment and an agent into a trained policy.

Run configuration, rollout (tasks -> scored groups), the trainer, checkpoints and run logs,
guards against runs that cannot learn, and the torch.distributed set-up. Imports the contracts
and the policy room.
"""
