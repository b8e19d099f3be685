"""MCP servers as tools: start the servers of one run, list their tools, offer each to the
model as `server__tool`, call it with a timeout.

The MCP SDK is async and the agent loop is not: one `McpClients` per run owns one event
loop on its own daemon thread; every server's connection is one task on it, which enters
the SDK's context managers (`stdio_client`, `ClientSession`) and stays inside them until the
run closes, and each tool call is a coroutine handed to that loop, waited for with a timeout.

A stdio server runs in the sandbox, whoever defined it: its command line is the run's own
bubblewrap command line (same binds, scrubbed environment, network only when the policy
allows it, the unprivileged user), built by `sandboxed_command` without running it, since
the SDK spawns the process itself and keeps its pipes. Without bubblewrap no stdio server
starts. An HTTP server (the person's config only) is reached from this process.

What a server says is untrusted like sandbox output: tool names that an API would refuse,
oversized schemas and descriptions are dropped or cut, results become bounded text, and only
the person's own servers may skip the approval by declaring a tool read-only. A server that
fails to start, hangs (listing or a call past its timeout) or answers malformed costs one
warning line and its tools, never the session.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evoagent.sandbox.bwrap import GRANTER, BwrapRunner, call_settings, ro_bind_plan
from evoagent.sandbox.run_as import sandbox_user, still_root, usable_setpriv

from .config import warn_once
from .mcp_config import PERSON, McpServers, ServerDef
from .terminal_text import one_line, terminal_safe
from .tools.base import JSON_TYPES, Tool, ToolContext, ToolOutput, bound, declined

log = logging.getLogger(__name__)

START_TIMEOUT = 30.0
"""Seconds a server has to start, answer `initialize` and list its tools."""
CALL_TIMEOUT = 120.0
"""Seconds one tool call may take (the run tool's cap applies too)."""
CLOSE_TIMEOUT = 10.0
"""Seconds closing waits for the servers (the SDK gives each a few to exit, then kills)."""
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What model APIs accept as a function name; `server__tool` must fit."""
MAX_TOOLS = 128
"""Tools taken from one server at most (more would crowd the model's context)."""
MAX_PAGES = 20
DESCRIPTION_CHARS = 2_000
SCHEMA_CHARS = 16_000
STDERR_TAIL = 4_096


class ServerOff(Exception):
    """A server can no longer be used; the message is one line saying why."""


# -- the sandboxed command line ------------------------------------------------------------


def sandboxed_command(runner: Any, command: Sequence[str], cwd: Path,
                      named: Mapping[str, str] = {},  # noqa: B006 (read only)
                      literal: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that run `command` under the run's bubblewrap sandbox, for a
    caller that starts the process itself. `literal` variables pass the sandbox's secret
    filter like any command's; `named` ones (the person's config named them) are added as
    they are. Mirrors `BwrapRunner.run` up to the spawn: the ACL grant and the switch to the
    unprivileged user, the address-space limit (through prlimit), no wall-time limit (the
    server lives as long as the run)."""
    if not isinstance(runner, BwrapRunner):
        raise ServerOff("servers run only in the bubblewrap sandbox, which is not available here")
    env, limits = call_settings(runner.config, None, dict(literal or {}))
    env.update(named)
    inner = list(command)
    prlimit = shutil.which("prlimit")
    if prlimit and limits.memory_bytes is not None:
        inner = [prlimit, f"--as={limits.memory_bytes}", "--core=0", "--", *inner]
    for note in ro_bind_plan(runner.config.ro_binds)[1]:
        log.warning("sandbox: %s", note.strip("[]"))
    user, setpriv = _drop_to(runner)
    return runner.argv(inner, Path(cwd), (), user, setpriv or "setpriv"), env


def _drop_to(runner: BwrapRunner) -> tuple[Any, str | None]:
    """The user the server runs as and setpriv's path, the writable directories granted to
    that user first: what `BwrapRunner._drop_to` does for a command (see sandbox/README.md)."""
    from evoagent.sandbox.acl import AclUnsupported

    user = sandbox_user(runner.config.run_as)
    setpriv = usable_setpriv(str(runner.bwrap), user) if user is not None else None
    if user is None or setpriv is None:
        return None, None
    skip = [Path(os.path.abspath(dest)) for _, dest in runner.config.ro_binds]
    for root in (*runner.config.writable, *(source for source, _ in runner.config.views)):
        if Path(root).is_dir():
            try:
                GRANTER.grant(Path(root), user.uid, skip)
            except AclUnsupported as exc:
                still_root(f"{root} cannot hold POSIX ACLs ({exc.strerror})")
                return None, None
    return user, setpriv


class StderrTail:
    """A server's stderr: read on a thread, only the last few KB kept (for the warning line
    of a server that fails), so a chatty server neither blocks nor fills a disk or a screen."""

    def __init__(self, keep: int = STDERR_TAIL):
        read_fd, write_fd = os.pipe()
        self.file = os.fdopen(write_fd, "w")
        self.keep = keep
        self.data = b""
        self._thread = threading.Thread(target=self._drain, args=(read_fd,), daemon=True)
        self._thread.start()

    def _drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 14):
                self.data = (self.data + chunk)[-self.keep:]

    def last_line(self) -> str:
        lines = [line for line in self.data.decode("utf-8", "replace").splitlines() if line.strip()]
        return one_line(lines[-1], 200) if lines else ""

    def close(self) -> None:
        self.file.close()
        self._thread.join(1.0)


# -- one server's connection ---------------------------------------------------------------


class _Connection:
    """One server: a task on the run's loop that holds the SDK session open until `stop`."""

    def __init__(self, server: ServerDef, open_transport: Callable[[], Any],
                 stderr: StderrTail | None):
        self.server = server
        self.open_transport = open_transport
        self.stderr = stderr
        self.listed: concurrent.futures.Future[list[dict[str, Any]]] = concurrent.futures.Future()
        self.off: str | None = None
        """Why the server is off (None: usable); set with its one warning line."""
        self.ended: str | None = None
        """Why the session ended by itself after the tools were listed (the server exited)."""
        self._session: Any = None
        self._scope: Any = None
        self._stopping = False
        self.task: concurrent.futures.Future[None] | None = None

    async def serve(self) -> None:
        import anyio
        from mcp import ClientSession
        from mcp.types import Implementation

        with anyio.CancelScope() as scope:
            self._scope = scope
            if self._stopping:
                scope.cancel()
            try:
                async with contextlib.AsyncExitStack() as stack:
                    read, write = await stack.enter_async_context(self.open_transport())
                    session = await stack.enter_async_context(ClientSession(
                        read, write, client_info=Implementation(name="evoagent", version="1")))
                    await session.initialize()
                    tools = await _list_tools(session)
                    self._session = session
                    self.listed.set_result(tools)
                    await anyio.sleep_forever()
            except Exception as exc:  # whatever the server did, it costs this server only
                reason = _reason(exc)
                if not self.listed.done():
                    self.listed.set_exception(ServerOff(self._with_stderr(reason)))
                else:
                    self.ended = self._with_stderr(reason)
        if not self.listed.done():
            self.listed.set_exception(ServerOff("stopped before it listed its tools"))

    async def call(self, name: str, arguments: dict[str, Any], timeout: float) -> dict[str, Any]:
        import anyio

        with anyio.fail_after(timeout):
            result = await self._session.call_tool(name, arguments)
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)

    def stop(self, loop: Any) -> None:
        """Leave the session (the SDK closes stdin, then kills the server's process group)."""
        self._stopping = True
        if self._scope is not None:
            loop.call_soon_threadsafe(self._scope.cancel)

    def _with_stderr(self, reason: str) -> str:
        said = self.stderr.last_line() if self.stderr else ""
        return f"{reason}; its last words: {said}" if said else reason


async def _list_tools(session: Any) -> list[dict[str, Any]]:
    """Every tool the server lists (following its pages), as plain JSON dicts."""
    from mcp.types import PaginatedRequestParams

    tools: list[dict[str, Any]] = []
    cursor = None
    for _ in range(MAX_PAGES):
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools += [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in page.tools]
        cursor = page.next_cursor
        if not cursor or len(tools) >= MAX_TOOLS:
            break
    return tools


def _reason(exc: BaseException) -> str:
    """One line for what went wrong (the innermost of anyio's exception groups). The text
    may come from the server, so it is made terminal-safe and bounded."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, TimeoutError):
        return "timed out"
    if type(exc).__name__ == "ValidationError":  # pydantic: the server's answer did not parse
        return "it answered with a malformed message"
    if type(exc).__name__ == "MCPError":  # the protocol's own error: its message says it
        return one_line(str(exc), 200).lower() or "an MCP error"
    text = one_line(str(exc), 200)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the tools the model sees --------------------------------------------------------------


class McpTool(Tool):
    """One MCP tool, offered to the model as `server__tool` with the server's own schema."""

    def __init__(self, clients: McpClients, connection: _Connection, spec: dict[str, Any]):
        self.clients = clients
        self.connection = connection
        self.remote = spec["name"]
        self.name = f"{connection.server.name}__{self.remote}"  # type: ignore[misc]
        description = terminal_safe(str(spec.get("description") or "")).strip()
        self.description = bound(  # type: ignore[misc]
            f"[MCP server {connection.server.name}] {description}".strip(), DESCRIPTION_CHARS)
        self.input_schema = spec["inputSchema"]
        self.parameters = checkable(self.input_schema)  # type: ignore[misc]
        hint = (spec.get("annotations") or {}).get("readOnlyHint") is True
        # A hint is the server's word: only the person's own servers are taken at it.
        self.read_only = hint and connection.server.origin == PERSON

    def schema(self) -> dict[str, Any]:
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.input_schema}}

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        if not self.read_only and ctx.approve is not None and not ctx.approve(
            "command", f"mcp {self.name} {json.dumps(args, ensure_ascii=False)}"
        ):
            return declined("command")
        timeout = min(self.clients.call_timeout, ctx.command_timeout)
        return self.clients.call(self, args, timeout, ctx.output_limit)


def checkable(schema: Any) -> dict[str, Any]:
    """The part of a server's JSON schema `tools.base.check_args` understands (types it
    knows, enum, properties, required, items, additionalProperties: false); the server
    checks the rest itself. The root is always an object."""
    out = _checkable(schema)
    out["type"] = "object"
    return out


def _checkable(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    out: dict[str, Any] = {}
    kind = schema.get("type")
    if isinstance(kind, str) and kind in JSON_TYPES:
        out["type"] = kind
    if isinstance(schema.get("enum"), list):
        out["enum"] = schema["enum"]
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {str(k): _checkable(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("required"), list):
        out["required"] = [r for r in schema["required"] if isinstance(r, str)]
    if schema.get("additionalProperties") is False:
        out["additionalProperties"] = False
    if isinstance(schema.get("items"), dict):
        out["items"] = _checkable(schema["items"])
    return out


def result_text(result: dict[str, Any]) -> tuple[str, bool]:
    """(text, ok) of a tools/call result: text blocks as they are, other content named."""
    parts: list[str] = []
    for block in result.get("content") or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} ({block.get('mimeType', '?')}), not shown]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.get('uri', '?')}]")
        elif kind == "resource":
            resource = block.get("resource") or {}
            text = resource.get("text")
            parts.append(str(text) if isinstance(text, str)
                         else f"[resource {resource.get('uri', '?')}, binary, not shown]")
        else:
            parts.append(f"[{kind or 'unknown'} content, not shown]")
    if not parts and result.get("structuredContent") is not None:
        parts.append(json.dumps(result["structuredContent"], ensure_ascii=False, indent=1))
    return "\n".join(parts) or "(no output)", not result.get("isError", False)


# -- the run's servers ---------------------------------------------------------------------


class McpClients:
    """The MCP servers of one run: started by `start`, offered by `tools`, ended by `close`.

    `runner` is the run's own (its config decides the binds and the network) and `workspace`
    the servers' working directory. `warn` gets one line per server that fails; the lines are
    also kept in `warnings`."""

    def __init__(self, servers: McpServers | Sequence[ServerDef], runner: Any, workspace: Path,
                 warn: Callable[[str], None] = warn_once, start_timeout: float = START_TIMEOUT,
                 call_timeout: float = CALL_TIMEOUT, environ: Mapping[str, str] | None = None):
        self.servers = list(servers.start if isinstance(servers, McpServers) else servers)
        self.runner = runner
        self.workspace = Path(workspace)
        self.start_timeout = start_timeout
        self.call_timeout = call_timeout
        self.environ = environ
        self.warnings: list[str] = []
        self._warn = warn
        self._connections: list[_Connection] = []
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
            connection = _Connection(server, transport, stderr)
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
            return self._failed(tool, f"{tool.name}: {_reason(exc)}")
        try:
            text, ok = result_text(result)
        except (AttributeError, TypeError, ValueError):
            return self._failed(tool, f"{tool.name} answered with a malformed result")
        return ToolOutput(bound(text, limit), ok=ok)

    def _failed(self, tool: McpTool, reason: str) -> ToolOutput:
        self._turn_off(tool.connection, reason)
        return ToolOutput(f"{reason}; the MCP server {tool.connection.server.name!r} is off for "
                          "the rest of this session: do not call its tools again", ok=False)

    def _turn_off(self, connection: _Connection, reason: str) -> None:
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
        argv, env = sandboxed_command(self.runner, [server.command or "", *server.args],
                                      self.workspace, named, literal)
        stderr = StderrTail()

        def stdio() -> Any:
            from mcp import StdioServerParameters, stdio_client

            params = StdioServerParameters(command=argv[0], args=argv[1:], env=env)
            return stdio_client(params, errlog=stderr.file)

        return stdio, stderr

    def _wrap(self, connection: _Connection, specs: list[dict[str, Any]]) -> dict[str, Tool]:
        """The server's tools as `McpTool`s; the ones no model API would take are left out,
        counted in one warning line."""
        tools: dict[str, Tool] = {}
        dropped = 0
        for spec in specs[:MAX_TOOLS]:
            if not _usable(connection.server.name, spec):
                dropped += 1
                continue
            tool = McpTool(self, connection, spec)
            tools[tool.name] = tool
        dropped += max(0, len(specs) - MAX_TOOLS)
        if dropped:
            self.warn(f"evoagent: MCP server {connection.server.name!r}: {dropped} of its "
                      f"{len(specs)} tools left out (bad name or schema, or past {MAX_TOOLS})")
        return tools


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
             warn: Callable[[str], None] = warn_once, **timeouts: float) -> McpClients:
    """Start the run's servers (see `McpClients`); the caller closes it."""
    return McpClients(servers, runner, workspace, warn, **timeouts).start()
