"""Tool registry: short names map to dotted paths, imported on first use.

`call_tool` is what the loop uses: it resolves the name, checks the arguments against the
tool's schema and bounds the output to `ctx.output_limit` characters.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cache
from typing import Any

from evoagent.agent.errors import EvoError

from .base import Tool, ToolContext, ToolOutput, bound, check_args
from .protocol import (
    ToolFormatError,
    format_text_tool_call,
    parse_text_tool_calls,
    text_protocol_help,
)

__all__ = [
    "TOOLS", "Tool", "ToolContext", "ToolFormatError", "ToolOutput", "UnknownToolError",
    "call_tool", "format_text_tool_call", "get_tool", "parse_text_tool_calls", "resolve_tool",
    "text_protocol_help", "tool_schemas",
]

TOOLS: dict[str, str] = {
    "read": "evoagent.agent.tools.read.ReadTool",
    "search": "evoagent.agent.tools.search.SearchTool",
    "locate": "evoagent.agent.tools.locate.LocateTool",
    "recall": "evoagent.agent.tools.recall.RecallTool",
    "repo_map": "evoagent.agent.tools.repo_map.RepoMapTool",
    "edit": "evoagent.agent.tools.edit.EditTool",
    "write": "evoagent.agent.tools.write.WriteTool",
    "run": "evoagent.agent.tools.run.RunTool",
    "run_tests": "evoagent.agent.tools.run_tests.RunTestsTool",
    "finish": "evoagent.agent.tools.finish.FinishTool",
    "load_skill": "evoagent.agent.tools.load_skill.LoadSkillTool",
}


class UnknownToolError(EvoError):
    def __init__(self, name: str):
        super().__init__(f"unknown tool {name!r} (known: {', '.join(sorted(TOOLS))})")
        self.name = name


@cache
def get_tool(name: str) -> Tool:
    """The tool registered as `name` (or at the dotted path `name`)."""
    dotted = TOOLS.get(name, name if "." in name else None)
    if dotted is None:
        raise UnknownToolError(name)
    module_name, _, attr = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownToolError(name) from exc
    return cls()


def resolve_tool(name: str, extra: Mapping[str, Tool] | None = None) -> Tool:
    """`extra[name]` (a genome's own tool) when there is one, else the registry's tool."""
    if extra and name in extra:
        return extra[name]
    return get_tool(name)


def tool_schemas(names: list[str], extra: Mapping[str, Tool] | None = None) -> list[dict[str, Any]]:
    """OpenAI-format tool definitions for native tool calling."""
    return [resolve_tool(name, extra).schema() for name in names]


def call_tool(name: str, args: Any, ctx: ToolContext) -> ToolOutput:
    """Run one tool call for the model; bad names and arguments come back as failed outputs."""
    try:
        tool = resolve_tool(name, ctx.extra_tools)
    except UnknownToolError as exc:
        return ToolOutput(exc.message, ok=False)
    problem = check_args(tool.parameters, args)
    if problem:
        return ToolOutput(f"{name}: bad arguments: {problem}", ok=False)
    try:
        out = tool.run(args, ctx)
    except OSError as exc:
        # The workspace, not the tool, failed (permissions, disk, a vanished file): the
        # model can often route around it, so it reads the error instead of the loop dying.
        out = ToolOutput(f"{name}: {exc.strerror or exc}", ok=False)
    out.text = bound(out.text, ctx.output_limit)
    return out
