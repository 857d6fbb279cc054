from __future__ import annotations

import contextlib

import pytest

from grpo_env.sandbox.doctor import run_doctor
from grpo_env.sandbox.image import apt_mirror, build_from_dockerfile, dockerfile_dir


def test_apt_mirror_reads_deb822_and_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm\n"
    )
    assert apt_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://ftp.example/debian bookworm main\n"
    )
    assert apt_mirror(tmp_path) == "http://ftp.example/debian"
    (tmp_path / "sources.list").write_text("# nothing\n")
    assert apt_mirror(tmp_path) == "http://deb.debian.org/debian"


def test_dockerfile_ships_with_the_package():
    text = (dockerfile_dir() / "Dockerfile").read_text()
    assert "python:3.11-slim" in text and "compileall" in text and "USER 65534" in text


@pytest.mark.docker
@pytest.mark.slow
def test_dockerfile_builds_on_a_local_base(docker_sandbox):
    # No registry here: build the Dockerfile on top of the (offline-built) sandbox image.
    tag = "grpo-env-sandbox:dockerfile-test"
    client = docker_sandbox.client()
    try:
        report = build_from_dockerfile(tag, base=docker_sandbox.image)
        assert report.python.startswith("3.")
        info = client.api.inspect_image(tag)
        assert info["Config"]["User"] == "65534:65534"
        assert info["Config"]["Labels"]["org.grpo-env.sandbox.image"] == "1"
    finally:
        with contextlib.suppress(Exception):
            client.api.remove_image(tag, force=True)


@pytest.mark.docker
@pytest.mark.slow
def test_doctor_finds_every_limit_enforced(docker_sandbox):
    report = run_doctor(docker_sandbox.image)
    failed = [check for check in report.checks if not check.ok]
    assert report.ok, (report.error, failed)
    names = {check.name for check in report.checks}
    assert {"no network", "memory limit (memory+swap)", "pids limit", "wall-clock kill"} <= names
