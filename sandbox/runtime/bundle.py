"""Turns the runtime modules into one ``python -c`` program.

The runtime is injected at container start instead of being baked into the image, so the code
that judges a run always matches the installed package, whatever image is in use. The program
registers the modules as the package ``_grpo_sandbox`` (their relative imports keep working)
and calls ``main()`` of one of them.

Executors start many times per second, so they get their modules precompiled instead: the
trusted side compiles them once (same interpreter, so the marshal format matches) and writes
them to the executor's request pipe ahead of the first request (``compiled_modules``,
``CODE_BOOT``). Compiling the sources at every start cost ~6 ms of a ~20 ms start.
"""

from __future__ import annotations

PACKAGE = "_grpo_sandbox"
# Linux caps one argv string at 128 KiB (MAX_ARG_STRLEN); stay well below it.
MAX_PROGRAM_BYTES = 120_000

# Shared tail of both boot programs: register the compiled modules ``codes`` as the package,
# then run ``main.main()``.
_REGISTER = """
    pkg = type(sys)({package!r})
    pkg.__path__ = []
    pkg.SOURCES = sources
    sys.modules[{package!r}] = pkg
    for name in order:
        module = type(sys)({package!r} + "." + name)
        module.__package__ = {package!r}
        sys.modules[module.__name__] = module
        setattr(pkg, name, module)
        exec(codes[name], module.__dict__)
    sys.modules[{package!r} + "." + main].main()
"""

_BOOT = (
    """import sys
def _boot(sources, order, main):
    codes = {{n: compile(sources[n], "<sandbox>/" + n + ".py", "exec") for n in order}}
"""
    + _REGISTER
    + "_boot({sources!r}, {order!r}, {main!r})\n"
)

# Reads a length-prefixed marshal of {name: code} from fd 3 instead of compiling sources.
CODE_BOOT = (
    """import sys, os, marshal
def _boot(order, main):
    size = int.from_bytes(os.read(3, 8), "big")
    blob = b""
    while len(blob) < size:
        chunk = os.read(3, size - len(blob))
        if not chunk:
            os._exit(1)
        blob += chunk
    codes, sources = marshal.loads(blob), None
"""
    + _REGISTER
    + "_boot({order!r}, {main!r})\n"
)


def compiled_modules(sources: dict[str, str], order: list[str]) -> bytes:
    """The length-prefixed marshal blob ``CODE_BOOT`` reads (trusted side only)."""
    import marshal

    codes = {name: compile(sources[name], f"<sandbox>/{name}.py", "exec") for name in order}
    blob = marshal.dumps(codes)
    return len(blob).to_bytes(8, "big") + blob


def code_program(order: list[str], main: str) -> str:
    return CODE_BOOT.format(package=PACKAGE, order=order, main=main)


def program(sources: dict[str, str], order: list[str], main: str) -> str:
    """Source of a program that loads ``order`` (dependencies first) and runs ``main.main()``.
    ``sources`` may hold more modules than ``order`` loads; all travel along (as SOURCES), so
    a loaded module can build programs of its own from them."""
    text = _BOOT.format(package=PACKAGE, sources=sources, order=order, main=main)
    if len(text.encode("utf-8")) > MAX_PROGRAM_BYTES:
        raise ValueError(f"sandbox runtime program is {len(text)} bytes, over {MAX_PROGRAM_BYTES}")
    return text
