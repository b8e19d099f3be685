"""locate: rank files and symbols for a problem description (code index + history)."""

from __future__ import annotations

from typing import Any

from .base import Tool, ToolContext, ToolOutput, unavailable


class LocateTool(Tool):
    name = "locate"
    description = (
        "Rank the files and symbols most likely involved in a problem, from the code index "
        "and the repository's history. Give it the issue text or an error message."
    )
    parameters = {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "Issue text, error message or keywords."},
            "k": {"type": "integer", "description": "How many files (default 10)."},
        },
        "required": ["query"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        if ctx.locate is None:
            return unavailable("locate", "use search to find the code instead")
        result = ctx.locate(args["query"], args.get("k") or 10)
        files, symbols = result.get("files", []), result.get("symbols", [])
        if not files and not symbols:
            return ToolOutput("no likely locations found; try search", data=result)
        lines = ["Files:"]
        for hit in files:
            why = f"  ({'; '.join(hit.get('why', []))})" if hit.get("why") else ""
            lines.append(f"- {hit['path']}{why}")
        if symbols:
            lines.append("Symbols:")
            lines += [f"- {s['path']}:{s['line']} {s['name']}" for s in symbols]
        return ToolOutput("\n".join(lines), data=result)
