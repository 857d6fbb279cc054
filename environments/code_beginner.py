"""Beginner Python tasks, generated from a seed: a code set a 135M model solves some of the time.

HumanEval is far beyond SmolLM2-135M: nearly every group scores 0 for every sample, and GRPO
learns nothing from such groups. These tasks grade up from one-line functions:

- level 1: one arithmetic step (``x + k``, ``x * k``, is ``x`` even, the larger of two);
- level 2: strings and lists (reverse, upper-case, count a letter, sum, maximum, length);
- level 3: a loop or a condition (count positives, keep evens, factorial, palindrome), and
  small stdin/stdout programs (read two numbers and print their sum, read a word and print it
  reversed).

Every task has a reference solution and 4 tests (asserts, or stdin/stdout cases). Constants,
names and test inputs come from the seed. The held-out ``test`` split never shares a prompt
with ``train``: its constants come from other ranges, its functions have other names and its
programs do other sums (same kinds of task, none seen in training).
"""
# ruff: noqa: E501  (the task templates are a table, one entry per line)

from __future__ import annotations

import operator
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from grpo_env.sandbox.models import IOCase, IOSuite, TestCase, TestSuite
from grpo_env.tasks import ListTaskSource, TaskSource
from grpo_env.types import Task

TESTS_PER_TASK = 4
TRAIN_SIZE, TEST_SIZE = 600, 120
_SPLIT_SEED = {"train": 0, "test": 1_000_003}
FUNCTION_PROMPT = (
    "Write a Python function `{signature}` that {does}. Reply with the function in a single "
    "```python code block."
)
PROGRAM_PROMPT = (
    "Write a Python program that {does}. Reply with the program in a single ```python code block."
)


@dataclass(frozen=True)
class Template:
    level: int
    make: Callable[[Any], dict[str, Any]]


def _ints(r: random.Random, n: int, lo: int = -20, hi: int = 20) -> list[int]:
    return [r.randint(lo, hi) for _ in range(n)]


def _word(r: _Rng) -> str:
    return "".join(r.choice("abcdeor") for _ in range(r.randint(2, 7)))


def _fn(name: str, params: str, does: str, body: str, ref: Callable, args: Callable) -> dict:
    return {
        "kind": "function", "name": name, "signature": f"{name}({params})", "does": does,
        "solution": f"def {name}({params}):\n    {body}\n", "ref": ref, "args": args,
    }  # fmt: skip


class _Rng(random.Random):
    """A seeded generator that knows whether it draws the held-out split."""

    held_out = False

    def pick(self, train: Any, test: Any) -> Any:
        return test if self.held_out else train


def _add_k(r: _Rng) -> dict:
    k = r.randint(*r.pick((1, 6), (7, 9)))
    return _fn(f"add_{k}", "x", f"returns x plus {k}", f"return x + {k}",
               lambda x: x + k, lambda: (r.randint(-50, 50),))  # fmt: skip


def _times_k(r: _Rng) -> dict:
    k = r.randint(*r.pick((2, 6), (7, 9)))
    return _fn(f"times_{k}", "x", f"returns x multiplied by {k}", f"return x * {k}",
               lambda x: x * k, lambda: (r.randint(-20, 20),))  # fmt: skip


def _is_even(r: _Rng) -> dict:
    return _fn(r.pick("is_even", "even"), "n", "returns True if n is even and False otherwise",
               "return n % 2 == 0", lambda n: n % 2 == 0, lambda: (r.randint(-30, 30),))  # fmt: skip


def _larger(r: _Rng) -> dict:
    return _fn(r.pick("larger", "bigger_of"), "a, b", "returns the larger of a and b", "return max(a, b)",
               max, lambda: tuple(_ints(r, 2)))  # fmt: skip


def _reverse(r: _Rng) -> dict:
    return _fn(r.pick("reverse_string", "backwards"), "s", "returns the string s reversed", "return s[::-1]",
               lambda s: s[::-1], lambda: (_word(r),))  # fmt: skip


def _upper(r: _Rng) -> dict:
    return _fn(r.pick("shout", "to_upper"), "s", "returns s in upper case", "return s.upper()",
               str.upper, lambda: (_word(r),))  # fmt: skip


def _count_letter(r: _Rng) -> dict:
    c = r.choice(r.pick("ae", "o"))
    return _fn(f"count_{c}", "s", f"returns how many times the letter '{c}' occurs in s",
               f"return s.count({c!r})", lambda s: s.count(c), lambda: (_word(r),))  # fmt: skip


def _sum_list(r: _Rng) -> dict:
    return _fn(r.pick("total", "add_all"), "numbers", "returns the sum of the list numbers", "return sum(numbers)",
               sum, lambda: (_ints(r, r.randint(0, 5)),))  # fmt: skip


def _max_list(r: _Rng) -> dict:
    return _fn(r.pick("biggest", "maximum"), "numbers", "returns the largest number in the non-empty list numbers",
               "return max(numbers)", max, lambda: (_ints(r, r.randint(1, 5)),))  # fmt: skip


def _length(r: _Rng) -> dict:
    return _fn(r.pick("size", "count_items"), "items", "returns the number of elements in the list items",
               "return len(items)", len, lambda: (_ints(r, r.randint(0, 6)),))  # fmt: skip


def _count_positive(r: _Rng) -> dict:
    return _fn(r.pick("count_positive", "positives"), "numbers", "returns how many numbers in the list are greater than 0",
               "return sum(1 for x in numbers if x > 0)",
               lambda xs: sum(1 for x in xs if x > 0), lambda: (_ints(r, r.randint(0, 6)),))  # fmt: skip


def _evens(r: _Rng) -> dict:
    return _fn(r.pick("keep_even", "only_even"), "numbers", "returns a list of the even numbers in numbers, in order",
               "return [x for x in numbers if x % 2 == 0]",
               lambda xs: [x for x in xs if x % 2 == 0], lambda: (_ints(r, r.randint(0, 6)),))  # fmt: skip


def _factorial(r: _Rng) -> dict:
    import math

    return _fn(r.pick("factorial", "fact"), "n", "returns n! (the product 1 * 2 * ... * n; 0! is 1)",
               "import math\n    return math.factorial(n)", math.factorial,
               lambda: (r.randint(0, 8),))  # fmt: skip


def _palindrome(r: _Rng) -> dict:
    def arg() -> tuple[str]:
        w = _word(r)
        return (w + w[::-1][r.randint(0, 1) :] if r.random() < 0.5 else w,)

    return _fn(r.pick("is_palindrome", "palindrome"), "s", "returns True if s reads the same backwards, else False",
               "return s == s[::-1]", lambda s: s == s[::-1], arg)  # fmt: skip


def _program_sum(r: _Rng) -> dict:
    word, op, fn = r.pick(("sum", "+", operator.add), ("product", "*", operator.mul))
    return {
        "kind": "program", "does": f"reads two integers on one line and prints their {word}",
        "solution": f"a, b = map(int, input().split())\nprint(a {op} b)\n",
        "io": lambda: (lambda a, b: (f"{a} {b}\n", f"{fn(a, b)}\n"))(*_ints(r, 2, -99, 99)),
    }  # fmt: skip


def _program_reverse(r: _Rng) -> dict:
    does, code, ref = r.pick(
        ("reads a word and prints it reversed", "print(input()[::-1])\n", lambda w: w[::-1]),
        ("reads a word and prints it in upper case", "print(input().upper())\n", str.upper),
    )
    return {
        "kind": "program", "does": does, "solution": code,
        "io": lambda: (lambda w: (f"{w}\n", f"{ref(w)}\n"))(_word(r)),
    }  # fmt: skip


TEMPLATES = [
    *(Template(1, m) for m in (_add_k, _times_k, _is_even, _larger)),
    *(Template(2, m) for m in (_reverse, _upper, _count_letter, _sum_list, _max_list, _length)),
    *(Template(3, m) for m in (_count_positive, _evens, _factorial, _palindrome)),
    *(Template(3, m) for m in (_program_sum, _program_reverse)),
]


def beginner_task(seed: int, held_out: bool = False) -> Task:
    """Task number ``seed``: its template, constants and tests all follow from the seed."""
    r = _Rng(seed)
    r.held_out = held_out
    template = TEMPLATES[r.randrange(len(TEMPLATES))]
    spec = template.make(r)
    if spec["kind"] == "program":
        pairs = [spec["io"]() for _ in range(TESTS_PER_TASK)]
        cases = [IOCase(name=f"case {i + 1}", input=a, output=b) for i, (a, b) in enumerate(pairs)]
        tests: dict[str, Any] = IOSuite(cases=cases).model_dump()
        prompt = PROGRAM_PROMPT.format(does=spec["does"])
    else:
        calls = []
        for _ in range(TESTS_PER_TASK):
            args = spec["args"]()
            call = f"{spec['name']}({', '.join(map(repr, args))})"
            calls.append(TestCase(name=call[:80], code=f"assert {call} == {spec['ref'](*args)!r}"))
        tests = TestSuite(cases=calls, entry_points=[spec["name"]]).model_dump()
        prompt = FUNCTION_PROMPT.format(signature=spec["signature"], does=spec["does"])
    return Task(
        id=f"beginner-{'test-' if held_out else ''}{seed}",
        prompt=prompt,
        answer=spec["solution"],
        tests=tests,
        metadata={"source": "beginner", "level": template.level, "kind": spec["kind"]},
    )


def beginner_tasks(
    split: Literal["train", "test"] = "train", size: int | None = None
) -> TaskSource:
    """The seeded beginner set: ``train`` (600 tasks) or the held-out ``test`` (120)."""
    if split not in _SPLIT_SEED:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    count = size if size is not None else (TRAIN_SIZE if split == "train" else TEST_SIZE)
    base = _SPLIT_SEED[split]
    return ListTaskSource(
        [beginner_task(base + i, held_out=split == "test") for i in range(count)],
        name=f"beginner:{split}",
    )
