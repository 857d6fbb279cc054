"""The policy room: the model and everything that samples from it or scores its tokens.

Loading (embedded default model, hub ids, LoRA or full fine-tuning), the generation backends
(``hf``'s own sampling loop and ``generate``, ``vllm``), per-token logprobs, the completion mask,
the frozen reference, numeric precision, and policies saved by a run. Imports the contracts
(``grpo_env`` top level) only.
"""
