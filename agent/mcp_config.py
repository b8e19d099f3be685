"""MCP server definitions: the person's `mcp.json`, `.evoagent/config.toml`'s
`[mcp_servers.NAME]` tables, and the repository's `.mcp.json` (docs/mcp.md).

The JSON files use the common shape `{"mcpServers": {NAME: {"command": ..., "args": [...],
"env": {...}}}}`, the TOML tables the same keys; the person's may also name HTTP servers
(`{"url": ..., "headers": {...}}`).

Who may define what (docs/architecture.md, Threat model): the person's file
(`$XDG_CONFIG_HOME/evoagent/mcp.json`, default `~/.config/evoagent/mcp.json`) is trusted,
and so is `.evoagent/config.toml` while git does not track it (agent/config.py decides who
wrote it, as for settings); a repository's `.mcp.json`, or a config.toml it commits, is not.
Their servers are listed but not started until the person approved that exact definition
once: `.evoagent/mcp-approved.json` holds a sha256 of each approved definition (its name,
command, arguments and environment), so a changed definition needs approval again. A
repository may define stdio servers only (a URL decides where data goes), and `${VAR}` in
its `env` is never expanded: only the person's own config may hand a variable of their
environment (a token) to a server.

Every stdio server runs in the sandbox whoever defined it (agent/mcp_tools.py). A bad file
costs one warning line and the servers of that file, a bad entry that entry alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evoagent.sandbox.untrusted_files import UntrustedFileError, read_untrusted

from .config import MCP_TABLE, repo_config_layer, tracked_by_git, user_config_path, warn_once
from .errors import EvoError
from .state import STATE_DIR, RepoState
from .terminal_text import one_line

PROJECT_FILE = ".mcp.json"
APPROVALS_FILE = "mcp-approved.json"
FILE_LIMIT = 1 << 20
"""Bytes of an MCP definition or approvals file read at most."""
SERVER_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_)){0,31}")
"""A server name: it becomes the prefix of `server__tool`, so no `__` inside and short."""
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PERSON, PROJECT = "person", "project"


def user_mcp_path() -> Path:
    """The person's MCP servers, beside their config.toml (XDG_CONFIG_HOME honoured)."""
    return user_config_path().with_name("mcp.json")


@dataclass(frozen=True)
class ServerDef:
    """One server as a file defines it. Values stay as written: `${VAR}` references are
    resolved only when the server starts (`environment`), so no secret sits in here."""

    name: str
    origin: str
    """PERSON (their own mcp.json or config.toml, or their editor's) or PROJECT (the
    repository's .mcp.json, or a config.toml git tracks)."""
    source: Path
    """The file that defines it (named in warnings)."""
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    given_env: bool = False
    """Every `env`/`headers` value is the person's explicit choice, passed as written (an
    editor's ACP `mcpServers` carry values, not `${VAR}` references)."""

    @property
    def digest(self) -> str:
        """sha256 of the definition: what an approval is bound to."""
        data = {"name": self.name, "command": self.command, "args": list(self.args),
                "env": dict(self.env), "url": self.url, "headers": dict(self.headers)}
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def environment(self, environ: Mapping[str, str] | None = None,
                    warn: Callable[[str], None] = warn_once) -> tuple[dict[str, str], dict[str, str]]:
        """(named, literal): variables the person's config passes from their environment
        (`"TOKEN": "${TOKEN}"`, given as is, secret-looking or not), and plain values
        (which the sandbox still filters by name). A repository's `${...}` is never expanded,
        and a variable missing from the environment is left out; one warning line each."""
        return _expand(self, self.env, environ, warn)

    def header_values(self, environ: Mapping[str, str] | None = None,
                      warn: Callable[[str], None] = warn_once) -> dict[str, str]:
        """An HTTP server's headers with `${VAR}` resolved (the person's config only)."""
        named, literal = _expand(self, self.headers, environ, warn)
        return {**literal, **named}


def _expand(server: ServerDef, values: Mapping[str, str], environ: Mapping[str, str] | None,
            warn: Callable[[str], None]) -> tuple[dict[str, str], dict[str, str]]:
    environ = os.environ if environ is None else environ
    named: dict[str, str] = {}
    literal: dict[str, str] = {}
    for key, value in values.items():
        wanted = _VARIABLE.findall(value)
        if server.given_env and server.origin == PERSON:
            named[key] = value
        elif not wanted and "$" not in value:
            literal[key] = value
        elif server.origin != PERSON:
            warn(f"evoagent: MCP server {server.name!r} ({server.source}): not passing "
                 f"{one_line(key, 60)!r}: a repository may not name your environment's variables")
        elif missing := [v for v in wanted if v not in environ]:
            warn(f"evoagent: MCP server {server.name!r}: not passing {key!r}: "
                 f"{', '.join(missing)} is not set")
        else:
            named[key] = _VARIABLE.sub(lambda m: environ[m.group(1)], value)
    return named, literal


def transport(server: ServerDef, limit: int = 120) -> str:
    """`stdio: COMMAND LINE` or `http: URL`, one terminal-safe line of at most ~`limit`."""
    if server.url is not None:
        return f"http: {one_line(server.url, limit)}"
    return f"stdio: {one_line(shlex.join([server.command or '', *server.args]), limit)}"


def waiting_line(server: ServerDef) -> str:
    """One line saying that a repository's server waits for the person's approval, and the
    command that gives it (the definition shown terminal-safe and cut)."""
    return (f"evoagent: MCP server {server.name!r} of {one_line(str(server.source), 120)} "
            f"waits for your approval ({transport(server, 80)}): run `evoagent mcp approve "
            f"{server.name}` to start it")


@dataclass
class McpServers:
    """What the definitions allow for one repository."""

    start: list[ServerDef] = field(default_factory=list)
    """Servers to start: the person's, and the repository's the person approved."""
    unapproved: list[ServerDef] = field(default_factory=list)
    """The repository's servers waiting for the person's approval (listed, not started)."""


def load_servers(root: Path, warn: Callable[[str], None] = warn_once,
                 user_file: Path | None = None, extra: Iterable[ServerDef] = ()) -> McpServers:
    """The servers of every source, split into those to start and those waiting for
    approval. The person's win a name the repository's define too (one warning line); among
    the person's, the most specific wins silently, as settings do: `extra` (a front end's,
    e.g. an editor's ACP `mcpServers`), then `root`'s config.toml, then their mcp.json.
    Among the repository's, .mcp.json wins over a committed config.toml (one warning line)."""
    root = Path(root)
    user_file = user_file or user_mcp_path()
    extra = list(extra)
    editor = {s.name for s in extra}
    configured = _config_servers(root, warn)
    person = _first_of_each([*extra, *(s for s in configured if s.origin == PERSON),
                             *_servers(user_file, PERSON, None, warn)])
    project = _first_of_each([*_servers(root / PROJECT_FILE, PROJECT, root, warn),
                              *(s for s in configured if s.origin == PROJECT)], warn)
    approved = read_approvals(root, warn) if project else {}
    result = McpServers(start=list(person))
    mine = {s.name: s for s in person}
    for server in project:
        if server.name in mine:
            by = "your editor" if server.name in editor else f"your {mine[server.name].source}"
            warn(f"evoagent: ignoring MCP server {server.name!r} of {server.source}: "
                 f"{by} defines it")
        elif approved.get(server.name) == server.digest:
            result.start.append(server)
        else:
            result.unapproved.append(server)
    return result


def _first_of_each(servers: list[ServerDef],
                   warn: Callable[[str], None] | None = None) -> list[ServerDef]:
    """The first definition of each name; the others dropped (with a line each if `warn`)."""
    kept: dict[str, ServerDef] = {}
    for server in servers:
        if server.name not in kept:
            kept[server.name] = server
        elif warn is not None:
            warn(f"evoagent: ignoring MCP server {server.name!r} of {server.source}: "
                 f"{kept[server.name].source} defines it too")
    return list(kept.values())


def _config_servers(root: Path, warn: Callable[[str], None]) -> list[ServerDef]:
    """The `[mcp_servers.NAME]` tables of `root`'s .evoagent/config.toml: the person's while
    git does not track the file, the repository's when it does (agent/config.py)."""
    path = RepoState(root).config_file
    try:
        layer = repo_config_layer(root, warn)
    except EvoError as exc:  # invalid TOML (the settings say so too)
        warn(f"evoagent: ignoring MCP servers: {exc.message}")
        return []
    table = layer.values.get(MCP_TABLE)
    if table is None:
        return []
    if not isinstance(table, dict):
        warn(f"evoagent: ignoring MCP servers of {path}: {MCP_TABLE} must be a table of "
             f"servers ([{MCP_TABLE}.NAME])")
        return []
    origin = PROJECT if layer.repository else PERSON
    servers = [_server(path, origin, name, entry, warn) for name, entry in table.items()]
    return [s for s in servers if s is not None]


def _servers(path: Path, origin: str, root: Path | None,
             warn: Callable[[str], None]) -> list[ServerDef]:
    """The valid servers of one file (none when it is absent or unreadable as a whole)."""
    if not os.path.lexists(path):
        return []
    try:
        raw = path.read_bytes() if root is None else read_untrusted(path, FILE_LIMIT, root=root)
        data = json.loads(raw.decode("utf-8"))
    except UntrustedFileError as exc:
        warn(f"evoagent: ignoring MCP servers: {exc}")
        return []
    except OSError as exc:
        warn(f"evoagent: ignoring MCP servers of {path}: {exc.strerror or exc}")
        return []
    except UnicodeDecodeError:
        warn(f"evoagent: ignoring MCP servers of {path}: not UTF-8")
        return []
    except json.JSONDecodeError as exc:
        warn(f"evoagent: ignoring MCP servers of {path}: invalid JSON ({exc.msg} at line "
             f"{exc.lineno} column {exc.colno})")
        return []
    except ValueError:  # e.g. a number too long to convert
        warn(f"evoagent: ignoring MCP servers of {path}: invalid JSON")
        return []
    table = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        warn(f'evoagent: ignoring MCP servers of {path}: expected {{"mcpServers": {{...}}}}')
        return []
    servers = []
    for name, entry in table.items():
        server = _server(path, origin, name, entry, warn)
        if server is not None:
            servers.append(server)
    return servers


def _server(path: Path, origin: str, name: str, entry: Any,
            warn: Callable[[str], None]) -> ServerDef | None:
    if not SERVER_NAME.fullmatch(name):
        warn(f"evoagent: ignoring MCP server {one_line(name, 40)!r} of {path}: a name is 1-32 "
             "letters, digits, '-' or single '_'")
        return None
    problem = _problem(entry, origin)
    if problem:
        warn(f"evoagent: ignoring MCP server {name!r} of {path}: {problem}")
        return None
    return ServerDef(
        name=name, origin=origin, source=path, command=entry.get("command"),
        args=tuple(entry.get("args", ())), env=dict(entry.get("env", {})),
        url=entry.get("url"), headers=dict(entry.get("headers", {})),
    )


def _problem(entry: Any, origin: str) -> str | None:
    """Why `entry` is not a usable definition (None: it is). Unknown keys are allowed:
    other clients' files carry their own (`disabled`, `autoApprove`, ...)."""
    if not isinstance(entry, dict):
        return "not an object"
    command, url = entry.get("command"), entry.get("url")
    if (command is None) == (url is None):
        return 'give either "command" (stdio) or "url" (HTTP)'
    if url is not None:
        if origin != PERSON:
            return "a repository may define only stdio servers (a URL decides where data goes)"
        if not isinstance(url, str) or not re.match(r"https?://", url):
            return '"url" must be an http:// or https:// address'
        if entry.get("type") == "sse":
            return "SSE servers are not supported (use the streamable HTTP endpoint)"
    elif not isinstance(command, str) or not command.strip() or "\0" in command:
        return '"command" must be a non-empty string'
    if not _strings(entry.get("args", []), list):
        return '"args" must be a list of strings'
    for key in ("env", "headers"):
        if not _strings(entry.get(key, {}), dict):
            return f'"{key}" must map names to strings'
    return None


def _strings(value: Any, kind: type) -> bool:
    """`value` is a `kind` (list or dict) of strings, keys included, without NUL."""
    if not isinstance(value, kind):
        return False
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
    return all(isinstance(v, str) and "\0" not in v for v in items)


# -- approvals of the repository's servers -------------------------------------------------


def approvals_path(root: Path) -> Path:
    return Path(root) / STATE_DIR / APPROVALS_FILE


def read_approvals(root: Path, warn: Callable[[str], None] = warn_once) -> dict[str, str]:
    """Approved definitions, server name -> sha256. A file git tracks is the repository's,
    not the person's, and approves nothing (a clone could ship its own approvals)."""
    path = approvals_path(root)
    if not os.path.lexists(path):
        return {}
    if tracked_by_git(root, f"{STATE_DIR}/{APPROVALS_FILE}"):
        warn(f"evoagent: ignoring {path}: it is tracked by git, so the repository wrote it")
        return {}
    try:
        data = json.loads(read_untrusted(path, FILE_LIMIT, root=root).decode("utf-8"))
    except (UntrustedFileError, UnicodeDecodeError, ValueError) as exc:
        reason = exc if isinstance(exc, UntrustedFileError) else f"{path}: not JSON"
        warn(f"evoagent: no repository MCP server is approved: {reason}")
        return {}
    approved = data.get("approved") if isinstance(data, dict) else None
    if not isinstance(approved, dict):
        return {}
    return {k: v for k, v in approved.items() if isinstance(k, str) and isinstance(v, str)}


def approve(root: Path, server: ServerDef) -> None:
    """Record the person's approval of this exact definition (atomic replace)."""
    approved = read_approvals(root, warn=lambda line: None)
    approved[server.name] = server.digest
    _write_approvals(root, approved)


def revoke(root: Path, name: str) -> bool:
    """Withdraw the approval of server `name` (atomic replace); False when there was none."""
    approved = read_approvals(root, warn=lambda line: None)
    if approved.pop(name, None) is None:
        return False
    _write_approvals(root, approved)
    return True


def _write_approvals(root: Path, approved: dict[str, str]) -> None:
    path = approvals_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"version": 1, "approved": approved}, indent=2, sort_keys=True)
                       + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
