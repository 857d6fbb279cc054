"""A TACO/APPS-style set of 50 small stdin/stdout tasks with reference programs.

Each task: a statement, a reference program, and a seeded input generator. ``build`` writes
``bench/data/stdio_tasks.jsonl`` in the APPS shape (``question``, ``input_output`` with
``inputs``/``outputs``, ``solutions``); the expected outputs come from running the reference on
this machine (our own programs, as TACO's outputs come from its reference solutions).

    python bench/stdio_tasks.py            # (re)writes bench/data/stdio_tasks.jsonl
"""

# ruff: noqa: E501  (the reference programs are data, one string each)
from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).parent / "data" / "stdio_tasks.jsonl"
CASES = 5


def ints(r: random.Random, n: int, lo: int = -100, hi: int = 100) -> str:
    return " ".join(str(r.randint(lo, hi)) for _ in range(n))


def counted(r: random.Random, lo: int = -100, hi: int = 100) -> str:
    n = r.randint(1, 8)
    return f"{n}\n{ints(r, n, lo, hi)}\n"


def word(r: random.Random, n: int | None = None) -> str:
    return "".join(r.choice("abcde") for _ in range(n or r.randint(1, 10)))


Gen = Callable[[random.Random], str]
TASKS: list[tuple[str, str, str, Gen]] = [
    (
        "sum2",
        "Print a + b.",
        "a, b = map(int, input().split())\nprint(a + b)\n",
        lambda r: ints(r, 2) + "\n",
    ),
    (
        "diff2",
        "Print a - b.",
        "a, b = map(int, input().split())\nprint(a - b)\n",
        lambda r: ints(r, 2) + "\n",
    ),
    (
        "prod2",
        "Print a * b.",
        "a, b = map(int, input().split())\nprint(a * b)\n",
        lambda r: ints(r, 2) + "\n",
    ),
    (
        "max_list",
        "n, then n integers: print the largest.",
        "input()\nprint(max(map(int, input().split())))\n",
        counted,
    ),
    (
        "min_list",
        "n, then n integers: print the smallest.",
        "input()\nprint(min(map(int, input().split())))\n",
        counted,
    ),
    (
        "sum_list",
        "n, then n integers: print their sum.",
        "input()\nprint(sum(map(int, input().split())))\n",
        counted,
    ),
    (
        "count_pos",
        "n, then n integers: print how many are positive.",
        "input()\nprint(sum(1 for x in map(int, input().split()) if x > 0))\n",
        counted,
    ),
    (
        "count_even",
        "n, then n integers: print how many are even.",
        "input()\nprint(sum(1 for x in map(int, input().split()) if x % 2 == 0))\n",
        counted,
    ),
    (
        "sorted_list",
        "n, then n integers: print them sorted ascending.",
        "input()\nprint(*sorted(map(int, input().split())))\n",
        counted,
    ),
    (
        "reversed_list",
        "n, then n integers: print them in reverse order.",
        "input()\nprint(*reversed(input().split()))\n",
        counted,
    ),
    (
        "range_list",
        "n, then n integers: print max - min.",
        "input()\nxs = list(map(int, input().split()))\nprint(max(xs) - min(xs))\n",
        counted,
    ),
    (
        "mean_list",
        "n, then n integers: print the mean with 3 decimals.",
        "n = int(input())\nprint(f'{sum(map(int, input().split())) / n:.3f}')\n",
        counted,
    ),
    (
        "distinct",
        "n, then n integers: print how many distinct values.",
        "input()\nprint(len(set(input().split())))\n",
        lambda r: counted(r, 0, 5),
    ),
    (
        "second_max",
        "n, then n integers (n >= 2): print the second largest value in sorted order.",
        "input()\nprint(sorted(map(int, input().split()))[-2])\n",
        lambda r: f"3\n{ints(r, 3)}\n",
    ),
    (
        "prefix_sums",
        "n, then n integers: print the prefix sums.",
        "import itertools\ninput()\nprint(*itertools.accumulate(map(int, input().split())))\n",
        counted,
    ),
    (
        "reverse_word",
        "A word: print it reversed.",
        "print(input()[::-1])\n",
        lambda r: word(r) + "\n",
    ),
    (
        "upper",
        "A word: print it in upper case.",
        "print(input().upper())\n",
        lambda r: word(r) + "\n",
    ),
    ("length", "A word: print its length.", "print(len(input()))\n", lambda r: word(r) + "\n"),
    (
        "palindrome",
        "A word: print YES if it is a palindrome, else NO.",
        "s = input()\nprint('YES' if s == s[::-1] else 'NO')\n",
        lambda r: r.choice(["aba", "abba", "abc", "a", "ab"]) + "\n",
    ),
    (
        "vowels",
        "A word: print the number of vowels (a, e).",
        "print(sum(c in 'ae' for c in input()))\n",
        lambda r: word(r) + "\n",
    ),
    (
        "count_char",
        "A word and a letter: print how often the letter occurs.",
        "s, c = input().split()\nprint(s.count(c))\n",
        lambda r: f"{word(r)} {r.choice('abcde')}\n",
    ),
    (
        "first_last",
        "A word: print its first and last letters.",
        "s = input()\nprint(s[0] + s[-1])\n",
        lambda r: word(r) + "\n",
    ),
    (
        "dedupe",
        "A word: print it with consecutive duplicate letters collapsed.",
        "s = input()\nout = s[0]\nfor c in s[1:]:\n    if c != out[-1]:\n        out += c\nprint(out)\n",
        lambda r: word(r) + "\n",
    ),
    (
        "rle",
        "A word: print its run-length encoding (letter then count).",
        "import itertools\nprint(''.join(f'{k}{len(list(g))}' for k, g in itertools.groupby(input())))\n",
        lambda r: word(r) + "\n",
    ),
    (
        "words_count",
        "A line of words: print the number of words.",
        "print(len(input().split()))\n",
        lambda r: " ".join(word(r) for _ in range(r.randint(1, 6))) + "\n",
    ),
    (
        "longest_word",
        "A line of words: print the longest (first if tied).",
        "print(max(input().split(), key=len))\n",
        lambda r: " ".join(word(r) for _ in range(r.randint(1, 6))) + "\n",
    ),
    (
        "sort_words",
        "A line of words: print them sorted.",
        "print(*sorted(input().split()))\n",
        lambda r: " ".join(word(r) for _ in range(r.randint(1, 6))) + "\n",
    ),
    (
        "anagram",
        "Two words: print YES if they are anagrams, else NO.",
        "a, b = input().split()\nprint('YES' if sorted(a) == sorted(b) else 'NO')\n",
        lambda r: r.choice(["abc cab", "abc abd", "aab aba", "a b", "ab ba"]) + "\n",
    ),
    (
        "factorial",
        "n (0..12): print n!.",
        "import math\nprint(math.factorial(int(input())))\n",
        lambda r: f"{r.randint(0, 12)}\n",
    ),
    (
        "fib",
        "n (0..40): print the n-th Fibonacci number (F0 = 0, F1 = 1).",
        "n = int(input())\na, b = 0, 1\nfor _ in range(n):\n    a, b = b, a + b\nprint(a)\n",
        lambda r: f"{r.randint(0, 40)}\n",
    ),
    (
        "gcd",
        "Two positive integers: print their gcd.",
        "import math\na, b = map(int, input().split())\nprint(math.gcd(a, b))\n",
        lambda r: ints(r, 2, 1, 1000) + "\n",
    ),
    (
        "lcm",
        "Two positive integers: print their lcm.",
        "import math\na, b = map(int, input().split())\nprint(a * b // math.gcd(a, b))\n",
        lambda r: ints(r, 2, 1, 100) + "\n",
    ),
    (
        "is_prime",
        "n >= 1: print YES if n is prime, else NO.",
        "n = int(input())\nprint('YES' if n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1)) else 'NO')\n",
        lambda r: f"{r.randint(1, 200)}\n",
    ),
    (
        "digit_sum",
        "A non-negative integer: print the sum of its digits.",
        "print(sum(map(int, input().strip())))\n",
        lambda r: f"{r.randint(0, 10**9)}\n",
    ),
    (
        "binary",
        "A non-negative integer: print it in binary.",
        "print(bin(int(input()))[2:])\n",
        lambda r: f"{r.randint(0, 1000)}\n",
    ),
    (
        "power_mod",
        "a, b, m: print a^b mod m.",
        "a, b, m = map(int, input().split())\nprint(pow(a, b, m))\n",
        lambda r: f"{r.randint(0, 100)} {r.randint(0, 100)} {r.randint(1, 97)}\n",
    ),
    (
        "square_sum",
        "n: print 1^2 + ... + n^2.",
        "n = int(input())\nprint(sum(i * i for i in range(1, n + 1)))\n",
        lambda r: f"{r.randint(0, 100)}\n",
    ),
    (
        "divisors",
        "n >= 1: print the number of its divisors.",
        "n = int(input())\nprint(sum(1 for d in range(1, n + 1) if n % d == 0))\n",
        lambda r: f"{r.randint(1, 500)}\n",
    ),
    (
        "collatz",
        "n >= 1: print the number of Collatz steps to reach 1.",
        "n = int(input())\nk = 0\nwhile n != 1:\n    n = n // 2 if n % 2 == 0 else 3 * n + 1\n    k += 1\nprint(k)\n",
        lambda r: f"{r.randint(1, 300)}\n",
    ),
    (
        "triangle",
        "Three side lengths: print YES if they form a non-degenerate triangle.",
        "a, b, c = sorted(map(int, input().split()))\nprint('YES' if a + b > c else 'NO')\n",
        lambda r: ints(r, 3, 1, 10) + "\n",
    ),
    (
        "leap",
        "A year: print YES if it is a leap year.",
        "y = int(input())\nprint('YES' if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 'NO')\n",
        lambda r: f"{r.choice([1900, 2000, 2004, 2023, 2100, r.randint(1000, 3000)])}\n",
    ),
    (
        "abs_diff_pairs",
        "n, then n integers: print the sum of |a_i - a_j| over i < j.",
        "input()\nxs = list(map(int, input().split()))\nprint(sum(abs(a - b) for i, a in enumerate(xs) for b in xs[i + 1:]))\n",
        counted,
    ),
    (
        "matrix_sum",
        "r c, then r rows of c integers: print the sum of each row, one per line.",
        "r, c = map(int, input().split())\nfor _ in range(r):\n    print(sum(map(int, input().split())))\n",
        lambda r: "2 3\n" + ints(r, 3) + "\n" + ints(r, 3) + "\n",
    ),
    (
        "transpose",
        "r c, then an r x c matrix: print its transpose.",
        "r, c = map(int, input().split())\nm = [input().split() for _ in range(r)]\nfor row in zip(*m):\n    print(*row)\n",
        lambda r: "2 3\n" + ints(r, 3) + "\n" + ints(r, 3) + "\n",
    ),
    (
        "multi_case",
        "t, then t lines of two integers: print each sum on its own line.",
        "t = int(input())\nfor _ in range(t):\n    a, b = map(int, input().split())\n    print(a + b)\n",
        lambda r: "3\n" + "\n".join(ints(r, 2) for _ in range(3)) + "\n",
    ),
    (
        "max_subarray",
        "n, then n integers: print the largest sum of a non-empty contiguous run.",
        "input()\nbest = cur = None\nfor x in map(int, input().split()):\n    cur = x if cur is None or cur < 0 else cur + x\n    best = cur if best is None else max(best, cur)\nprint(best)\n",
        counted,
    ),
    (
        "two_sum_exists",
        "n and a target, then n integers: print YES if two of them sum to target.",
        "n, t = map(int, input().split())\nxs = list(map(int, input().split()))\nprint('YES' if any(xs[i] + xs[j] == t for i in range(n) for j in range(i + 1, n)) else 'NO')\n",
        lambda r: f"4 {r.randint(-5, 5)}\n{ints(r, 4, -5, 5)}\n",
    ),
    (
        "balanced",
        "A string of parentheses: print YES if balanced.",
        "d = 0\nok = True\nfor c in input().strip():\n    d += 1 if c == '(' else -1\n    ok = ok and d >= 0\nprint('YES' if ok and d == 0 else 'NO')\n",
        lambda r: "".join(r.choice("()") for _ in range(r.randint(1, 8))) + "\n",
    ),
    (
        "caesar",
        "A shift k and a lowercase word: print the word shifted by k.",
        "k, s = input().split()\nprint(''.join(chr((ord(c) - 97 + int(k)) % 26 + 97) for c in s))\n",
        lambda r: f"{r.randint(0, 25)} {word(r)}\n",
    ),
    (
        "float_div",
        "Two integers a and b (b != 0): print a / b (1e-6 error allowed).",
        "a, b = map(int, input().split())\nprint(a / b)\n",
        lambda r: f"{r.randint(-100, 100)} {r.choice([3, 7, -9, 11])}\n",
    ),
]


def run_reference(program: str, stdin: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-I", "-c", program],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return proc.stdout


def build(seed: int = 0) -> list[dict]:
    rows = []
    for name, question, program, gen in TASKS:
        r = random.Random(f"{seed}-{name}")
        inputs = [gen(r) for _ in range(CASES)]
        outputs = [run_reference(program, i) for i in inputs]
        rows.append(
            {
                "problem_id": name,
                "question": question,
                "input_output": json.dumps({"inputs": inputs, "outputs": outputs}),
                "solutions": json.dumps([program]),
            }
        )
    return rows


if __name__ == "__main__":
    rows = build()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("".join(json.dumps(row) + "\n" for row in rows))
    print(f"wrote {len(rows)} tasks to {OUT}")
