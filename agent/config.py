"""Settings and where they come from.

Precedence (highest first): CLI flag > EVOAGENT_* environment > .evoagent/config.toml >
[tool.evoagent] in the repo's pyproject.toml > ~/.config/evoagent/config.toml > defaults.

Who may set what: the person (flags, environment, their user config, and an
`.evoagent/config.toml` that git does not track) may set everything. The repository (its
`pyproject.toml`, and a `.evoagent/config.toml` it commits) may set only what is used inside
the sandbox or is harmless; WHO_MAY_SET says which, key by key. A repository's value for a
person-only key is ignored with one warning line: a clone of a stranger's repository must not
pick the code evoagent imports, the model or endpoint it talks to, or where the mined history
is written.

`.evoagent/config.toml` may also hold `[mcp_servers.NAME]` tables: MCP server definitions,
not settings, which agent/mcp_config.py reads under the same rule of who wrote the file.
"""

from __future__ import annotations

import enum
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evoagent.sandbox.untrusted_files import UntrustedFileError, read_untrusted
from pydantic import BaseModel, Field, ValidationError

from .errors import EvoError
from .state import STATE_DIR, RepoState


class Settings(BaseModel, extra="forbid"):
    """evoagent settings for one repository."""

    model: str | None = None
    """litellm model name; None picks the first available provider."""
    api_base: str | None = None
    """Where the model's provider is reached (a local server, a proxy: e.g.
    http://127.0.0.1:8000/v1); None: the provider's default or its own environment variable."""
    context_limit: int | None = Field(default=None, ge=256)
    """Input tokens the model accepts, for a model litellm does not know or a local server
    run with a smaller window; None looks it up in litellm's model table."""
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


class Who(enum.Enum):
    PERSON = "person"
    """Only the person: flags, EVOAGENT_* environment, user config, an untracked
    .evoagent/config.toml."""
    REPOSITORY = "repository"
    """The repository may set it for itself too (pyproject.toml, a committed config)."""


WHO_MAY_SET: dict[str, tuple[Who, str]] = {
    "model": (Who.PERSON, "it picks the model and its provider endpoint, and a "
                          "scripted/<file> model is Python imported into evoagent"),
    "api_base": (Who.PERSON, "it decides where the conversation, code included, is sent"),
    "context_limit": (Who.PERSON, "it sizes what is sent to the person's model; a repository "
                                  "could make every request fail or be cut"),
    "embedding": (Who.PERSON, "it picks the endpoint the history is sent to (litellm:MODEL) "
                              "or a model loaded into evoagent (st:/path)"),
    "store": (Who.PERSON, "it decides where the mined history is written (a path, s3://, "
                          "db://)"),
    "test_command": (Who.REPOSITORY, "it runs only inside the sandbox"),
    "venv": (Who.REPOSITORY, "it is used only inside the sandbox; a repository's value must "
                             "be a path inside the repository"),
    "mine_batch": (Who.REPOSITORY, "a batch size: harmless"),
}
"""Every Settings field, classified. A new field must be added here (checked at import)."""

if set(WHO_MAY_SET) != set(Settings.model_fields):
    raise RuntimeError(
        "agent/config.py: classify every setting in WHO_MAY_SET: "
        f"{sorted(set(Settings.model_fields) ^ set(WHO_MAY_SET))}"
    )

PERSON_ONLY = frozenset(k for k, (who, _) in WHO_MAY_SET.items() if who is Who.PERSON)

MCP_TABLE = "mcp_servers"
"""A table of `.evoagent/config.toml` that holds MCP server definitions, not settings
(agent/mcp_config.py)."""

REPO_FILE_LIMIT = 4 << 20
"""Bytes of a repository's pyproject.toml or config.toml evoagent reads at most."""


@dataclass(frozen=True)
class Layer:
    source: str
    """Named in errors and warnings: a file (and table), "environment", "command line"."""
    values: dict[str, Any]
    repository: bool = False
    """True when the repository, not the person, controls these values."""


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "evoagent" / "config.toml"


def _parse_toml(path: Path, data: bytes) -> dict[str, Any]:
    try:
        return tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EvoError(f"{path}: invalid TOML: {exc}") from exc


def _read_toml(path: Path) -> dict[str, Any]:
    """A file of the person's (follows links: where they keep it is their choice)."""
    if not path.is_file():
        return {}
    return _parse_toml(path, path.read_bytes())


def _read_repo_toml(path: Path, root: Path,
                    warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """A file the repository controls: never through a link, a FIFO or a huge file (then it
    is skipped with one warning line, its bytes never shown)."""
    if not os.path.lexists(path):
        return {}
    try:
        data = read_untrusted(path, REPO_FILE_LIMIT, root=root)
    except UntrustedFileError as exc:
        (warn or warn_once)(f"evoagent: not reading settings from {exc}")
        return {}
    return _parse_toml(path, data)


def tracked_by_git(root: Path, rel: str) -> bool:
    """Whether the repository at `root` has `rel` in git's index: the path itself, anything
    under it, or a file or symlink standing where one of its parent directories should be.
    Case-insensitive (a case-insensitive file system checks out `.EvoAgent/x` as
    `.evoagent/x`). When git cannot tell, the answer is True: unknown counts as the
    repository's."""
    parts = Path(rel).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    proc = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--", *(f":(icase){p}" for p in prefixes)],
        capture_output=True, check=False,
    )
    if proc.returncode != 0:
        return True
    wanted = rel.casefold()
    exact = {p.casefold() for p in prefixes}
    for entry in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        name = entry.casefold()
        if name in exact or name.startswith(wanted + "/"):
            return True
    return False


_warned: set[str] = set()


def warn_once(line: str) -> None:
    """One line on stderr, once per process (settings are loaded more than once by some
    commands)."""
    if line in _warned:
        return
    _warned.add(line)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _env_layer() -> dict[str, Any]:
    layer = {}
    for name in Settings.model_fields:
        value = os.environ.get(f"EVOAGENT_{name.upper()}")
        if value:
            layer[name] = value
    return layer


def repo_config_layer(root: Path, warn: Callable[[str], None] | None = None) -> Layer:
    """`.evoagent/config.toml` of the repository at `root`, all of it (its settings and its
    `[mcp_servers]`): the person's own file unless git tracks it. evoagent keeps
    `.evoagent/` out of git through .git/info/exclude, but a repository can still commit
    one; git's index, not the exclude file, says which it is. Invalid TOML raises EvoError."""
    path = RepoState(root).config_file
    if not os.path.lexists(path):
        return Layer(str(path), {})
    if tracked_by_git(root, f"{STATE_DIR}/config.toml"):
        return Layer(f"{path} (tracked by git)", _read_repo_toml(path, root, warn), True)
    return Layer(str(path), _read_toml(path))


def _settings_of(layer: Layer) -> Layer:
    """The layer without the tables that are not settings (MCP_TABLE: mcp_config.py reads
    it, under the same rule of who wrote the file)."""
    if MCP_TABLE not in layer.values:
        return layer
    values = {k: v for k, v in layer.values.items() if k != MCP_TABLE}
    return Layer(layer.source, values, layer.repository)


def _allowed(layer: Layer, root: Path) -> dict[str, Any]:
    """A repository layer's values minus what a repository may not set (one warning line
    each); other layers unchanged."""
    if not layer.repository:
        return layer.values
    kept = {}
    for key, value in layer.values.items():
        if key in PERSON_ONLY:
            warn_once(
                f"evoagent: ignoring {key!r} from {layer.source}: a repository may not "
                f"set it ({WHO_MAY_SET[key][1]}); set it in {user_config_path()} or "
                f"EVOAGENT_{key.upper()}"
            )
        elif key == "venv" and isinstance(value, str) and not _inside(root, value):
            warn_once(
                f"evoagent: ignoring 'venv' from {layer.source}: a repository's venv must "
                "be a path inside the repository"
            )
        else:
            kept[key] = value  # unknown keys stay: validation names them
    return kept


def _inside(root: Path, rel: str) -> bool:
    """Whether `rel`, relative and with its links resolved, stays inside `root`."""
    if not rel or Path(rel).is_absolute():
        return False
    return (root / rel).resolve().is_relative_to(root.resolve())


def load_settings(state: RepoState, overrides: dict[str, Any] | None = None) -> Settings:
    tool = _read_repo_toml(state.root / "pyproject.toml", state.root).get("tool", {})
    table = tool.get("evoagent", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise EvoError(f"{state.root / 'pyproject.toml'}: [tool.evoagent] is not a table")
    layers = [
        Layer("defaults", {}),
        Layer(str(user_config_path()), _read_toml(user_config_path())),
        Layer(f"{state.root / 'pyproject.toml'} [tool.evoagent]", table, True),
        _settings_of(repo_config_layer(state.root)),
        Layer("environment", _env_layer()),
        Layer("command line", {k: v for k, v in (overrides or {}).items() if v is not None}),
    ]
    merged: dict[str, Any] = {}
    for layer in layers:
        values = _allowed(layer, state.root)
        try:
            Settings(**{**merged, **values})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EvoError(f"{layer.source}: setting {where!r}: {first['msg']}") from exc
        merged.update(values)
    return Settings(**merged)


def store_uri(state: RepoState, settings: Settings) -> str:
    """The store URI; a relative local path is relative to the repository root."""
    if not settings.store:
        return str(state.memory_dir)
    if "://" in settings.store or Path(settings.store).is_absolute():
        return settings.store
    return str(state.root / settings.store)
