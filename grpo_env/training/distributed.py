"""Training on N ranks with torch.distributed: set-up, group sharding, global reductions.

``torchrun --nproc-per-node N -m grpo_env.cli train ...`` (or any launcher that sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``: SLURM, Kubernetes,
accelerate) starts N copies of the trainer. Each one:

- draws the whole step's tasks (every rank's sampler is in the same state) and rolls out its
  own contiguous share of them (``shard``): a group never splits across ranks;
- samples each group from its own seed ``group_seed(seed, step, index)``, so the completions
  of a group do not depend on which rank drew it or how many ranks there are;
- trains on its share with the loss normalised by the *global* sequence and token counts
  (``global_normalizer``) and scaled by N, so that DDP's gradient average (or FSDP2's
  reduce-scatter average) gives the single-process gradient of the whole batch (DESIGN rule 11);
- sends its groups to rank 0 (``gather_objects``), which alone computes the step's metrics,
  logs, evaluates, prints and writes checkpoints.

The collectives run under the process group's timeout (``DistributedConfig.timeout_s``): a rank
that died or hangs ends the others with ``PeerFailure`` instead of a silent wait.

Backend: NCCL on CUDA, gloo on CPU (how the tests run several ranks on one CPU).
"""

from __future__ import annotations

import atexit
import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist

from grpo_env.agents.losses import LossNormalizer

Strategy = Literal["ddp", "fsdp2"]


class PeerFailure(RuntimeError):
    """A collective failed: another rank died, or did not answer within the timeout."""


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits among the ranks (world size 1: a plain single-process run)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    timeout_s: float = 600.0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_current = DistInfo()


def current() -> DistInfo:
    """This process's ``DistInfo`` (world size 1 until ``init_from_env`` found ranks)."""
    return _current


def launched_world_size(env: dict[str, str] | None = None) -> int:
    """The world size a launcher (torchrun, SLURM via its variables) asked for; 1 if none."""
    env = dict(os.environ) if env is None else env
    return int(env.get("WORLD_SIZE", "1") or "1")


def init_from_env(timeout_s: float = 600.0) -> DistInfo:
    """Join the process group described by the launcher's variables (once per process).

    CUDA: NCCL, and this rank's GPU is ``LOCAL_RANK`` (so ``cuda`` means it). Else gloo.
    """
    global _current
    world = launched_world_size()
    if world <= 1:
        return _current
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=timeout_s))
        # Objects that hold the process group (DDP's reducer, FSDP2's pending collectives) often
        # sit in reference cycles, which only the garbage collector frees. Left to interpreter
        # finalization, gloo's worker threads then free tensors after Python is gone, and the
        # process aborts ("terminate called without an active exception", about 1 two-rank run
        # in 40 here; pytorch PR 179291). Collecting at exit frees them while Python is alive.
        atexit.register(gc.collect)
    _current = DistInfo(rank, world, local_rank, timeout_s)
    return _current


def shutdown() -> None:
    """Leave the process group this module joined (one that vLLM made is left alone)."""
    global _current
    if _current.enabled and dist.is_initialized():
        dist.destroy_process_group()
    _current = DistInfo()


# ----- which rank does what -------------------------------------------------------------------


def shard(count: int, rank: int, world_size: int) -> range:
    """This rank's contiguous share of ``count`` groups; the first ``count % world`` ranks take
    one more. Contiguous shares keep the gathered groups in the single-process order."""
    base, extra = divmod(count, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def group_seed(seed: int, step: int, index: int, round_: int = 0) -> int:
    """The sampling seed of one group: a function of (run seed, step, refill round, group
    index in the step) alone, whichever rank samples it."""
    return int(np.random.SeedSequence([seed, step, round_, index]).generate_state(1)[0])


# ----- collectives ----------------------------------------------------------------------------


def _comm_device() -> torch.device:
    # NCCL reduces CUDA tensors only; gloo takes CPU tensors.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextmanager
def collective(what: str, *, broad: bool = True) -> Iterator[None]:
    """Turn a failed collective into a ``PeerFailure`` that says what happened and where.

    ``broad``: any RuntimeError inside is a collective's (our own calls); else only
    torch.distributed's errors are (around a whole step, where other errors are bugs).
    """
    caught = (RuntimeError, dist.DistError) if broad else (dist.DistError,)
    try:
        yield
    except PeerFailure:
        raise
    except caught as err:
        info = current()
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PeerFailure(
            f"rank {info.rank} of {info.world_size}: {what} failed: another rank died or did not "
            f"answer within {info.timeout_s:.0f} s ({first}). The run stops; its last checkpoint "
            "stands (resume with the same number of ranks)."
        ) from err


def all_reduce(values: Sequence[float], op: str = "sum") -> list[float]:
    """Element-wise sum (or max) of ``values`` over the ranks, in float64."""
    if not current().enabled:
        return [float(v) for v in values]
    tensor = torch.tensor(list(values), dtype=torch.float64, device=_comm_device())
    reduce_op = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op]
    with collective(f"all_reduce({op})"):
        dist.all_reduce(tensor, op=reduce_op)
    return tensor.cpu().tolist()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (all ranks get the list)."""
    info = current()
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    with collective("all_gather_object"):
        dist.all_gather_object(out, obj)
    return out


def barrier(what: str = "barrier") -> None:
    if current().enabled:
        with collective(what):
            dist.barrier()


def global_normalizer(norm: LossNormalizer) -> LossNormalizer:
    """The loss normaliser of the whole step: sequence and token counts summed over ranks."""
    if not current().enabled:
        return norm
    sequences, tokens = all_reduce([norm.num_sequences, norm.num_tokens])
    return replace(norm, num_sequences=int(sequences), num_tokens=int(tokens))


def gradient_scale() -> float:
    """What a rank's loss is multiplied by before backward: DDP and FSDP2 *average* gradients
    over the ranks, and each rank's loss is already its share of the global mean."""
    return float(current().world_size)


def reduce_metrics(metrics: dict[str, float], sums: Sequence[str] = ()) -> dict[str, float]:
    """Metrics of every rank into one dict: ``sums`` added, ``*seconds`` the slowest rank's,
    the rest averaged. Every rank must pass the same keys (checked: a mismatch would pair the
    wrong numbers)."""
    if not current().enabled:
        return dict(metrics)
    keys = sorted(metrics)
    if len(set(map(tuple, gather_objects(keys)))) != 1:
        raise RuntimeError(f"ranks report different metric names (rank {current().rank}: {keys})")
    summed = all_reduce([metrics[k] for k in keys], "sum")
    slowest = all_reduce([metrics[k] for k in keys], "max")
    world = current().world_size
    out = {}
    for key, total, top in zip(keys, summed, slowest, strict=True):
        if key in sums:
            out[key] = total
        elif key.endswith("seconds"):
            out[key] = top
        else:
            out[key] = total / world
    return out
