"""The sandbox on the test formats people have, checked end to end in the Docker sandbox:

- ``humaneval_check_files``: each of the 164 HumanEval problems given the way HumanEval ships it
  (the solution = prompt + canonical solution; the tests = its ``check`` function plus
  ``check(entry_point)``), auto-detected as a ``check`` file. Every canonical solution must
  pass; two wrong versions of each must fail (``return None`` as the body; the canonical
  answer perturbed: a bool negated, a number + 1, a string or list extended).
- ``stdio_tasks``: the 50 stdin/stdout tasks of ``bench/data/stdio_tasks.jsonl`` (APPS shape,
  loaded with the ``apps`` loader): every reference program must pass; mutants of it (first
  ``+`` made ``-``, first comparison flipped, first integer constant + 1, first builtin
  swapped for its twin (max/min, sum/len, sorted/reversed, upper/lower), first slice step
  negated, one extra line printed) should fail. A mutant that still passes is listed: it may
  be equivalent on the task's 5 inputs (weak tests, as real datasets have).

Prints one JSON object. Run it alone:
``flock /tmp/grpo-heavy.lock python bench/code_formats_check.py``.
"""

from __future__ import annotations

import ast
import json
import sys
import time
from pathlib import Path
from typing import Any

from grpo_env.environments.code_datasets import code_dataset
from grpo_env.environments.code_tasks import _humaneval_problems
from grpo_env.sandbox import DockerSandbox, ExecutionRequest, IOSuite, Limits, TestSuite
from grpo_env.sandbox.formats import load_suite

STDIO_TASKS = Path(__file__).parent / "data" / "stdio_tasks.jsonl"
PERTURB = """
_grpo_original = {entry}


def {entry}(*args, **kwargs):
    result = _grpo_original(*args, **kwargs)
    if isinstance(result, bool):
        return not result
    if isinstance(result, int | float):
        return result + 1
    if isinstance(result, str):
        return result + "x"
    if isinstance(result, list):
        return result + [None]
    if isinstance(result, tuple):
        return result + (None,)
    return 0
"""


def request(code: str, suite: TestSuite | IOSuite) -> ExecutionRequest:
    limits = Limits(timeout_s=20, test_timeout_s=5)
    if isinstance(suite, IOSuite):
        return ExecutionRequest(code=code, io=suite, limits=limits)
    return ExecutionRequest(code=code, tests=suite, limits=limits)


def humaneval(sandbox: DockerSandbox) -> dict[str, Any]:
    good, none, perturbed, formats = [], [], [], set()
    for problem in _humaneval_problems():
        entry = problem["entry_point"]
        solution = problem["prompt"] + problem["canonical_solution"]
        tests = problem["test"] + f"\n\ncheck({entry})\n"
        fmt, suite = load_suite(tests, filename="test.py", solution=solution)
        formats.add(fmt)
        good.append(request(solution, suite))
        none.append(request(problem["prompt"] + "    return None\n", suite))
        perturbed.append(request(solution + PERTURB.format(entry=entry), suite))
    ids = [p["task_id"] for p in _humaneval_problems()]
    results = {
        name: sandbox.run_many(reqs)
        for name, reqs in (("canonical", good), ("return_none", none), ("perturbed", perturbed))
    }
    return {
        "problems": len(ids),
        "detected_formats": sorted(formats),
        "tests_total": sum(r.tests_total for r in results["canonical"]),
        "canonical_passed": sum(r.status.value == "passed" for r in results["canonical"]),
        "canonical_not_passed": [
            (i, r.status.value, r.error[:120])
            for i, r in zip(ids, results["canonical"], strict=True)
            if r.status.value != "passed"
        ],
        "return_none_failed": sum(r.status.value != "passed" for r in results["return_none"]),
        "perturbed_failed": sum(r.status.value != "passed" for r in results["perturbed"]),
        "perturbed_still_passing": [
            i for i, r in zip(ids, results["perturbed"], strict=True) if r.status.value == "passed"
        ],
        "sandbox_errors": sum(r.is_sandbox_error for rs in results.values() for r in rs),
    }


class _Mutate(ast.NodeTransformer):
    """Change the first node of one kind, once."""

    def __init__(self, kind: str):
        self.kind, self.done = kind, False

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if self.kind == "add" and not self.done and isinstance(node.op, ast.Add):
            node.op, self.done = ast.Sub(), True
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        self.generic_visit(node)
        flips = {
            ast.Lt: ast.LtE,
            ast.LtE: ast.Lt,
            ast.Gt: ast.GtE,
            ast.GtE: ast.Gt,
            ast.Eq: ast.NotEq,
            ast.NotEq: ast.Eq,
        }
        if self.kind == "compare" and not self.done and type(node.ops[0]) in flips:
            node.ops[0], self.done = flips[type(node.ops[0])](), True
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        twins = {"max": "min", "min": "max", "sum": "len", "sorted": "reversed",
                 "reversed": "sorted"}  # fmt: skip
        if self.kind == "call" and not self.done and node.id in twins:
            self.done = True
            return ast.Name(twins[node.id], node.ctx)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        twins = {"upper": "lower", "lower": "upper", "count": "find"}
        if self.kind == "call" and not self.done and node.attr in twins:
            node.attr, self.done = twins[node.attr], True
        return node

    def visit_Slice(self, node: ast.Slice) -> ast.AST:
        self.generic_visit(node)
        step = node.step
        negative = isinstance(step, ast.UnaryOp) and isinstance(step.op, ast.USub)
        if self.kind == "slice" and not self.done and negative:
            node.step, self.done = step.operand, True
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if self.kind == "constant" and not self.done and type(node.value) is int:
            self.done = True
            return ast.Constant(node.value + 1)
        return node


def mutants(program: str) -> dict[str, str]:
    found = {}
    for kind in ("add", "compare", "constant", "call", "slice"):
        mutator = _Mutate(kind)
        tree = mutator.visit(ast.parse(program))
        if mutator.done:
            found[kind] = ast.unparse(tree)
    found["extra_line"] = program + "print('extra')\n"
    return found


def stdio(sandbox: DockerSandbox) -> dict[str, Any]:
    tasks = list(code_dataset(STDIO_TASKS, "apps"))
    refs, muts = [], []
    for task in tasks:
        suite = IOSuite.model_validate(task.tests)
        refs.append(request(task.answer, suite))
        for kind, code in mutants(task.answer).items():
            muts.append((task.id, kind, request(code, suite)))
    ref_results = sandbox.run_many(refs)
    mut_results = sandbox.run_many([m[2] for m in muts])
    survivors = [
        f"{task_id}:{kind}"
        for (task_id, kind, _), r in zip(muts, mut_results, strict=True)
        if r.status.value == "passed"
    ]
    return {
        "tasks": len(tasks),
        "cases_total": sum(r.tests_total for r in ref_results),
        "reference_passed": sum(r.status.value == "passed" for r in ref_results),
        "reference_not_passed": [
            (t.id, r.status.value, [x.detail for x in r.tests if not x.passed][:1])
            for t, r in zip(tasks, ref_results, strict=True)
            if r.status.value != "passed"
        ],
        "mutants": len(muts),
        "mutants_failed": len(muts) - len(survivors),
        "tasks_with_a_failing_mutant": len(
            {m[0] for m, r in zip(muts, mut_results, strict=True) if r.status.value != "passed"}
        ),
        "mutants_still_passing": survivors,
        "mutants_by_kind": {
            kind: sum(m[1] == kind for m in muts)
            for kind in ("add", "compare", "constant", "call", "slice", "extra_line")
        },
        "sandbox_errors": sum(r.is_sandbox_error for r in [*ref_results, *mut_results]),
    }


def main() -> None:
    started = time.perf_counter()
    with DockerSandbox(concurrency=2) as sandbox:
        out = {"benchmark": "code_formats_check", "humaneval_check_files": humaneval(sandbox)}
        print("humaneval done", file=sys.stderr, flush=True)
        out["stdio_tasks"] = stdio(sandbox)
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
