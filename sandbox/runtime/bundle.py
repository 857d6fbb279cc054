"""Turns the runtime modules into one ``python -c`` program.

The runtime is injected at container start instead of being baked into the image, so the code
that judges a run always matches the installed package, whatever image is in use. The program
registers the modules as the package ``_grpo_sandbox`` (their relative imports keep working)
and calls ``main()`` of one of them. Used on the host and, for the executor, inside the sandbox.
"""

from __future__ import annotations

PACKAGE = "_grpo_sandbox"
# Linux caps one argv string at 128 KiB (MAX_ARG_STRLEN); stay well below it.
MAX_PROGRAM_BYTES = 120_000

_BOOT = """import sys
def _boot(sources, order, main):
    pkg = type(sys)({package!r})
    pkg.__path__ = []
    pkg.SOURCES = sources
    sys.modules[{package!r}] = pkg
    for name in order:
        module = type(sys)({package!r} + "." + name)
        module.__package__ = {package!r}
        sys.modules[module.__name__] = module
        setattr(pkg, name, module)
        exec(compile(sources[name], "<sandbox>/" + name + ".py", "exec"), module.__dict__)
    sys.modules[{package!r} + "." + main].main()
_boot({sources!r}, {order!r}, {main!r})
"""


def program(sources: dict[str, str], order: list[str], main: str) -> str:
    """Source of a program that loads ``order`` (dependencies first) and runs ``main.main()``.
    ``sources`` may hold more modules than ``order`` loads; all travel along (as SOURCES), so
    a loaded module can build programs of its own from them."""
    text = _BOOT.format(package=PACKAGE, sources=sources, order=order, main=main)
    if len(text.encode("utf-8")) > MAX_PROGRAM_BYTES:
        raise ValueError(f"sandbox runtime program is {len(text)} bytes, over {MAX_PROGRAM_BYTES}")
    return text
