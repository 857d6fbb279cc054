"""Registries of environments and agents, by versioned id.

Ids look like ``name-vN`` (``math-chain-sum-v0``). Asking for ``name`` alone resolves to the
highest registered version, so ``grpo-env train --env code-unittest`` works as typed.

Three ways in:
- built-ins, registered when ``grpo_env.environments`` / ``grpo_env.agents`` is imported;
- ``grpo_env.register(...)`` / ``grpo_env.register_agent(...)`` from user code;
- third-party packages, through the entry-point groups ``grpo_env.environments`` and
  ``grpo_env.agents``: the entry point's name is the id and its value the factory
  (``"my-env-v0 = my_pkg.envs:MyEnv"``). They are listed without being imported.

Every environment is also registered with Gymnasium under the same id, so
``gymnasium.make("grpo_env:format-v0")`` works (Gymnasium imports ``grpo_env`` first).
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, Generic, TypeVar

import gymnasium

T = TypeVar("T")

_ID = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*?)-v(?P<version>\d+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class UnknownIdError(KeyError):
    """No registered environment or agent has this id. ``str()`` is a one-line message."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Spec:
    """What the registry knows about one id."""

    id: str
    entry_point: str | Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "user"
    nondeterministic: bool = False

    @property
    def name(self) -> str:
        return split_id(self.id)[0] if _ID.match(self.id) else self.id

    @property
    def version(self) -> int:
        return split_id(self.id)[1] if _ID.match(self.id) else 0

    def load(self) -> Callable[..., Any]:
        if callable(self.entry_point):
            return self.entry_point
        module_name, _, attr = self.entry_point.partition(":")
        if not attr:
            raise ValueError(f"entry point {self.entry_point!r} of {self.id} is not 'module:attr'")
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
        return target


def split_id(full_id: str) -> tuple[str, int]:
    match = _ID.match(full_id)
    if not match:
        raise ValueError(f"id {full_id!r} must look like 'name-vN' (e.g. 'math-v0')")
    return match["name"], int(match["version"])


class Registry(Generic[T]):
    """Id -> factory, with version resolution and entry-point discovery."""

    def __init__(self, kind: str, group: str, builtin_module: str, *, versioned: bool = True):
        self.kind = kind  # "environment" / "agent", for messages
        self.group = group
        self.builtin_module = builtin_module
        self.versioned = versioned  # environments: name-vN; agents: plain names
        self._specs: dict[str, Spec] = {}
        self._loaded = False
        self._loading = False

    def register(
        self,
        id: str,
        entry_point: str | Callable[..., T],
        *,
        description: str = "",
        nondeterministic: bool = False,
        source: str = "user",
        **kwargs: Any,
    ) -> Spec:
        """Register ``entry_point`` (a callable or ``"module:attr"``) under ``id``.

        ``kwargs`` are default keyword arguments of the factory; ``make`` may override them.
        Registering an id twice replaces the first registration (handy in notebooks).
        """
        if self.versioned:
            split_id(id)
        elif not _NAME.match(id):
            raise ValueError(f"{self.kind} name {id!r} may hold only letters, digits, '_.-'")
        spec = Spec(
            id=id,
            entry_point=entry_point,
            kwargs=dict(kwargs),
            description=description,
            source=source,
            nondeterministic=nondeterministic,
        )
        self._specs[id] = spec
        self._on_register(spec)
        return spec

    def _on_register(self, spec: Spec) -> None:
        """Hook for registries that mirror their entries elsewhere."""

    def ensure_loaded(self) -> None:
        """Import the built-ins and discover entry points (once)."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            importlib.import_module(self.builtin_module)
            for ep in metadata.entry_points(group=self.group):
                if ep.name in self._specs:
                    continue  # built-in or user registration wins over a plugin's
                dist = ep.dist.name if ep.dist is not None else "unknown package"
                try:
                    self.register(ep.name, ep.value, source=f"entry point ({dist})")
                except ValueError as err:
                    # One broken plugin must not break `import grpo_env` for everyone.
                    warnings.warn(
                        f"package {dist}: ignoring bad {self.group} entry point: {err}",
                        stacklevel=2,
                    )
            self._loaded = True
        finally:
            self._loading = False

    def specs(self) -> list[Spec]:
        self.ensure_loaded()
        return sorted(self._specs.values(), key=lambda s: (s.name, s.version))

    def resolve(self, id: str) -> Spec:
        """The spec for ``id``; an id without ``-vN`` means its latest version."""
        self.ensure_loaded()
        if id in self._specs:
            return self._specs[id]
        if self.versioned and _NAME.match(id) and not _ID.match(id):
            versions = [s for s in self._specs.values() if s.name == id]
            if versions:
                return max(versions, key=lambda s: s.version)
        raise UnknownIdError(self._unknown_message(id))

    def make(self, id: str, **overrides: Any) -> T:
        spec = self.resolve(id)
        return spec.load()(**{**spec.kwargs, **overrides})

    def _unknown_message(self, id: str) -> str:
        specs = self._specs.values()
        known = sorted({s.id for s in specs} | {s.name for s in specs})
        close = difflib.get_close_matches(id, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(sorted(self._specs)) or "none"
        return f"unknown {self.kind} {id!r}.{hint} Known: {listing}"


class EnvRegistry(Registry[gymnasium.Env]):
    """Environments: also mirrored into Gymnasium's registry under the same id."""

    def _on_register(self, spec: Spec) -> None:
        gymnasium.register(
            id=spec.id,
            entry_point=_GymnasiumEntryPoint(spec.id),
            nondeterministic=spec.nondeterministic,
            disable_env_checker=True,
        )

    def make(self, id: str, **overrides: Any) -> gymnasium.Env:
        spec = self.resolve(id)
        env = spec.load()(**{**spec.kwargs, **overrides})
        if not isinstance(env, gymnasium.Env):
            raise TypeError(
                f"factory of {spec.id} returned {type(env).__name__}, not a gymnasium.Env"
            )
        # Gymnasium's checker re-creates envs through env.spec (render modes, close twice).
        env.unwrapped.spec = replace(gymnasium.spec(spec.id), kwargs=dict(overrides))
        return env


@dataclass(frozen=True)
class _GymnasiumEntryPoint:
    """Gymnasium calls this with the kwargs given to ``gymnasium.make``."""

    env_id: str

    def __call__(self, **kwargs: Any) -> gymnasium.Env:
        spec = envs.resolve(self.env_id)
        return spec.load()(**{**spec.kwargs, **kwargs})


envs: EnvRegistry = EnvRegistry("environment", "grpo_env.environments", "grpo_env.environments")
agents: Registry[Any] = Registry("agent", "grpo_env.agents", "grpo_env.agents", versioned=False)


_USER_MODULES: list[str] = []


def import_user_module(module: str) -> None:
    """Import a user's module (from the current directory too) so its registrations run."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != module.split(".")[0] and err.name != module:
            raise  # the module exists but one of its own imports is missing: show that
        raise ValueError(f"cannot import module {module!r} (not found from {os.getcwd()})") from err
    if module not in _USER_MODULES:
        _USER_MODULES.append(module)


def user_modules() -> list[str]:
    """Modules imported with ``import_user_module`` (``grpo-env -I``), in order: commands that
    start child processes (``grpo-env compare``) pass them on."""
    return list(_USER_MODULES)


def register(id: str, entry_point: str | Callable[..., gymnasium.Env], **kwargs: Any) -> Spec:
    """Register an environment: ``register("reverse-v0", make_reverse_env, description=...)``."""
    return envs.register(id, entry_point, **kwargs)


def make(id: str, **overrides: Any) -> gymnasium.Env:
    """Build a registered environment (``make("math")`` = latest version of ``math``)."""
    return envs.make(id, **overrides)


def register_agent(id: str, entry_point: str | Callable[..., Any], **kwargs: Any) -> Spec:
    return agents.register(id, entry_point, **kwargs)


def make_agent(id: str, **overrides: Any) -> Any:
    return agents.make(id, **overrides)
