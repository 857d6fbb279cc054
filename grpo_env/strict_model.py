"""The base of every configuration model: unknown keys are errors, never silently ignored.

Agents, environments and the trainer all build their configs on ``StrictModel``; a config that
cannot be used raises ``ConfigError`` with a message that says where and what was expected.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says where and what was expected."""


class StrictModel(BaseModel):
    """Unknown keys are rejected (with the valid ones listed by ``check_keys``)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
