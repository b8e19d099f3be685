"""search: `git grep` over the workspace, tracked and untracked (not ignored) files.

git runs on the host, so it goes through `hostgit`: the workspace's own git directory (never
one the sandbox could write), no nested repositories; without one, `--no-index` and no
repository at all.
"""

from __future__ import annotations

import subprocess
from typing import Any

from evoagent.sandbox import hostgit

from .base import Tool, ToolContext, ToolOutput

MAX_MATCHES = 200
MAX_LINE_CHARS = 300


class SearchTool(Tool):
    name = "search"
    description = (
        "Search file contents with git grep (extended regular expressions). Returns "
        "path:line:text for each match. Narrow with `path`, a glob such as 'src/**/*.py'."
    )
    parameters = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "description": "Extended regular expression."},
            "path": {"type": "string", "description": "Optional pathspec glob to search in."},
            "fixed_strings": {
                "type": "boolean",
                "description": "Treat pattern as a literal string (default false).",
            },
            "ignore_case": {"type": "boolean", "description": "Case-insensitive (default false)."},
        },
        "required": ["pattern"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        pattern = args["pattern"]
        if not pattern:
            return ToolOutput("search: pattern is empty", ok=False)
        grep = ["-c", "core.quotePath=false", "grep", "-n", "-I", "--no-color"]
        query = ["-F"] if args.get("fixed_strings") else ["-E"]
        if args.get("ignore_case"):
            query.append("-i")
        query += ["-e", pattern]
        if args.get("path"):
            query += ["--", f":(glob){args['path']}"]
        if ctx.git_dir is not None:
            hostgit.strip_nested_repos(ctx.workspace)
            proc = hostgit.run(ctx.git_dir, ctx.workspace, *grep, "--untracked", *query,
                               check=False)
        else:
            proc = subprocess.run(
                ["git", *grep, "--no-index", "--exclude-standard", *query],
                cwd=ctx.workspace, capture_output=True, check=False,
                env=hostgit.safe_env({"GIT_DIR": "/nonexistent"}),
            )
        if proc.returncode == 1:
            where = f" in {args['path']}" if args.get("path") else ""
            return ToolOutput(f"no matches for {pattern!r}{where}", data={"matches": 0})
        if proc.returncode != 0:
            error = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            return ToolOutput(f"search failed: {error[0] if error else proc.returncode}", ok=False)
        lines = proc.stdout.decode("utf-8", "replace").splitlines()
        shown = [
            line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " [...]"
            for line in lines[:MAX_MATCHES]
        ]
        text = "\n".join(shown)
        if len(lines) > MAX_MATCHES:
            text += f"\n[{len(lines) - MAX_MATCHES} more matches not shown; narrow the pattern or path]"
        return ToolOutput(text, data={"matches": len(lines)})
