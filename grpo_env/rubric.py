"""Rubric: a reward made of named, weighted components.

    score = sum(weight_i * value_i * gate_i)

where ``gate_i`` is 1 when every component listed in ``gated_by`` reached its pass mark
(``gate_threshold``, default 1.0) and 0 otherwise. A zero-weight criterion is a metric: it
is computed and logged but does not move the reward. Every raw value is kept in
``VerifyResult.components`` (gated or not) so logs show *why* a reward is what it is.

A criterion's function returns a float, or a ``VerifyResult`` when it needs to report a
status (timeout, infra_error...) or details. The rubric's status is the most severe of its
criteria's statuses, so one infra error masks the whole sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from grpo_env.types import Status, Task, VerifyResult, worst_status

CriterionFn = Callable[[Task, str], "float | VerifyResult"]


@dataclass(frozen=True)
class Criterion:
    """One reward component.

    Args:
        name: key in ``VerifyResult.components``.
        fn: ``fn(task, completion) -> float | VerifyResult``.
        weight: contribution to the score; 0 makes it a logged metric only.
        gated_by: names of criteria that must pass for this one to count (e.g. correctness
            gated by format).
        gate_threshold: the value a gating criterion must reach to open the gate.
    """

    name: str
    fn: CriterionFn
    weight: float = 1.0
    gated_by: tuple[str, ...] = ()
    gate_threshold: float = 1.0


@dataclass
class Rubric:
    criteria: Sequence[Criterion]
    # Criteria run in order; a gate may only name an earlier criterion, which keeps the
    # evaluation order obvious and lets a failed gate skip expensive checks.
    skip_when_gated: bool = True
    _names: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names: list[str] = []
        for criterion in self.criteria:
            if criterion.name in names:
                raise ValueError(f"rubric has two criteria named {criterion.name!r}")
            for gate in criterion.gated_by:
                if gate not in names:
                    raise ValueError(
                        f"criterion {criterion.name!r} is gated by {gate!r}, which is not an "
                        f"earlier criterion (earlier ones: {names or 'none'})"
                    )
            names.append(criterion.name)
        if not names:
            raise ValueError("a rubric needs at least one criterion")
        self._names = tuple(names)

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def max_score(self) -> float:
        return sum(max(c.weight, 0.0) for c in self.criteria)

    def score(self, task: Task, completion: str) -> VerifyResult:
        components: dict[str, float] = {}
        statuses: list[Status] = []
        details: dict[str, object] = {}
        total = 0.0
        for criterion in self.criteria:
            gate_open = all(components[g] >= criterion.gate_threshold for g in criterion.gated_by)
            if not gate_open and self.skip_when_gated:
                # Not evaluated: the raw value is recorded as 0 and the reason in details.
                components[criterion.name] = 0.0
                details[criterion.name] = {"skipped": f"gate {criterion.gated_by} closed"}
                continue
            outcome = criterion.fn(task, completion)
            if isinstance(outcome, VerifyResult):
                value = outcome.score
                statuses.append(outcome.status)
                if outcome.details:
                    details[criterion.name] = outcome.details
                for sub_name, sub_value in outcome.components.items():
                    components.setdefault(f"{criterion.name}/{sub_name}", sub_value)
            else:
                value = float(outcome)
            components[criterion.name] = value
            if gate_open:
                total += criterion.weight * value
        status = worst_status(statuses)
        if status is Status.INFRA_ERROR:
            return VerifyResult(score=0.0, status=status, components=components, details=details)
        return VerifyResult(score=total, status=status, components=components, details=details)
