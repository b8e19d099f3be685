"""finish: the agent's stop signal."""

from __future__ import annotations

from typing import Any

from .base import Tool, ToolContext, ToolOutput


class FinishTool(Tool):
    name = "finish"
    description = (
        "Stop and hand over: call it once the change is made and the tests pass (or when you "
        "cannot make progress), with a short summary of what changed and why."
    )
    parameters = {
        "type": "object",
        "properties": {
            "summary": {"type": "string", "description": "What you changed and how you verified it."},
        },
        "required": ["summary"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        return ToolOutput("finished", data={"finish": True, "summary": args["summary"]})
