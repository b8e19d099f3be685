"""Settings and where they come from.

Precedence (highest first): CLI flag > EVOAGENT_* environment > .evoagent/config.toml >
[tool.evoagent] in the repo's pyproject.toml > ~/.config/evoagent/config.toml > defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from .errors import EvoError
from .state import RepoState


class Settings(BaseModel, extra="forbid"):
    """evoagent settings for one repository."""

    model: str | None = None
    """litellm model name; None picks the first available provider."""
    embedding: str = "none"
    """none | hash[:DIM] | litellm:MODEL | st:/path/to/local/sentence-transformers model."""
    store: str | None = None
    """LanceDB URI of the memory store; None means .evoagent/memory."""
    test_command: str | None = None
    """Command that runs the repo's tests; None detects one."""
    venv: str | None = None
    """The virtualenv the repo's tests run in (relative to the repo root); default `.venv`
    when it exists."""
    mine_batch: int = Field(default=2000, ge=1)
    """Commits per atomic store append while mining (what an interrupt can lose)."""


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "evoagent" / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EvoError(f"{path}: invalid TOML: {exc}") from exc


def _env_layer() -> dict[str, Any]:
    layer = {}
    for name in Settings.model_fields:
        value = os.environ.get(f"EVOAGENT_{name.upper()}")
        if value:
            layer[name] = value
    return layer


def load_settings(state: RepoState, overrides: dict[str, Any] | None = None) -> Settings:
    pyproject = _read_toml(state.root / "pyproject.toml").get("tool", {}).get("evoagent", {})
    layers = [
        ("defaults", {}),
        (str(user_config_path()), _read_toml(user_config_path())),
        ("pyproject.toml [tool.evoagent]", pyproject),
        (str(state.config_file), _read_toml(state.config_file)),
        ("environment", _env_layer()),
        ("command line", {k: v for k, v in (overrides or {}).items() if v is not None}),
    ]
    merged: dict[str, Any] = {}
    for source, layer in layers:
        try:
            Settings(**{**merged, **layer})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EvoError(f"{source}: setting {where!r}: {first['msg']}") from exc
        merged.update(layer)
    return Settings(**merged)


def store_uri(state: RepoState, settings: Settings) -> str:
    """The store URI; a relative local path is relative to the repository root."""
    if not settings.store:
        return str(state.memory_dir)
    if "://" in settings.store or Path(settings.store).is_absolute():
        return settings.store
    return str(state.root / settings.store)
