"""run: a shell command in the sandbox."""

from __future__ import annotations

from typing import Any

from .base import Tool, ToolContext, ToolOutput, declined, unavailable


class RunTool(Tool):
    name = "run"
    description = (
        "Run a shell command in the sandboxed copy of the repository (working directory: its "
        "root). Use it to reproduce problems and inspect behaviour; prefer run_tests for tests."
    )
    parameters = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "A bash command line."},
            "timeout": {"type": "number", "description": "Seconds before it is killed (default 120)."},
        },
        "required": ["command"],
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        if ctx.run_command is None:
            return unavailable("running commands", "read and search the code instead")
        if ctx.approve is not None and not ctx.approve("command", args["command"]):
            return declined("command")
        timeout = min(float(args.get("timeout") or 120), ctx.command_timeout)
        code, output = ctx.run_command(args["command"], timeout)
        status = f"timed out after {timeout:g}s" if code is None else f"exit code {code}"
        body = output if output.strip() else "(no output)"
        return ToolOutput(f"{status}\n{body}", ok=code == 0, data={"exit_code": code})
