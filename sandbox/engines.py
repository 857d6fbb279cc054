"""The Docker engines a ``DockerSandbox`` runs on: one or several, each health-checked.

Which engines: the sandbox's ``docker_hosts``, else $GRPO_ENV_DOCKER_HOSTS (comma-separated),
else the one engine of the environment (DOCKER_HOST or the local socket, as ``docker`` finds
it). URLs are the Docker SDK's: ``unix:///path``, ``tcp://host:2376`` (TLS from
DOCKER_TLS_VERIFY / DOCKER_CERT_PATH, or a ``docker.tls.TLSConfig``), ``ssh://user@host``
(through the ``ssh`` program, so its config and agent apply).

New containers go to the least-loaded engine that is up. An engine that fails (refuses a
connection, stops answering, lacks the image) is marked down and asked again after a back-off
(1 s, doubling to 30 s); once it answers and has the image it takes new containers again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from .protocol import SandboxUnavailable

log = logging.getLogger(__name__)

HOSTS_ENV = "GRPO_ENV_DOCKER_HOSTS"
CLIENT_TIMEOUT_S = 60
PING_TIMEOUT_S = 5  # a health check must not hang a run for the client's full minute
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0


class EngineDown(SandboxUnavailable):
    """One engine cannot take containers (unreachable, image missing); others may.
    ``brief`` is the reason in a few words, for messages that list several engines."""

    def __init__(self, message: str, brief: str = ""):
        super().__init__(message)
        self.brief = brief or message


def parse_hosts(hosts: str | Sequence[str] | None) -> list[str]:
    """Engine URLs from a comma-separated string or a list, checked by the Docker SDK's own
    parser (``ValueError`` naming the bad one); duplicates and blanks dropped."""
    from docker.errors import DockerException
    from docker.utils import parse_host

    items = hosts.split(",") if isinstance(hosts, str) else list(hosts or [])
    urls: list[str] = []
    for item in items:
        url = str(item).strip()
        if not url:
            continue
        try:
            parse_host(url, False)
        except DockerException as err:
            raise ValueError(
                f"bad Docker engine URL {url!r} ({err}): use unix:///path, tcp://host:port "
                "or ssh://user@host"
            ) from None
        if url not in urls:
            urls.append(url)
    return urls


def engine_hosts(hosts: str | Sequence[str] | None = None) -> list[str | None]:
    """The engines to use: ``hosts``, else $GRPO_ENV_DOCKER_HOSTS, else ``[None]`` (the
    environment's engine, exactly as ``docker.from_env`` finds it)."""
    return parse_hosts(hosts) or parse_hosts(os.environ.get(HOSTS_ENV)) or [None]


def engine_name(host: str | None) -> str:
    return host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def unreachable(reason: str, host: str | None = None) -> str:
    return (
        f"Docker engine not reachable at {engine_name(host)} ({reason}); is dockerd running and "
        "may this user use it? `grpo-env sandbox doctor` checks the setup"
    )


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0][:300] if str(err) else type(err).__name__


def client_kwargs(host: str, timeout: int = CLIENT_TIMEOUT_S, tls: Any = None) -> dict[str, Any]:
    """``docker.DockerClient`` arguments for ``host``: TLS (tcp only) is ``tls`` or what
    DOCKER_TLS_VERIFY / DOCKER_CERT_PATH say; ``ssh://`` goes through the ``ssh`` program."""
    import docker

    scheme = host.partition("://")[0] if "://" in host else "tcp"
    kwargs = docker.utils.kwargs_from_env()
    if tls is not None:
        kwargs["tls"] = tls
    if scheme not in ("tcp", "http", "https"):
        kwargs.pop("tls", None)
    return {**kwargs, "base_url": host, "timeout": timeout, "use_ssh_client": scheme == "ssh"}


def client_for(host: str | None, timeout: int = CLIENT_TIMEOUT_S, tls: Any = None) -> Any:
    """A ``docker.DockerClient`` for ``host`` (None: the environment's engine)."""
    import docker

    if host is None:
        return docker.from_env(timeout=timeout)
    return docker.DockerClient(**client_kwargs(host, timeout, tls))


def connect(host: str | None = None, timeout: int = CLIENT_TIMEOUT_S, tls: Any = None) -> Any:
    """A client that answered a ping, or ``EngineDown`` saying why not."""
    try:
        import docker  # noqa: F401
    except ImportError as err:  # pragma: no cover - docker is a dependency
        raise SandboxUnavailable("the `docker` Python package is not installed") from err
    try:
        client = client_for(host, timeout, tls)
        client.ping()
    except Exception as err:  # DockerException, requests' ConnectionError, PermissionError...
        reason = _first_line(err)
        raise EngineDown(unreachable(reason, host), f"not reachable: {reason}") from None
    return client


def image_missing(image: str, host: str | None) -> EngineDown:
    if host is None:
        return EngineDown(
            f"sandbox image {image!r} not found: build it with `grpo-env sandbox build "
            "--offline` (or `grpo-env sandbox build` where a registry is reachable)"
        )
    copy = f"`docker save {image} | docker -H {host} load`"
    return EngineDown(
        f"sandbox image {image!r} not found on engine {host}: copy it there with {copy} "
        f"(or build it there: DOCKER_HOST={host} grpo-env sandbox build --offline)",
        f"no image {image!r}; copy it there: {copy}",
    )


class Engine:
    """One engine: its client (connected on first use), its load and its health."""

    def __init__(self, host: str | None, tls: Any = None, client: Any = None):
        self.host = host
        self.name = engine_name(host)
        self.tls = tls
        self.load = 0  # containers started or starting here (the pool's share of it)
        self.down: EngineDown | None = None  # why it is down; None while up
        self.generation = 0  # bumped when it goes down: containers of before are gone
        self.retry_at = 0.0
        self.backoff = RETRY_FIRST_S
        self._client = client
        self._lock = threading.Lock()

    @property
    def up(self) -> bool:
        return self.down is None

    def client(self, on_connect: Callable[[Any], Any] | None = None) -> Any:
        with self._lock:
            if self._client is None:
                client = connect(self.host, tls=self.tls)
                if on_connect is not None:
                    on_connect(client)
                self._client = client
            return self._client

    def health(self, image: str) -> EngineDown | None:
        """Why this engine cannot take sandboxes now (None if it can): a ping with a short
        timeout, then the image."""
        from docker.errors import ImageNotFound

        try:
            client = connect(self.host, timeout=PING_TIMEOUT_S, tls=self.tls)
        except EngineDown as err:
            return err
        try:
            client.api.inspect_image(image)
        except ImageNotFound:
            return image_missing(image, self.host)
        except Exception as err:
            reason = _first_line(err)
            return EngineDown(unreachable(reason, self.host), f"not answering: {reason}")
        finally:
            client.close()
        return None

    def forget_client(self) -> None:
        """Its connections died with it: reconnect (and clean up) when it is back. Not
        closed here: containers still running on it may hold its connections."""
        with self._lock:
            self._client = None


class EngineSet:
    """The engines of one sandbox: which one takes the next container, which are down."""

    def __init__(
        self,
        hosts: Sequence[str | None],
        image: str,
        *,
        tls: Any = None,
        client: Any = None,
        on_connect: Callable[[Any], Any] | None = None,
    ):
        if client is not None:  # one given client: that engine only
            self.engines = [Engine(hosts[0] if hosts else None, tls, client=client)]
        else:
            self.engines = [Engine(host, tls) for host in hosts]
        self.image = image
        self.on_connect = on_connect
        self._lock = threading.Lock()
        self._turn = 0

    def __len__(self) -> int:
        return len(self.engines)

    def reserve(self) -> Engine:
        """The least-loaded engine that is up (ties in turn), its load counted; down engines
        whose back-off is over are asked first. ``SandboxUnavailable`` when none is up."""
        self.revive()
        with self._lock:
            up = [i for i, e in enumerate(self.engines) if e.up]
            if not up:
                raise SandboxUnavailable(self.all_down())
            turn, count = self._turn, len(self.engines)
            self._turn += 1
            index = min(up, key=lambda i: (self.engines[i].load, (i - turn) % count))
            engine = self.engines[index]
            engine.load += 1
            return engine

    def release(self, engine: Engine) -> None:
        with self._lock:
            engine.load -= 1

    def mark_down(self, engine: Engine, why: EngineDown, *, retried: bool = False) -> None:
        """``engine`` is down (``retried``: still down when asked again, so the back-off
        doubles; many runs failing at once on it count once)."""
        with self._lock:
            was_up = engine.up
            if was_up or retried:
                engine.backoff = RETRY_FIRST_S if was_up else min(engine.backoff * 2, RETRY_MAX_S)
                engine.retry_at = time.monotonic() + engine.backoff
            engine.down = why
            if was_up:
                engine.generation += 1
        if was_up:
            engine.forget_client()
            others = sum(e.up for e in self.engines)
            log.warning(
                "Docker engine %s is down (%s); %d engine(s) left, asking it again in %g s",
                engine.name,
                why.brief,
                others,
                engine.backoff,
            )

    def revive(self) -> None:
        """Ask each down engine whose back-off is over; one that answers (with the image) is
        up again and takes new containers."""
        now = time.monotonic()
        with self._lock:
            due = [e for e in self.engines if not e.up and e.retry_at <= now]
            for engine in due:  # claimed: other threads wait for the next back-off
                engine.retry_at = now + RETRY_MAX_S
        for engine in due:
            why = engine.health(self.image)
            if why is not None:
                self.mark_down(engine, why, retried=True)
                continue
            with self._lock:
                engine.down = None
            log.warning("Docker engine %s answers again; it takes new sandboxes", engine.name)

    def should_leave(self, engine: Engine, generation: int) -> bool:
        """Should an idle container on ``engine`` be dropped rather than reused: its engine
        went down since it started, or another engine that is up has two fewer (moving one
        evens them out, so an engine that came back gets its share again)."""
        if not engine.up or engine.generation != generation:
            return True
        if len(self.engines) == 1:
            return False
        self.revive()
        with self._lock:
            return any(e.up and e.load <= engine.load - 2 for e in self.engines)

    def all_down(self) -> str:
        downs = [(e.name, e.down) for e in self.engines if e.down is not None]
        if len(self.engines) == 1 and downs:
            return str(downs[0][1])
        reasons = "; ".join(f"{name} {why.brief}" for name, why in downs)
        return (
            f"all {len(self.engines)} Docker engines are down: {reasons}. Each is asked again "
            f"after a back-off of up to {RETRY_MAX_S:g} s; `grpo-env sandbox doctor` checks them"
        )

    def check(self) -> None:
        """Every engine answers and has the image: ``SandboxUnavailable`` naming the engines
        that lack the image (a setup error), or when none answers. An engine that does not
        answer is marked down (warned about) while others do."""
        from docker.errors import ImageNotFound

        missing: list[str] = []
        for engine in self.engines:
            try:
                client = engine.client(self.on_connect)
                client.api.inspect_image(self.image)
                with self._lock:
                    engine.down = None  # answers with the image: up, whatever it was before
            except EngineDown as err:
                self.mark_down(engine, err)
            except ImageNotFound:
                missing.append(str(image_missing(self.image, engine.host)))
            except Exception as err:
                raise SandboxUnavailable(f"Docker engine error at {engine.name}: {err}") from None
        if missing:
            raise SandboxUnavailable("; ".join(missing))
        if not any(e.up for e in self.engines):
            raise SandboxUnavailable(self.all_down())
