"""The malloc settings make a freed large tensor's memory serve the next one (no fresh mapping,
so no page faults), and stay off when asked. Each check runs in a child process: the settings
are process-wide."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc knobs")

# mallinfo2().hblks: the chunks that live in mappings of their own (glibc >= 2.33).
CHILD = """
import ctypes, sys
import torch
from grpo_env.training.allocator import keep_freed_memory

FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in FIELDS.split()]

libc = ctypes.CDLL("libc.so.6")
if not hasattr(libc, "mallinfo2"):
    print("skip"); sys.exit(0)
libc.mallinfo2.restype = Info
applied = keep_freed_memory()
before = libc.mallinfo2().hblks
big = torch.zeros(64 * 2**20 // 4)  # 64 MiB: above glibc's largest mmap threshold
print(applied, libc.mallinfo2().hblks - before)
"""


def run_child(env_value: str | None) -> tuple[bool, int]:
    import os

    env = dict(os.environ)
    env.pop("GRPO_ENV_MALLOC", None)
    if env_value is not None:
        env["GRPO_ENV_MALLOC"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    if out == ["skip"]:
        pytest.skip("no mallinfo2 (glibc < 2.33)")
    return out[0] == "True", int(out[1])


def test_a_large_tensor_comes_from_the_heap_not_a_mapping_of_its_own():
    applied, new_mappings = run_child(None)
    assert applied
    assert new_mappings == 0


def test_grpo_env_malloc_system_leaves_malloc_as_it_is():
    applied, new_mappings = run_child("system")
    assert not applied
    assert new_mappings == 1  # glibc's default: the 64 MiB tensor got a mapping of its own
