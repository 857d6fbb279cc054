"""``guess-number``: a small multi-turn game with feedback after every turn.

The env picks a secret whole number in ``[low, high]``; the prompt says only the range. Each
model turn is a guess (the first whole number in the turn); the env answers ``higher`` or
``lower``, or ends the episode when the guess is right. ``max_turns`` guesses at most (the
default range 1..7 with 3 turns is exactly what binary search needs).

Reward: 1 when the secret was found, else 0 (component ``solved``). Per-turn rewards (process
supervision, and the return with ``sum_turn_rewards=True``): 1 for the right guess, 0 for a
wrong guess in range, -1 for a turn that is not a number in range or repeats a guess. The
per-episode state counts ``invalid_turns``.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from grpo_env import Task, VerifiableEnv, VerifyResult

_NUMBER = re.compile(r"-?\d+")


def read_guess(text: str) -> int | None:
    """The first whole number in a turn, or None."""
    match = _NUMBER.search(text)
    return int(match.group()) if match else None


class GuessNumberEnv(VerifiableEnv):
    """Guess the secret number with higher/lower feedback (see the module docstring)."""

    def __init__(self, low: int = 1, high: int = 7, *, max_turns: int = 3, **kwargs: Any):
        if high <= low:
            raise ValueError(f"need low < high, got {low}..{high}")
        self.low, self.high = low, high
        prompt = f"guess a number from {low} to {high}"
        tasks = [Task(id=f"guess-{n}", prompt=prompt, answer=n) for n in range(low, high + 1)]
        super().__init__(kwargs.pop("tasks", tasks), max_turns=max_turns, **kwargs)

    def initial_state(self, task: Task) -> dict[str, Any]:
        return {"guesses": [], "invalid_turns": 0}

    def env_response(self, task: Task, messages: list[dict[str, str]], state: dict[str, Any]):
        guess = read_guess(messages[-1]["content"])
        if guess == task.answer:
            return None
        if guess is None or not self.low <= guess <= self.high:
            return f"a number from {self.low} to {self.high} please"
        return "higher" if guess < task.answer else "lower"

    def turn_reward(self, task: Task, messages: list[dict[str, str]], state: dict[str, Any]):
        guess = read_guess(messages[-1]["content"])
        repeated = guess in state["guesses"]
        state["guesses"].append(guess)
        if guess == task.answer:
            return 1.0
        if guess is None or repeated or not self.low <= guess <= self.high:
            state["invalid_turns"] += 1
            return -1.0
        return 0.0

    def verify_episode(self, task: Task, messages: list[dict[str, str]], state: dict[str, Any]):
        turns = [m["content"] for m in messages if m["role"] == "assistant"]
        solved = bool(turns) and read_guess(turns[-1]) == task.answer
        return VerifyResult(
            score=float(solved),
            components={"solved": float(solved)},
            details={"guesses": [read_guess(t) for t in turns], "secret": task.answer},
        )

    def verify(self, task: Task, completion: str) -> VerifyResult:
        # A single completion is a one-turn episode.
        solved = read_guess(completion) == task.answer
        return VerifyResult(score=float(solved), components={"solved": float(solved)})

    def gold_action(self, task: Task, messages: list[dict[str, str]]) -> str:
        """Binary search over what the feedback so far leaves open."""
        low, high = self.low, self.high
        for turn, reply in pairwise(messages):
            if turn["role"] != "assistant":
                continue
            guess = read_guess(turn["content"])
            if guess is None:
                continue
            if reply["content"] == "higher":
                low = max(low, guess + 1)
            elif reply["content"] == "lower":
                high = min(high, guess - 1)
        return str((low + high) // 2)

    def gold_completion(self, task: Task) -> str:
        return str(task.answer)
