"""repo_map: a ranked outline of the code (definitions), optionally focused."""

from __future__ import annotations

from typing import Any

from .base import Tool, ToolContext, ToolOutput, unavailable


class RepoMapTool(Tool):
    name = "repo_map"
    description = (
        "Show an outline of the repository's most important files and definitions, ranked "
        "by how the code references them; `focus` biases it toward given paths or names."
    )
    parameters = {
        "type": "object",
        "properties": {
            "budget": {"type": "integer", "description": "Approximate tokens (default 2000)."},
            "focus": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Paths or identifiers to centre the map on.",
            },
        },
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        if ctx.repo_map is None:
            return unavailable("repo_map (code index)", "use read on directories and search")
        text = ctx.repo_map(args.get("budget") or 2000, list(args.get("focus") or []))
        return ToolOutput(text or "the code index is empty")
