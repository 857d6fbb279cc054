"""``DockerSandbox``: runs code in warm, locked-down Docker containers.

Every container is started with the isolation of DESIGN.md's sandbox rules: no network,
read-only root, size-limited tmpfs for /work and /tmp (wiped and checked after every run),
memory limit equal to memory+swap, pids limit, CPU quota, a non-root user, all capabilities
dropped, no-new-privileges, no host environment, file-size/open-file/core ulimits, no logs.
Its PID 1 is the sandbox server (``runtime.server``), attached to us over stdin/stdout: the
only channel to the host, which no process inside but PID 1 holds. The host kills the whole
container when no verdict arrives in time; the container exits and removes itself when our
connection closes (``StdinOnce`` + auto-remove), so a crashed host process leaves nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Hashable, Sequence
from typing import Any

from . import engines
from .base import PooledSandbox
from .engines import Engine, EngineDown, EngineSet
from .models import Limits
from .pool import Worker, WorkerLost, WorkerTimeout
from .protocol import SandboxUnavailable
from .runtime import server_program

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "grpo-env-sandbox:1"
IMAGE_ENV = "GRPO_ENV_SANDBOX_IMAGE"
SANDBOX_USER = "65534:65534"  # nobody:nogroup, present in Debian and python:slim images
LABEL = "org.grpo-env.sandbox"
OWNER_LABEL = "org.grpo-env.sandbox.owner"  # host:pid, to find orphans of dead processes
INSTANCE_LABEL = "org.grpo-env.sandbox.instance"  # one DockerSandbox object
_STDOUT, _STDERR = 1, 2


def default_image() -> str:
    """The sandbox image: $GRPO_ENV_SANDBOX_IMAGE, else ``grpo-env-sandbox:1``."""
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def connect(timeout: int = 60, host: str | None = None) -> Any:
    """A Docker client for ``host`` (default: the engine in the environment, DOCKER_HOST or
    the local socket), or ``SandboxUnavailable`` saying why not."""
    return engines.connect(host, timeout)


def _is_connection_error(err: Exception) -> bool:
    import requests

    return isinstance(err, requests.exceptions.ConnectionError | ConnectionError)


def host_config_args(limits: Limits) -> dict[str, Any]:
    """The isolation settings of a sandbox container (keyword arguments of
    ``APIClient.create_host_config``)."""
    from docker.types import LogConfig, Ulimit

    tmpfs_opts = f"rw,noexec,nosuid,nodev,size={limits.work_dir_mb}m,nr_inodes=16384,mode=1777"
    return {
        "auto_remove": True,
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/work": tmpfs_opts, "/tmp": tmpfs_opts},
        "mem_limit": f"{limits.memory_mb}m",
        "memswap_limit": f"{limits.memory_mb}m",  # equal: no swap on top of memory
        "pids_limit": limits.pids,
        "nano_cpus": int(limits.cpus * 1e9),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "ulimits": [
            Ulimit(name="nofile", soft=limits.max_open_files, hard=limits.max_open_files),
            Ulimit(name="fsize", soft=limits.max_file_bytes, hard=limits.max_file_bytes),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "log_config": LogConfig(type="none"),
        "init": False,  # the server must be PID 1 (immune to the candidate's signals)
        "ipc_mode": "private",
        "shm_size": f"{min(limits.work_dir_mb, 64)}m",
        "privileged": False,
    }


class DockerWorker(Worker):
    """One warm container on ``engine``, spoken to over its attached stdin/stdout."""

    def __init__(
        self,
        client: Any,
        image: str,
        limits: Limits,
        labels: dict[str, str],
        engine: Engine | None = None,
    ):
        super().__init__(limits.container_key())
        from docker.errors import APIError, ImageNotFound

        self.api = client.api
        self.engine = engine
        self.generation = engine.generation if engine is not None else 0
        self.on_kill: Any = None  # set by the sandbox: gives the engine's slot back
        self.is_stale: Any = None  # set by the sandbox: see Worker.stale
        self.container_id: str | None = None
        self._raw = b""
        self._stderr_tail = b""
        host = engine.host if engine is not None else None
        try:
            host_config = self.api.create_host_config(**host_config_args(limits))
            config = self.api.create_container_config(
                image,
                ["python3", "-I", "-S", "-c", server_program(), "container"],
                user=SANDBOX_USER,
                environment={"LANG": "C.UTF-8"},  # nothing of the host's environment
                hostname="sandbox",
                stdin_open=True,
                detach=True,
                network_disabled=True,
                labels=labels,
                host_config=host_config,
            )
            # The container's stdin closes (and the server exits) when our connection does.
            config.update(StdinOnce=True, AttachStdin=True, AttachStdout=True, AttachStderr=True)
            self.container_id = self.api.create_container_from_config(config)["Id"]
            self._socket = self.api.attach_socket(
                self.container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            self._sock: socket.socket = self._socket._sock
            self.api.start(self.container_id)
        except ImageNotFound:
            self.kill()
            raise engines.image_missing(image, host) from None
        except APIError as err:
            self.kill()
            explanation = (err.explanation or str(err)).splitlines()[0][:300]
            raise SandboxUnavailable(
                f"Docker refused the sandbox container: {explanation}"
            ) from None
        except Exception as err:
            self.kill()
            if _is_connection_error(err):  # the engine went away since the client connected
                reason = type(err).__name__
                raise EngineDown(engines.unreachable(reason, host), reason) from None
            raise SandboxUnavailable(f"could not start a sandbox container: {err}") from None

    def _send(self, data: bytes) -> None:
        self._sock.settimeout(30)
        self._sock.sendall(data)

    def _receive(self, timeout: float) -> bytes:
        """Demultiplex Docker's stream frames: 8-byte header (stream, size), then payload."""
        while True:
            out = bytearray()
            while len(self._raw) >= 8:
                size = int.from_bytes(self._raw[4:8], "big")
                if len(self._raw) < 8 + size:
                    break
                stream, payload = self._raw[0], self._raw[8 : 8 + size]
                self._raw = self._raw[8 + size :]
                if stream == _STDOUT:
                    out += payload
                elif stream == _STDERR:
                    self._stderr_tail = (self._stderr_tail + payload)[-4000:]
            if out:
                return bytes(out)
            self._sock.settimeout(max(timeout, 0.001))
            chunk = self._sock.recv(1 << 16)  # socket.timeout is a TimeoutError
            if not chunk:
                return b""
            self._raw += chunk

    def describe_death(self) -> str:
        tail = self._stderr_tail.decode("utf-8", errors="replace").strip().splitlines()
        return f"sandbox server stderr: {tail[-1][:300]}" if tail else ""

    def stale(self) -> bool:
        return bool(self.is_stale and self.is_stale())

    def kill(self) -> None:
        release, self.on_kill = self.on_kill, None
        if release is not None:
            release()
        if self.container_id is None:
            return
        container_id, self.container_id = self.container_id, None
        with contextlib.suppress(Exception):
            self._socket.close()
        if self.engine is not None and not self.engine.up:
            return  # nothing to ask a dead engine (a remote one could hang us for a minute)
        # Force removal kills it; auto-remove may race us to it, which is fine.
        with contextlib.suppress(Exception):
            self.api.remove_container(container_id, force=True)


class DockerSandbox(PooledSandbox):
    """Runs ``ExecutionRequest``s in warm Docker containers, on one engine or several.

    Args:
        image: sandbox image (default: $GRPO_ENV_SANDBOX_IMAGE or ``grpo-env-sandbox:1``;
            build it with ``grpo-env sandbox build [--offline]``). Every engine needs it.
        concurrency: containers running at once (each takes one run at a time), spread over
            the engines (the least-loaded one that is up takes the next).
        limits: default limits (for ``warm``; each request carries its own).
        docker_hosts: engine URLs (``unix://``, ``tcp://`` with TLS, ``ssh://``; a list or a
            comma-separated string). Default: $GRPO_ENV_DOCKER_HOSTS, else the engine of the
            environment (DOCKER_HOST or the local socket). See ``engines``.
        tls: a ``docker.tls.TLSConfig`` for ``tcp://`` engines (default: from
            DOCKER_TLS_VERIFY / DOCKER_CERT_PATH).
        client: a ``docker.DockerClient`` (its engine only; overrides ``docker_hosts``).
        startup_timeout_s: how long a new container may take to report ready.

    A run on an engine that dies ends as ``sandbox_error`` naming the engine; the engine is
    marked down, new runs go to the others, and it is asked again after a back-off.
    """

    name = "docker"

    def __init__(
        self,
        image: str | None = None,
        concurrency: int = 2,
        limits: Limits | None = None,
        *,
        docker_hosts: str | Sequence[str] | None = None,
        tls: Any = None,
        client: Any = None,
        startup_timeout_s: float = 60.0,
    ):
        super().__init__(concurrency, limits)
        self.image = image or default_image()
        self.startup_timeout_s = startup_timeout_s
        self.engines = EngineSet(
            engines.engine_hosts(docker_hosts),
            self.image,
            tls=tls,
            client=client,
            on_connect=remove_orphans,
        )
        self._owner = f"{socket.gethostname()}:{os.getpid()}"
        self.instance = uuid.uuid4().hex[:12]

    def client(self) -> Any:
        """The first engine's client (the only one unless several are configured)."""
        return self.engines.engines[0].client(remove_orphans)

    def check(self) -> None:
        """Raise ``SandboxUnavailable`` unless an engine answers and every engine that
        answers has the image (one that lacks it is named, with how to copy it there)."""
        self.engines.check()

    def _start_worker(self, key: Hashable) -> Worker:
        limits = _limits_for(key)
        labels = {LABEL: "1", OWNER_LABEL: self._owner, INSTANCE_LABEL: self.instance}
        for _ in range(len(self.engines)):
            engine = self.engines.reserve()
            try:
                client = engine.client(remove_orphans)
                worker = DockerWorker(client, self.image, limits, labels, engine)
            except EngineDown as err:  # that engine only: try the next one that is up
                self.engines.release(engine)
                self.engines.mark_down(engine, err)
                continue
            except BaseException:
                self.engines.release(engine)
                raise
            worker.on_kill = lambda engine=engine: self.engines.release(engine)
            worker.is_stale = lambda w=worker: self.engines.should_leave(w.engine, w.generation)
            try:
                worker.wait_ready(self.startup_timeout_s)
            except BaseException:
                worker.kill()
                raise
            return worker
        raise SandboxUnavailable(self.engines.all_down())

    def _execute(self, worker: Worker, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            return super()._execute(worker, payload, timeout)
        except (WorkerLost, WorkerTimeout) as err:
            engine = getattr(worker, "engine", None)
            if engine is None:
                raise
            # No reply: did the box fail, or its whole engine? The others go on either way.
            why = engine.down or engine.health(self.image)
            if why is None:
                raise type(err)(f"{err} (on engine {engine.name})") from None
            self.engines.mark_down(engine, why)
            raise WorkerLost(f"Docker engine {engine.name} went down ({why.brief})") from None


def _limits_for(key: Hashable) -> Limits:
    memory_mb, cpus, pids, work_dir_mb, max_file_bytes, max_open_files = key  # type: ignore[misc]
    return Limits(
        memory_mb=memory_mb,
        cpus=cpus,
        pids=pids,
        work_dir_mb=work_dir_mb,
        max_file_bytes=max_file_bytes,
        max_open_files=max_open_files,
    )


def remove_orphans(client: Any) -> int:
    """Remove sandbox containers whose owning process (on this host) is gone. Containers
    normally go away by themselves when their owner does; this catches the rest."""
    host = socket.gethostname()
    removed = 0
    try:
        containers = client.api.containers(all=True, filters={"label": OWNER_LABEL})
    except Exception:
        return 0
    for info in containers:
        owner = (info.get("Labels") or {}).get(OWNER_LABEL, "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        try:
            client.api.remove_container(info["Id"], force=True)
            removed += 1
        except Exception:
            continue
    if removed:
        log.info("removed %d orphaned sandbox container(s)", removed)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
