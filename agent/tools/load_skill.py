"""load_skill: the full text of one of the genome's skills (procedures)."""

from __future__ import annotations

from typing import Any

from .base import Tool, ToolContext, ToolOutput


class LoadSkillTool(Tool):
    name = "load_skill"
    description = "Load a skill (a short written procedure) by name from the skills index."
    parameters = {
        "type": "object",
        "properties": {"name": {"type": "string", "description": "Skill name from the index."}},
        "required": ["name"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        skill = ctx.skills.get(args["name"])
        if skill is None:
            known = ", ".join(sorted(ctx.skills)) or "none"
            return ToolOutput(f"unknown skill {args['name']!r} (available: {known})", ok=False)
        return ToolOutput(skill.text)
