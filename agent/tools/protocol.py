"""Tool calls as text, for models without native tool calling.

A call is a fenced block whose info string is `tool NAME` and whose body is one JSON object:

    ```tool read
    {"path": "src/app.py", "start_line": 1, "end_line": 40}
    ```
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from evoagent.agent.errors import EvoError

if TYPE_CHECKING:
    from .base import Tool

_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*tool[ \t]+(?P<name>[\w.-]+)[ \t]*$")


class ToolFormatError(EvoError):
    """A malformed tool block; the message is written for the model to correct itself."""


def text_protocol_help(names: list[str], extra: Mapping[str, Tool] | None = None) -> str:
    """How to call tools as text, and each tool's arguments (`extra`: the genome's tools)."""
    from . import resolve_tool

    lines = [
        "To call a tool, write a fenced block whose info string is `tool` and the tool name, "
        "with one JSON object of arguments as its body:",
        "",
        format_text_tool_call("read", {"path": "src/app.py", "start_line": 1, "end_line": 40}),
        "",
        "You may write several blocks in one reply; they run in order and their results "
        "come back in the next message. Available tools:",
    ]
    for name in names:
        tool = resolve_tool(name, extra)
        lines.append(f"\n### {name}\n{tool.description}\nArguments:")
        props = tool.parameters.get("properties", {})
        required = set(tool.parameters.get("required", []))
        for arg, spec in props.items():
            flag = "required" if arg in required else "optional"
            lines.append(f"- {arg} ({spec.get('type', 'any')}, {flag}): {spec.get('description', '')}")
        if not props:
            lines.append("- none")
    return "\n".join(lines)


def format_text_tool_call(name: str, args: dict[str, Any]) -> str:
    return f"```tool {name}\n{json.dumps(args, ensure_ascii=False)}\n```"


def parse_text_tool_calls(text: str) -> list[tuple[str, dict[str, Any]]]:
    """Every tool block in `text`, in order. Raises ToolFormatError on a malformed block."""
    calls: list[tuple[str, dict[str, Any]]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opened = _OPEN.match(lines[index])
        index += 1
        if not opened:
            continue
        fence, name = opened["fence"], opened["name"]
        body: list[str] = []
        while index < len(lines) and not _closes(lines[index], fence):
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise ToolFormatError(f"tool block {len(calls) + 1} ({name}) is not closed with {fence}")
        index += 1
        raw = "\n".join(body).strip()
        try:
            args = json.loads(raw) if raw else {}
        except json.JSONDecodeError as exc:
            raise ToolFormatError(
                f"tool block {len(calls) + 1} ({name}): arguments are not valid JSON: {exc}"
            ) from exc
        if not isinstance(args, dict):
            raise ToolFormatError(f"tool block {len(calls) + 1} ({name}): arguments must be a JSON object")
        calls.append((name, args))
    return calls


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= len(fence) and set(stripped) == {fence[0]}
