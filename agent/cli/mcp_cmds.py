"""MCP server commands: mcp list|approve|revoke (default: list).

What `list` shows is what a conversation would do with each server (agent/mcp_config.py):
the person's own servers start, a repository's start once the person approved that exact
definition, and everything else is refused with its reason; notes say what the agent's
genome changes (MCP off, a server its policy does not allow or it disables, a server given
the network). Nothing here starts a server.

A repository's definition is untrusted text: every name, command line and URL is printed
through `one_line` (escape sequences and controls removed), and `approve` says when it
removed any, so the person knows the line shown is not all the definition holds.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import EvoError
from ..terminal_text import one_line, terminal_safe
from .output import echo, emit_json

if TYPE_CHECKING:
    from ..mcp_config import McpServers, ServerDef

SHOWN_CHARS = 120
"""A command line or URL in `list` is cut here; `approve` shows it whole."""
WHOLE = 100_000


def _load(root: Path) -> tuple[McpServers, list[str], dict[str, str]]:
    """The servers, the warnings of loading them (one per refused server or file), and the
    approvals on record."""
    from ..mcp_config import load_servers, read_approvals

    warnings: list[str] = []
    servers = load_servers(root, warn=warnings.append)
    approved = read_approvals(root, warn=lambda line: None)  # its warning is in `warnings`
    return servers, list(dict.fromkeys(warnings)), approved


def _transport(server: ServerDef, limit: int = SHOWN_CHARS) -> str:
    """`stdio: COMMAND LINE` or `http: URL`, one safe line."""
    from ..mcp_config import transport

    return transport(server, limit)


def _defined_in(server: ServerDef, root: Path) -> str:
    """Whose the definition is and which file holds it, in a few words."""
    from ..mcp_config import PERSON, PROJECT_FILE
    from ..state import RepoState

    whose = "your" if server.origin == PERSON else "repository"
    if server.source == root / PROJECT_FILE:
        return f"{whose} {PROJECT_FILE}"
    if server.source == RepoState(root).config_file:
        return f"{whose} .evoagent/config.toml"
    return f"{whose} {server.source.name}"


def _hides_characters(server: ServerDef) -> bool:
    """Whether the definition holds text `one_line` would not show as it is: escape
    sequences, control characters, or whitespace other than a space."""
    texts = [server.command or "", server.url or "", *server.args, *server.env, *server.env.values()]
    return any(terminal_safe(t) != t or any(c.isspace() and c != " " for c in t) for t in texts)


def _reason(line: str) -> str:
    return one_line(line.removeprefix("evoagent: "), 300)


KEPT_OFF = "kept off by the agent (see note)"
"""The status of a server the person's files would start but the agent's genome keeps off."""


def _notes(root: Path, servers: McpServers) -> tuple[list[str], set[str]]:
    """(notes, names the genome keeps off): why servers may still not start (the genome's
    policy has MCP off or does not allow the server, the genome disables it, stdio servers
    have no sandbox to run in), and which get the network."""
    from ..state import STATE_DIR

    notes: list[str] = []
    off: set[str] = set()
    policy_file = root / STATE_DIR / "agent" / "policy.toml"  # the live genome's, once made
    listed = servers.start + servers.unapproved
    if listed and policy_file.is_file():
        from ..genome import Genome

        try:
            genome = Genome.load(policy_file.parent)
        except EvoError as exc:
            return [f"the agent's definition cannot be loaded: {one_line(exc.message)}"], off
        policy, tools = genome.policy, genome.settings.tools
        if not policy.mcp:
            notes.append(f"the agent's policy ({policy_file}) has mcp = false: "
                         "no server starts until a person turns it on")
            off = {s.name for s in listed}
        for server in listed if policy.mcp else []:
            if not policy.allows_mcp_server(server.name):
                off.add(server.name)
                notes.append(f"MCP server {server.name!r} does not start: the agent's policy "
                             "does not allow it (policy.toml mcp_servers)")
            elif not tools.uses_mcp(server.name):
                off.add(server.name)
                notes.append(f"MCP server {server.name!r} does not start: the agent disables "
                             "it (agent.toml [tools] mcp_disabled)")
            elif server.url is None and policy.mcp_server_network(server.name):
                notes.append(f"MCP server {server.name!r} runs with the network "
                             f"(policy.toml {'network' if policy.network else 'mcp_network'})")
    if any(s.url is None for s in servers.start):
        from evoagent.sandbox.bwrap import bwrap_path

        if bwrap_path() is None:
            notes.append("bubblewrap (bwrap) is not installed: stdio servers run only in its "
                         "sandbox, so they do not start")
    return notes, off


def _open_root() -> Path:
    from ..state import open_repo

    return open_repo().root


@click.group(invoke_without_command=True)
@click.pass_context
def mcp(ctx: click.Context) -> None:
    """MCP servers offered as tools: list, approve, revoke (default: list).

    Your servers ($XDG_CONFIG_HOME/evoagent/mcp.json, or [mcp_servers.NAME] in an
    .evoagent/config.toml git does not track) start in conversations; a repository's
    (.mcp.json, or a committed .evoagent/config.toml) only once you approved its exact
    definition. See docs/mcp.md.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_servers)


@mcp.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_servers(as_json: bool = False) -> None:
    """List the MCP servers known here and whether each will start.

    Starts none: shows where each is defined, what it runs (a command line or a URL), and
    whether it will start, waits for your approval, or is refused (and why).
    """
    from ..mcp_config import PROJECT_FILE, user_mcp_path
    from ..state import RepoState

    root = _open_root()
    servers, warnings, approved = _load(root)
    notes, off = _notes(root, servers)
    rows = [(s, KEPT_OFF if s.name in off else "will start") for s in servers.start] + [
        (s, "changed since you approved it: waiting for your approval"
         if s.name in approved else "waiting for your approval") for s in servers.unapproved]
    if as_json:
        emit_json({
            "servers": [_as_json(s, status, approved) for s, status in rows],
            "refused": [_reason(w) for w in warnings],
            "notes": notes,
            "files": {"person": str(user_mcp_path()), "project": str(root / PROJECT_FILE),
                      "config": str(RepoState(root).config_file)},
        })
        return
    if not rows and not warnings:
        echo(f"no MCP servers: define yours in {user_mcp_path()}, a repository's are in "
             f"{root / PROJECT_FILE}")
        return
    if rows:
        where = {s.name: _defined_in(s, root) for s, _ in rows}
        name_width = max(len("NAME"), *(len(s.name) for s, _ in rows))
        where_width = max(len("DEFINED IN"), *(len(w) for w in where.values()))
        status_width = max(len(status) for _, status in rows)
        echo(f"{'NAME':<{name_width}}  {'DEFINED IN':<{where_width}}  "
             f"{'STATUS':<{status_width}}  TRANSPORT")
        for server, status in rows:
            echo(f"{server.name:<{name_width}}  {where[server.name]:<{where_width}}  "
                 f"{status:<{status_width}}  {_transport(server)}")
    for line in warnings:
        echo(f"refused: {_reason(line)}")
    for note in notes:
        echo(f"note: {note}")
    if servers.unapproved:
        echo("to start a waiting server (its command line above): evoagent mcp approve NAME")


def _as_json(server: ServerDef, status: str, approved: dict[str, str]) -> dict[str, Any]:
    """One server for `list --json`: exact strings, but never the values of `env` or
    `headers` (the person's own may hold a token)."""
    return {
        "name": server.name,
        "defined_in": server.origin,
        "file": str(server.source),
        "transport": "http" if server.url is not None else "stdio",
        "command": None if server.url is not None else [server.command, *server.args],
        "url": server.url,
        "env": sorted(server.env),
        "headers": sorted(server.headers),
        "status": {"will start": "will_start", KEPT_OFF: "kept_off"}.get(
            status, "waiting_for_approval"),
        "changed_since_approved": status not in ("will start", KEPT_OFF)
        and server.name in approved,
    }


def _find(servers: McpServers, warnings: list[str], name: str, verb: str) -> ServerDef:
    """The repository server NAME, or one line (exit 2) saying why there is none to `verb`."""
    shown = one_line(name, 60)
    for server in servers.start + servers.unapproved:
        if server.name == name and server.origin == "person":
            raise EvoError(f"MCP server {shown!r} is defined in your own config "
                           f"({server.source}): it needs no approval")
        if server.name == name:
            return server
    refused = [w for w in warnings if f"MCP server {name!r} " in w]
    if refused:
        raise EvoError(f"cannot {verb} it: {_reason(refused[0])}")
    raise EvoError(f"no MCP server named {shown!r} in this repository's .mcp.json or "
                   ".evoagent/config.toml (see `evoagent mcp list`)")


@mcp.command()
@click.argument("name")
def approve(name: str) -> None:
    """Approve this repository's MCP server NAME as it is defined now.

    It then starts (in the sandbox) in your conversations; any change to its command,
    arguments or environment needs your approval again.
    """
    from ..mcp_config import approve as record_approval

    root = _open_root()
    servers, warnings, approved = _load(root)
    server = _find(servers, warnings, name, "approve")
    if approved.get(server.name) == server.digest:
        echo(f"MCP server {server.name!r} is already approved as it is: {_transport(server, WHOLE)}")
        return
    record_approval(root, server)
    echo(f"approved MCP server {server.name!r} of {server.source}:")
    echo(f"  runs: {one_line(shlex.join([server.command or '', *server.args]), WHOLE)}")
    for key, value in sorted(server.env.items()):
        echo(f"  env:  {one_line(key, 200)}={one_line(value, WHOLE)}")
    if _hides_characters(server):
        echo("  note: the definition holds control characters or escape sequences, left out "
             "above; `evoagent mcp list --json` shows them escaped")
    echo("it starts in the sandbox in your next conversation; a changed definition is asked again")


@mcp.command()
@click.argument("name")
def revoke(name: str) -> None:
    """Withdraw your approval of MCP server NAME: it no longer starts."""
    from ..mcp_config import revoke as withdraw_approval

    root = _open_root()
    servers, _, approved = _load(root)
    shown = one_line(name, 60)
    if name not in approved:
        mine = [s for s in servers.start if s.name == name and s.origin == "person"]
        if mine:
            raise EvoError(f"MCP server {shown!r} is defined in your own config "
                           f"({mine[0].source}): there is no approval to revoke")
        raise EvoError(f"MCP server {shown!r} is not approved in this repository")
    withdraw_approval(root, name)
    echo(f"revoked your approval of MCP server {shown!r}: it does not start until approved again")


COMMANDS = [mcp]
