"""edit: search/replace blocks, all applied or none."""

from __future__ import annotations

from typing import Any

from evoagent.agent.edits import Edit, apply_edits

from .base import Tool, ToolContext, ToolOutput


class EditTool(Tool):
    name = "edit"
    description = (
        "Change files with search/replace blocks. `search` must quote the current lines exactly "
        "(enough of them to be unique); `replace` is what they become. An empty `search` on a "
        "path that does not exist creates the file. All blocks apply or none do; a failing "
        "block reports the closest lines it found."
    )
    parameters = {
        "type": "object",
        "properties": {
            "edits": {
                "type": "array",
                "description": "Blocks applied in order.",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string", "description": "File relative to the root."},
                        "search": {"type": "string", "description": "Exact current text."},
                        "replace": {"type": "string", "description": "Replacement text."},
                    },
                    "required": ["path", "search", "replace"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["edits"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        edits = [Edit(e["path"], e["search"], e["replace"]) for e in args["edits"]]
        if not edits:
            return ToolOutput("edit: no blocks given", ok=False)
        if ctx.writable is not None:
            refused = sorted({e.path for e in edits if not ctx.writable(e.path)})
            if refused:
                return ToolOutput(
                    f"No edits were applied: policy does not allow writing {', '.join(refused)}",
                    ok=False,
                )
        result = apply_edits(ctx.workspace, edits)
        data = {"diffs": result.diffs, "created": result.created} if result.ok else None
        return ToolOutput(result.message(), ok=result.ok, data=data)
