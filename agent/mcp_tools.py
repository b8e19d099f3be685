"""MCP servers as tools: start the servers of one run, list their tools, offer each to the
model as `server__tool` (agent/mcp_tool.py), call it with a timeout.

The MCP SDK is async and the agent loop is not: one `McpClients` per run owns one event
loop on its own daemon thread; every server's connection (agent/mcp_connection.py) is one
task on it, which enters the SDK's context managers (`stdio_client`, `ClientSession`) and
stays inside them until the run closes, and each tool call is a coroutine handed to that
loop, waited for with a timeout.

A stdio server runs in the sandbox, whoever defined it, with the run's own bubblewrap
command line; its network is the policy's `network` unless `mcp_network` grants it to that
server. Without bubblewrap no stdio server starts. An HTTP server (the person's config
only) is reached from this process. The genome decides which servers may start and which
of their tools are offered (`open_mcp`).

What a server says is untrusted like sandbox output: tool names that an API would refuse,
oversized schemas and descriptions are dropped or cut, results become bounded text, and only
the person's own servers may skip the approval by declaring a tool read-only. A server that
fails to start, hangs (listing or a call past its timeout) or answers malformed costs one
warning line and its tools, never the session.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evoagent.sandbox.bwrap import BwrapRunner, home_dirs

from .config import warn_once
from .mcp_config import PERSON, McpServers, ServerDef, waiting_line
from .mcp_connection import (
    MAX_TOOLS,
    Connection,
    ServerOff,
    StderrTail,
    reason,
    sandboxed_command,
)
from .mcp_tool import McpTool, result_text
from .terminal_text import one_line
from .tools.base import Tool, ToolOutput, bound

if TYPE_CHECKING:
    from .genome import Policy, ToolSettings

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
"""Seconds a server has to start, answer `initialize` and list its tools."""
CALL_TIMEOUT = 120.0
"""Seconds one tool call may take (the run tool's cap applies too)."""
CLOSE_TIMEOUT = 10.0
"""Seconds closing waits for the servers (the SDK gives each a few to exit, then kills)."""
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What model APIs accept as a function name; `server__tool` must fit."""
SCHEMA_CHARS = 16_000


# -- the run's servers ---------------------------------------------------------------------


class McpClients:
    """The MCP servers of one run: started by `start`, offered by `tools`, ended by `close`.

    `runner` is the run's own (its config decides the binds and the network) and `workspace`
    the servers' working directory. `network` names the stdio servers whose sandbox keeps the
    network even when the runner's has none (the policy's `mcp_network`), and `uses` says
    which `server__tool` names are offered (the genome's `mcp_disabled`; None: all). `warn`
    gets one line per server that fails; the lines are also kept in `warnings`."""

    def __init__(self, servers: McpServers | Sequence[ServerDef], runner: Any, workspace: Path,
                 warn: Callable[[str], None] = warn_once, start_timeout: float = START_TIMEOUT,
                 call_timeout: float = CALL_TIMEOUT, environ: Mapping[str, str] | None = None,
                 network: Collection[str] = (), uses: Callable[[str], bool] | None = None):
        self.servers = list(servers.start if isinstance(servers, McpServers) else servers)
        self.runner = runner
        self.network = frozenset(network)
        self.uses = uses
        self.workspace = Path(workspace)
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self.environ = environ
        self.warnings: list[str] = []
        self._warn = warn
        self._connections: list[Connection] = []
        self._tools: dict[str, Tool] | None = None
        self._started_at = 0.0
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def warn(self, line: str) -> None:
        self.warnings.append(line)
        self._warn(line)

    # lifecycle

    def start(self) -> McpClients:
        """Start every server (returns at once; `tools` waits for them)."""
        if not self.servers or self._loop is not None:
            return self
        import asyncio

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="evoagent-mcp",
                                        daemon=True)
        self._thread.start()
        self._started_at = time.monotonic()
        for server in self.servers:
            try:
                transport, stderr = self._transport(server)
            except ServerOff as exc:
                self.warn(f"evoagent: MCP server {server.name!r} is off for this session: {exc}")
                continue
            connection = Connection(server, transport, stderr)
            connection.task = asyncio.run_coroutine_threadsafe(connection.serve(), self._loop)
            self._connections.append(connection)
        return self

    def tools(self) -> dict[str, Tool]:
        """The tools of every server that started, by `server__tool` name (waits, at most
        the start timeout since `start`, for servers still starting)."""
        if self._tools is not None:
            return self._tools
        tools: dict[str, Tool] = {}
        for connection in self._connections:
            left = max(0.0, self._started_at + self.start_timeout - time.monotonic())
            try:
                specs = connection.listed.result(timeout=left)
            except concurrent.futures.TimeoutError:
                self._turn_off(connection, f"it did not start within {self.start_timeout:g}s")
                continue
            except ServerOff as exc:
                self._turn_off(connection, f"it did not start ({exc})")
                continue
            tools.update(self._wrap(connection, specs))
        self._tools = tools
        return tools

    def close(self) -> None:
        """Stop every server and the loop thread (idempotent)."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        for connection in self._connections:
            connection.stop(loop)
        deadline = time.monotonic() + CLOSE_TIMEOUT
        for connection in self._connections:
            if connection.task is not None:
                try:
                    connection.task.result(timeout=max(0.0, deadline - time.monotonic()))
                except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                    log.warning("MCP server %r did not stop in time", connection.server.name)
            if connection.stderr is not None:
                connection.stderr.close()
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(CLOSE_TIMEOUT)
        if not loop.is_running():
            loop.close()

    def __enter__(self) -> McpClients:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # calls

    def call(self, tool: McpTool, args: dict[str, Any], timeout: float, limit: int) -> ToolOutput:
        """One call of `tool`; a server that hangs or breaks is turned off (one warning)."""
        import asyncio

        connection = tool.connection
        if connection.off is not None or self._loop is None:
            return ToolOutput(f"{tool.name}: the MCP server {connection.server.name!r} is off "
                              f"for this session ({connection.off or 'closed'}); do not call "
                              "its tools again", ok=False)
        if connection.ended is not None:
            return self._failed(tool, f"{tool.name}: the server's session ended: {connection.ended}")
        future = asyncio.run_coroutine_threadsafe(
            connection.call(tool.remote, args, timeout), self._loop)
        try:
            result = future.result(timeout=timeout + 5.0)  # the coroutine times itself out
        except TimeoutError:
            future.cancel()
            return self._failed(tool, f"{tool.name} timed out after {timeout:g}s")
        except Exception as exc:
            if _is_tool_error(exc):
                return ToolOutput(f"{tool.name} failed: {one_line(str(exc), 500)}", ok=False)
            return self._failed(tool, f"{tool.name}: {reason(exc)}")
        try:
            text, ok = result_text(result)
        except (AttributeError, TypeError, ValueError):
            return self._failed(tool, f"{tool.name} answered with a malformed result")
        return ToolOutput(bound(text, limit), ok=ok)

    def _failed(self, tool: McpTool, reason: str) -> ToolOutput:
        self._turn_off(tool.connection, reason)
        return ToolOutput(f"{reason}; the MCP server {tool.connection.server.name!r} is off for "
                          "the rest of this session: do not call its tools again", ok=False)

    def _turn_off(self, connection: Connection, reason: str) -> None:
        """Stop a server that failed, with its one warning line (once)."""
        with self._lock:
            if connection.off is not None:
                return
            connection.off = reason
        self.warn(f"evoagent: MCP server {connection.server.name!r} is off for this session: "
                  f"{reason}")
        if self._loop is not None:
            connection.stop(self._loop)

    # building

    def _transport(self, server: ServerDef) -> tuple[Callable[[], Any], StderrTail | None]:
        """A factory of the SDK transport for `server` (entered on the loop), and its stderr."""
        if server.url is not None:
            headers = server.header_values(self.environ, self.warn)

            def http() -> Any:
                from mcp.client.streamable_http import (
                    create_mcp_http_client,
                    streamable_http_client,
                )

                return streamable_http_client(
                    server.url, http_client=create_mcp_http_client(headers=headers or None))

            return http, None
        named, literal = server.environment(self.environ, self.warn)
        argv, env = sandboxed_command(self._runner_for(server), [server.command or "", *server.args],
                                      self.workspace, named, literal)
        stderr = StderrTail()

        def stdio() -> Any:
            from mcp import StdioServerParameters, stdio_client

            params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
            return stdio_client(params, errlog=stderr.file)

        return stdio, stderr

    def _runner_for(self, server: ServerDef) -> Any:
        """The run's runner, or a copy of it that keeps the network (a server granted it)
        and shows the person's own server files (`person_paths`)."""
        runner = self.runner
        if not isinstance(runner, BwrapRunner):
            return runner
        config = runner.config
        if server.name in self.network and not config.allow_network:
            config = replace(config, allow_network=True)
        shown = person_paths(server)
        if shown:
            config = replace(config, ro_binds=(*config.ro_binds, *((p, p) for p in shown)))
        return runner if config is runner.config else BwrapRunner(config, runner.bwrap)

    def _wrap(self, connection: Connection, specs: list[dict[str, Any]]) -> dict[str, Tool]:
        """The server's tools as `McpTool`s; the ones no model API would take are left out,
        counted in one warning line, and the ones the genome disabled silently."""
        tools: dict[str, Tool] = {}
        dropped = 0
        for spec in specs[:MAX_TOOLS]:
            if not _usable(connection.server.name, spec):
                dropped += 1
                continue
            tool = McpTool(self, connection, spec)
            if self.uses is None or self.uses(tool.name):
                tools[tool.name] = tool
        dropped += max(0, len(specs) - MAX_TOOLS)
        if dropped:
            self.warn(f"evoagent: MCP server {connection.server.name!r}: {dropped} of its "
                      f"{len(specs)} tools left out (bad name or schema, or past {MAX_TOOLS})")
        return tools


def person_paths(server: ServerDef) -> list[Path]:
    """The files and directories a person's stdio server names by absolute path (its
    command, its arguments) that the sandbox would hide (their home, /tmp): shown to it
    read-only, since the person chose that code. A repository's server gets none."""
    if server.origin != PERSON or server.command is None:
        return []
    hidden = [h.resolve() for h in (*home_dirs(), Path("/tmp"), Path("/var/tmp"))]
    shown = []
    for arg in (server.command, *server.args):
        path = Path(arg)
        if not path.is_absolute() or not path.exists():
            continue
        # The path as named, inside a hidden root, and holding none: a whole home (or /tmp,
        # or a directory with a home in it) is never shown.
        named = Path(os.path.normpath(path))
        if any(h.is_relative_to(named) for h in hidden):
            continue
        if any(named.is_relative_to(h) for h in hidden):
            shown.append(path)
    return list(dict.fromkeys(shown))


def _usable(server: str, spec: dict[str, Any]) -> bool:
    name, schema = spec.get("name"), spec.get("inputSchema")
    if not isinstance(name, str) or not TOOL_NAME.fullmatch(f"{server}__{name}"):
        return False
    if not isinstance(schema, dict) or schema.get("type") != "object":
        return False
    return len(json.dumps(schema, ensure_ascii=False)) <= SCHEMA_CHARS


def _is_tool_error(exc: BaseException) -> bool:
    """An MCP error answer to the call (unknown tool, bad arguments): the server works."""
    from mcp import MCPError
    from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

    return isinstance(exc, MCPError) and exc.code not in (CONNECTION_CLOSED, REQUEST_TIMEOUT)


def open_mcp(servers: McpServers, runner: Any, workspace: Path,
             warn: Callable[[str], None] = warn_once, policy: Policy | None = None,
             tool_settings: ToolSettings | None = None, **timeouts: float) -> McpClients:
    """Start the run's servers (see `McpClients`); the caller closes it. The genome decides
    which may start (`policy.mcp_servers`, `tool_settings.mcp_disabled`), their network
    (`policy.mcp_network`) and which tools are offered; a server it keeps off costs one line
    saying why, and so does each repository server waiting for the person's approval."""
    start: list[ServerDef] = []
    listed = [(s, False) for s in servers.start] + [(s, True) for s in servers.unapproved]
    for server, waiting in listed:
        if policy is not None and not policy.allows_mcp_server(server.name):
            warn(f"evoagent: MCP server {server.name!r} is not started: the agent's policy "
                 "(policy.toml mcp_servers) does not allow it")
        elif tool_settings is not None and not tool_settings.uses_mcp(server.name):
            warn(f"evoagent: MCP server {server.name!r} is not started: the agent disables it "
                 "(agent.toml [tools] mcp_disabled)")
        elif waiting:
            warn(waiting_line(server))
        else:
            start.append(server)
    network = [s.name for s in start if policy is not None and policy.mcp_server_network(s.name)]
    return McpClients(start, runner, workspace, warn, network=network,
                      uses=tool_settings.uses_mcp if tool_settings is not None else None,
                      **timeouts).start()
