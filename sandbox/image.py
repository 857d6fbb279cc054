"""Build the sandbox image: from the Dockerfile (needs a registry), or offline.

Offline: ``debootstrap`` a minimal Debian with python3 from the mirror apt is configured
with, trim it, compile the standard library, and ``docker import`` the tree. Needs root
(debootstrap does) and the ``debootstrap`` and ``tar`` programs; no image registry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from .docker_backend import connect

Progress = Callable[[str], None]
IMAGE_LABEL = "org.grpo-env.sandbox.image=1"
# Trimmed after debootstrap: nothing the sandbox runs needs them.
_TRIM = (
    "var/cache/apt",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
)


class BuildError(RuntimeError):
    """The image could not be built; the message says which step and why."""


class BuildReport(BaseModel):
    image: str
    method: str
    seconds: float
    size_mb: float
    python: str
    image_id: str


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def dockerfile_dir() -> Path:
    """The folder holding the sandbox Dockerfile (inside the installed package)."""
    return Path(str(resources.files("grpo_env.sandbox")))


def build_from_dockerfile(
    tag: str, progress: Progress | None = None, base: str | None = None
) -> BuildReport:
    """``docker build`` of the shipped Dockerfile (pulls ``python:3.11-slim-bookworm``
    unless ``base`` names another image with python >= 3.11)."""
    client = connect(timeout=600)
    started = time.monotonic()
    context = dockerfile_dir()
    if not (context / "Dockerfile").is_file():
        raise BuildError(f"no Dockerfile in {context}: is grpo-env installed completely?")
    buildargs = {"BASE": base} if base else None
    try:
        for chunk in client.api.build(
            path=str(context),
            dockerfile="Dockerfile",
            tag=tag,
            rm=True,
            decode=True,
            buildargs=buildargs,
        ):
            if "error" in chunk:
                raise BuildError(f"docker build failed: {chunk['error'].strip()}")
            line = str(chunk.get("stream", "")).strip()
            if line:
                _say(progress, line)
    except BuildError:
        raise
    except Exception as err:
        raise BuildError(f"docker build failed: {err}") from None
    return _report(client, tag, "dockerfile", started)


def apt_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt on this machine uses (deb822 .sources or one-line lists)."""
    listed = etc_apt / "sources.list.d"
    candidates = [
        *sorted(listed.glob("*.sources")),
        etc_apt / "sources.list",
        *sorted(listed.glob("*.list")),
    ]
    for path in candidates:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for url in re.findall(r"(?:URIs:|^deb)\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.MULTILINE):
            if "debian" in url and "security" not in url:
                return url.rstrip("/")
    return "http://deb.debian.org/debian"


def host_suite() -> str:
    """The Debian release this machine runs (the offline build uses the same one)."""
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return "bookworm"
    match = re.search(r"^VERSION_CODENAME=(\w+)", text, re.MULTILINE)
    return match.group(1) if match else "bookworm"


def build_offline(
    tag: str,
    progress: Progress | None = None,
    mirror: str | None = None,
    suite: str | None = None,
    workdir: str | None = None,
) -> BuildReport:
    """debootstrap + trim + compileall + ``docker import`` (see the module docstring)."""
    for program in ("debootstrap", "tar", "chroot"):
        if shutil.which(program) is None:
            raise BuildError(
                f"`{program}` not found; install it (apt-get install -y debootstrap) or "
                "build from the Dockerfile where a registry is reachable"
            )
    if os.geteuid() != 0:
        raise BuildError("the offline build runs debootstrap, which needs root (try sudo)")
    client = connect(timeout=600)
    mirror = mirror or apt_mirror()
    suite = suite or host_suite()
    started = time.monotonic()
    build_dir = Path(tempfile.mkdtemp(prefix="grpo-env-sandbox-build-", dir=workdir))
    rootfs = build_dir / "rootfs"
    try:
        _say(progress, f"debootstrap {suite} from {mirror} (minimal system + python3)...")
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3",
                "--components=main",
                suite,
                str(rootfs),
                mirror,
            ],
            "debootstrap",
        )
        _say(progress, "trimming caches and docs, compiling the standard library...")
        for rel in _TRIM:
            target = rootfs / rel
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        # A read-only root cannot cache .pyc files: without them every import recompiles.
        _run(
            ["chroot", str(rootfs), "python3", "-c", _COMPILE_STDLIB],
            "compiling the standard library",
        )
        version = _run(
            ["chroot", str(rootfs), "python3", "-c", "import sys; print(sys.version.split()[0])"],
            "checking python3",
        ).strip()
        _say(progress, f"python {version}; importing the tree as {tag}...")
        tarball = build_dir / "rootfs.tar"
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tarball), "."], "tar")
        repository, _, image_tag = tag.rpartition(":") if ":" in tag else (tag, "", "latest")
        changes = ['CMD ["python3"]', "USER 65534:65534", f"LABEL {IMAGE_LABEL}"]
        try:
            client.api.import_image(
                src=str(tarball), repository=repository, tag=image_tag, changes=changes
            )
        except Exception as err:
            raise BuildError(f"docker import failed: {err}") from None
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return _report(client, tag, f"offline (debootstrap {suite})", started)


_COMPILE_STDLIB = (
    "import compileall, sysconfig; "
    "compileall.compile_dir(sysconfig.get_paths()['stdlib'], quiet=2, workers=0)"
)


def _run(argv: list[str], step: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BuildError(f"{step} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return proc.stdout


def _report(client: Any, tag: str, method: str, started: float) -> BuildReport:
    info = client.api.inspect_image(tag)
    python = _python_version(client, tag)
    return BuildReport(
        image=tag,
        method=method,
        seconds=round(time.monotonic() - started, 1),
        size_mb=round(info.get("Size", 0) / 1e6, 1),
        python=python,
        image_id=str(info.get("Id", ""))[:19],
    )


def _python_version(client: Any, tag: str) -> str:
    try:
        output = client.containers.run(
            tag,
            ["python3", "-c", "import sys; print(sys.version.split()[0])"],
            remove=True,
            network_mode="none",
            user="65534:65534",
        )
    except Exception as err:
        raise BuildError(f"the built image cannot run python3: {err}") from None
    return output.decode().strip()
