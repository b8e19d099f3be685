"""run_tests: the repository's tests (or a selection), reported as a failure digest."""

from __future__ import annotations

from typing import Any

from .base import Tool, ToolContext, ToolOutput, unavailable


class RunTestsTool(Tool):
    name = "run_tests"
    description = (
        "Run the repository's test command in the sandbox, optionally only some tests (ids or "
        "paths), and get a digest: counts, failing test ids, assertions and trimmed tracebacks."
    )
    parameters = {
        "type": "object",
        "properties": {
            "selection": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Test ids or paths; omit to run everything.",
            },
        },
        "additionalProperties": False,
    }

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        if ctx.run_tests is None:
            return unavailable("run_tests (no test command detected)", "run the tests with run")
        selection = args.get("selection") or None
        return ToolOutput(ctx.run_tests(selection))
