"""Task sources: where an environment's tasks come from.

Three kinds, one interface (``len``, indexing, lookup by id, iteration):

- ``JsonlTaskSource``: one JSON object per line. A bad line raises ``TaskFileError`` naming
  the file, the line and the field; nothing is silently dropped.
- ``ListTaskSource``: any Python iterable of ``Task`` objects or dicts.
- ``ReasoningGymSource``: procedural tasks from the ``reasoning-gym`` package, seeded and
  deterministic. Train and held-out splits are a partition of the generator's stream by a hash
  of the question text, so a question can never be in both, however small the generator's
  space is.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from grpo_env.jsonl import JsonlError, read_jsonl
from grpo_env.types import Task

Split = Literal["train", "test"]


class TaskFileError(ValueError):
    """A task file line that cannot be turned into a task: says where and why."""

    def __init__(self, path: str | Path, line: int, field: str | None, problem: str):
        self.path, self.line, self.field, self.problem = str(path), line, field, problem
        where = f"{path}:{line}"
        super().__init__(f"{where}: field {field!r}: {problem}" if field else f"{where}: {problem}")


class TaskFieldError(ValueError):
    """Raised by a row parser to blame one field of a row."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"field {field!r}: {problem}")


class TaskSource(ABC):
    """A finite, indexable, deterministic collection of tasks."""

    name: str = "tasks"

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def __getitem__(self, index: int) -> Task: ...

    def __iter__(self) -> Iterator[Task]:
        for i in range(len(self)):
            yield self[i]

    def get(self, task_id: str) -> Task:
        """The task with this id; ``KeyError`` naming the source if there is none."""
        index = self._id_index().get(task_id)
        if index is None:
            raise KeyError(f"no task with id {task_id!r} in {self.name} ({len(self)} tasks)")
        return self[index]

    def _id_index(self) -> dict[str, int]:
        cached = getattr(self, "_ids", None)
        if cached is None:
            cached = {}
            for i, task in enumerate(self):
                cached.setdefault(task.id, i)
            self._ids = cached
        return cached


class ListTaskSource(TaskSource):
    """Tasks from memory: ``Task`` objects, or dicts with the same fields (id optional)."""

    def __init__(self, tasks: Iterable[Task | Mapping[str, Any]], name: str = "list"):
        self.name = name
        self._tasks: list[Task] = []
        for i, item in enumerate(tasks):
            if isinstance(item, Task):
                self._tasks.append(item)
                continue
            row = dict(item)
            row.setdefault("id", f"{name}-{i}")
            try:
                self._tasks.append(Task.model_validate(row))
            except ValidationError as err:
                raise ValueError(f"{name}[{i}]: {_first_error(err)}") from err
        if not self._tasks:
            raise ValueError(f"task source {name!r} is empty")
        _reject_duplicate_ids(self._tasks, name)

    def __len__(self) -> int:
        return len(self._tasks)

    def __getitem__(self, index: int) -> Task:
        return self._tasks[index]


RowParser = Callable[[dict[str, Any], str], Task]


def default_row_parser(row: dict[str, Any], default_id: str) -> Task:
    """A row with ``Task``'s own fields (``prompt`` required, ``id`` optional)."""
    row = dict(row)
    row.setdefault("id", default_id)
    return Task.model_validate(row)


class JsonlTaskSource(TaskSource):
    """Tasks from a JSON-lines file, parsed eagerly so errors surface before training starts.

    ``parser(row, default_id) -> Task`` maps one JSON object to a task (environments pass
    their own for GSM8K, MATH or MBPP rows). It blames a field by raising ``TaskFieldError``,
    ``KeyError`` (missing field) or a pydantic ``ValidationError``; every such error becomes a
    ``TaskFileError`` with the file and line. Blank lines are allowed; nothing else is skipped.
    """

    def __init__(self, path: str | Path, parser: RowParser = default_row_parser):
        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise FileNotFoundError(f"task file not found: {self.path}")
        self._tasks: list[Task] = []
        line_of_id: dict[str, int] = {}
        try:
            rows = read_jsonl(self.path).rows
        except JsonlError as err:
            raise TaskFileError(self.path, err.line, None, err.problem) from None
        for line_no, row in rows:
            task = self._parse_row(row, line_no, parser)
            if task.id in line_of_id:
                raise TaskFileError(
                    self.path,
                    line_no,
                    "id",
                    f"{task.id!r} already used on line {line_of_id[task.id]}",
                )
            line_of_id[task.id] = line_no
            self._tasks.append(task)
        if not self._tasks:
            raise TaskFileError(self.path, 0, None, "file has no tasks")

    def _parse_row(self, row: Any, line_no: int, parser: RowParser) -> Task:
        if not isinstance(row, dict):
            raise TaskFileError(
                self.path, line_no, None, f"expected a JSON object, got {type(row).__name__}"
            )
        try:
            return parser(row, f"{self.path.stem}-{line_no}")
        except TaskFieldError as err:
            raise TaskFileError(self.path, line_no, err.field, err.problem) from err
        except KeyError as err:
            raise TaskFileError(self.path, line_no, str(err.args[0]), "missing") from err
        except ValidationError as err:
            # Blame the row's own key (pydantic's loc may add union-member names after it).
            first = err.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else None
            raise TaskFileError(self.path, line_no, field, first["msg"]) from err

    def __len__(self) -> int:
        return len(self._tasks)

    def __getitem__(self, index: int) -> Task:
        return self._tasks[index]


def question_bucket(question: str) -> float:
    """A stable pseudo-random number in [0, 1) derived from the question text."""
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class ReasoningGymSource(TaskSource):
    """Procedural tasks from a ``reasoning-gym`` dataset, split by question hash.

    Item ``k`` of the generator's stream (seed ``seed``) belongs to the held-out split when
    ``question_bucket(question) < test_fraction``, else to train. The ``test`` split keeps the
    first ``size`` *distinct* held-out questions; ``train`` keeps the first ``size`` training
    items. Both are materialised lazily, so a 100k-task train split costs nothing up front.

    ``config`` is passed to ``reasoning_gym.create_dataset`` (e.g. ``min_terms=2``).
    """

    def __init__(
        self,
        dataset: str,
        split: Split = "train",
        size: int | None = None,
        seed: int = 0,
        test_fraction: float = 0.1,
        **config: Any,
    ):
        import reasoning_gym  # heavy import, only when used

        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        self.dataset_name, self.split, self.seed = dataset, split, seed
        self.test_fraction = test_fraction
        self.size = size if size is not None else (10_000 if split == "train" else 200)
        self.name = f"reasoning_gym:{dataset}:{split}"
        # The stream is indexed by position; reasoning-gym derives item k from seed + k, so the
        # nominal dataset size only bounds how far we may scan.
        self._max_scan = max(self.size * 50, 10_000)
        try:
            self._dataset = reasoning_gym.create_dataset(
                dataset, seed=seed, size=self._max_scan, **config
            )
        except Exception as err:  # unknown name or bad config: say which
            raise ValueError(f"reasoning-gym dataset {dataset!r} with {config}: {err}") from err
        self._tasks: list[Task] = []
        self._seen: set[str] = set()
        self._cursor = 0

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> Task:
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(f"task index {index} out of range for {self.name} ({self.size})")
        self._fill(index + 1)
        return self._tasks[index]

    def _fill(self, count: int) -> None:
        want_test = self.split == "test"
        while len(self._tasks) < count:
            if self._cursor >= self._max_scan:
                raise ValueError(
                    f"{self.name}: found only {len(self._tasks)} {self.split} tasks in "
                    f"{self._max_scan} generated items; the generator's space is too small for "
                    f"size={self.size} (lower size or widen the dataset config)"
                )
            entry = self._dataset[self._cursor]
            self._cursor += 1
            question = entry["question"]
            if (question_bucket(question) < self.test_fraction) != want_test:
                continue
            if want_test:  # held-out questions are distinct, so eval counts each once
                if question in self._seen:
                    continue
                self._seen.add(question)
            self._tasks.append(self._to_task(entry))

    def _to_task(self, entry: dict[str, Any]) -> Task:
        digest = hashlib.sha256(entry["question"].encode("utf-8")).hexdigest()[:12]
        return Task(
            id=f"{self.dataset_name}-{digest}",
            prompt=entry["question"],
            answer=entry["answer"],
            metadata={
                "source": "reasoning_gym",
                "dataset": self.dataset_name,
                "split": self.split,
                "entry_metadata": entry.get("metadata", {}),
            },
        )

    def score_answer(self, task: Task, answer: str | None) -> float:
        """reasoning-gym's own scoring of an extracted answer, for tasks where equivalence of
        numbers is not the right check (countdown: any expression reaching the target)."""
        entry = {
            "question": task.prompt,
            "answer": task.answer,
            "metadata": task.metadata.get("entry_metadata", {}),
        }
        return float(self._dataset.score_answer(answer=answer, entry=entry))


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    return f"field {first['loc'][0]!r}: {first['msg']}" if first["loc"] else first["msg"]


def _reject_duplicate_ids(tasks: list[Task], name: str) -> None:
    seen: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if task.id in seen:
            raise ValueError(
                f"{name}: task id {task.id!r} appears twice (items {seen[task.id]} and {i})"
            )
        seen[task.id] = i
