"""edit: search/replace blocks, all applied or none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evoagent.agent.edits import Edit, PathError, apply_edits, resolve_inside

from .base import Tool, ToolContext, ToolOutput, declined


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
        before = _snapshot(ctx.workspace, edits) if ctx.approve is not None else {}
        result = apply_edits(ctx.workspace, edits)
        # apply_edits is the only matcher, so the preview is its real result, taken back
        # exactly when the user refuses it.
        preview = "".join(result.diffs.values())
        if result.ok and preview and ctx.approve is not None and not ctx.approve("edit", preview):
            _restore(before)
            return declined("edit")
        data = {"diffs": result.diffs, "created": result.created} if result.ok else None
        return ToolOutput(result.message(), ok=result.ok, data=data)


def _snapshot(root: Path, edits: list[Edit]) -> dict[Path, bytes | None]:
    """Bytes of every file the edits may touch (None: absent), and the first missing parent
    directory of each absent one (so a refused creation leaves no empty folder)."""
    saved: dict[Path, bytes | None] = {}
    for edit in edits:
        try:
            target = resolve_inside(root, edit.path)
        except PathError:
            continue  # apply_edits refuses it too
        if target.is_file():
            saved[target] = target.read_bytes()
            continue
        saved[target] = None
        missing = target.parent
        while not missing.parent.exists():
            missing = missing.parent
        if not missing.exists():
            saved[missing] = None
    return saved


def _restore(saved: dict[Path, bytes | None]) -> None:
    for path, content in sorted(saved.items(), key=lambda item: -len(item[0].parts)):
        if content is not None:
            path.write_bytes(content)
        elif path.is_dir():
            for child in sorted(path.rglob("*"), key=lambda p: -len(p.parts)):
                child.rmdir() if child.is_dir() else child.unlink()
            path.rmdir()
        elif path.exists():
            path.unlink()
