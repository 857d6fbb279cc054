"""Code that runs inside the sandbox: standard library only, imports nothing of grpo_env.

- ``wire``: plain-data codec and line framing across the trust boundary.
- ``executor``: the untrusted side; loads the candidate's code, answers calls.
- ``zygote``: a clean interpreter that forks executors (a run need not start Python).
- ``procs``: process plumbing of the trusted side (spawn, kill, the zygote's client).
- ``link``: the harness's link to the executor and the proxies test code calls.
- ``judge``: the trusted side of stdin/stdout cases; runs the program per case, compares.
- ``harness``: the trusted side; runs the tests, judges results, never runs candidate code.
- ``server``: the long-lived process of a warm container (PID 1): one run at a time, then
  it kills every leftover process, wipes the writable places and proves the box is clean.
"""

from __future__ import annotations

from importlib import resources

from .bundle import program

MODULES = ("wire", "bundle", "executor", "zygote", "procs", "link", "judge", "harness", "server")


def _read_sources() -> dict[str, str]:
    here = resources.files(__name__)
    return {name: (here / f"{name}.py").read_text(encoding="utf-8") for name in MODULES}


SOURCES: dict[str, str] = _read_sources()


def server_program() -> str:
    """The ``python -c`` program a sandbox container (or local worker) runs."""
    return program(
        SOURCES, ["wire", "bundle", "procs", "link", "judge", "harness", "server"], "server"
    )
