"""read: a file's lines, numbered, or a directory's entries."""

from __future__ import annotations

from typing import Any

from evoagent.agent.edits import PathError, resolve_inside

from .base import Tool, ToolContext, ToolOutput

MAX_LINE_CHARS = 500
"""Longer lines (minified code, data) are cut so one line cannot eat the budget."""


class ReadTool(Tool):
    name = "read"
    description = (
        "Read a text file with numbered lines (or list a directory). Give start_line/end_line "
        "(1-based, inclusive) to read part of a large file; long output is truncated with a note "
        "saying where to continue."
    )
    parameters = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Path relative to the repository root."},
            "start_line": {"type": "integer", "description": "First line to show (default 1)."},
            "end_line": {"type": "integer", "description": "Last line to show (default: end)."},
        },
        "required": ["path"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        rel = args["path"] or "."
        try:
            target = resolve_inside(ctx.workspace, rel) if rel not in (".", "./") else ctx.workspace
        except PathError as exc:
            return ToolOutput(str(exc), ok=False)
        if target.is_dir():
            return _listing(rel, target)
        if not target.exists():
            return ToolOutput(f"{rel}: no such file", ok=False)
        raw = target.read_bytes()
        if b"\0" in raw[:8192]:
            return ToolOutput(f"{rel}: binary file ({len(raw)} bytes), not shown", ok=False)
        lines = raw.decode("utf-8", "replace").splitlines()
        total = len(lines)
        start = max(1, args.get("start_line") or 1)
        end = min(total, args.get("end_line") or total)
        if total == 0:
            return ToolOutput(f"{rel}: empty file")
        if start > total:
            return ToolOutput(f"{rel}: start_line {start} is past the end ({total} lines)", ok=False)
        if end < start:
            return ToolOutput(f"{rel}: end_line {end} is before start_line {start}", ok=False)
        budget = ctx.output_limit - 200  # room for the header and the truncation note
        shown: list[str] = []
        used = 0
        last = start - 1
        for number in range(start, end + 1):
            line = lines[number - 1]
            if len(line) > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + f" [... {len(line) - MAX_LINE_CHARS} chars cut]"
            row = f"{number:>6}\t{line}"
            if shown and used + len(row) + 1 > budget:
                break
            shown.append(row)
            used += len(row) + 1
            last = number
        header = f"{rel} (lines {start}-{last} of {total})"
        note = ""
        if last < end:
            note = (
                f"\n[truncated at line {last} to fit the output limit; "
                f"read again with start_line={last + 1} to continue]"
            )
        return ToolOutput(f"{header}\n" + "\n".join(shown) + note)


def _listing(rel: str, target) -> ToolOutput:
    entries = sorted(
        (p.name + ("/" if p.is_dir() else "") for p in target.iterdir() if p.name != ".git"),
        key=str.lower,
    )
    body = "\n".join(entries) if entries else "(empty)"
    return ToolOutput(f"{rel} is a directory with {len(entries)} entries:\n{body}")
