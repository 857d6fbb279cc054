"""One rank of the hang test (tests/grpo_env/training/test_distributed.py): rank 1 joins the group,
then never enters the collective; rank 0 must fail after the timeout, not wait forever."""

import os
import sys
import time

from grpo_env.training import distributed

info = distributed.init_from_env(timeout_s=float(sys.argv[1]))
if info.rank == 1:
    time.sleep(120)  # alive, but not answering
    sys.exit(0)
try:
    distributed.all_reduce([1.0])
except distributed.PeerFailure as err:
    print(f"PeerFailure: {err}", file=sys.stderr, flush=True)
    os._exit(2)  # not through gloo's teardown, which may abort with an operation pending
