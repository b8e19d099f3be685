"""write: create a file with the given content (refuses to overwrite unless asked)."""

from __future__ import annotations

from typing import Any

from evoagent.agent.edits import PathError, resolve_inside, unified_diff

from .base import Tool, ToolContext, ToolOutput, declined


class WriteTool(Tool):
    name = "write"
    description = (
        "Create a new file with the given content. Refuses to replace an existing file unless "
        "overwrite is true; prefer edit for changing existing files."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "File relative to the repository root."},
            "content": {"type": "string", "description": "The whole file content."},
            "overwrite": {"type": "boolean", "description": "Replace an existing file."},
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        rel, content = args["path"], args["content"]
        try:
            target = resolve_inside(ctx.workspace, rel)
        except PathError as exc:
            return ToolOutput(str(exc), ok=False)
        if ctx.writable is not None and not ctx.writable(rel):
            return ToolOutput(f"{rel}: policy does not allow writing this path", ok=False)
        if target.is_dir():
            return ToolOutput(f"{rel}: is a directory", ok=False)
        old = None
        if target.exists():
            if not args.get("overwrite"):
                return ToolOutput(
                    f"{rel} already exists; use edit to change it, or write with "
                    "overwrite=true to replace it entirely",
                    ok=False,
                )
            old = target.read_text(encoding="utf-8", errors="replace")
        diff = unified_diff(rel, old, content)
        if ctx.approve is not None and not ctx.approve("write", diff):
            return declined("write")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8", newline="")
        verb = "created" if old is None else "overwrote"
        lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
        return ToolOutput(f"{verb} {rel} ({lines} lines)", data={"diffs": {rel: diff}})
