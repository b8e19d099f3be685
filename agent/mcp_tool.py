"""One MCP server's tool as the model sees it: `server__tool`, the server's own schema, and
a bounded text result (agent/mcp_tools.py starts the servers and makes the calls).

What a server says is untrusted like sandbox output: its description is made terminal-safe
and cut, its schema is checked only as far as `tools.base.check_args` understands it, and
its declaration that a tool is read-only is believed only of the person's own servers.
A read-only tool is asked no approval and is offered in read-only turns (/ask).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .mcp_config import PERSON
from .terminal_text import terminal_safe
from .tools.base import JSON_TYPES, Tool, ToolContext, ToolOutput, bound, declined

if TYPE_CHECKING:
    from .mcp_connection import Connection
    from .mcp_tools import McpClients

DESCRIPTION_CHARS = 2_000


class McpTool(Tool):
    """One MCP tool, offered to the model as `server__tool` with the server's own schema."""

    def __init__(self, clients: McpClients, connection: Connection, spec: dict[str, Any]):
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
