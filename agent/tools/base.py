"""The tool protocol: a name, a description, a JSON schema and `run(args, ctx) -> ToolOutput`.

What a tool needs from the rest of the kernel (the sandbox, memory, the test runner) arrives
as optional callables on `ToolContext`; a tool whose callable is missing says so plainly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from evoagent.agent.genome import Skill

DEFAULT_OUTPUT_LIMIT = 12_000


@dataclass
class ToolOutput:
    text: str
    ok: bool = True
    data: dict[str, Any] | None = None
    """Structured extras for the loop and front ends (diffs, exit codes, the finish marker)."""

    @property
    def is_finish(self) -> bool:
        """True for the `finish` tool's result: the loop's stop signal."""
        return bool(self.data and self.data.get("finish") is True)


@dataclass
class ToolContext:
    workspace: Path
    """Root of the sandbox worktree; every path a tool takes is relative to it."""
    git_dir: Path | None = None
    """The workspace's git directory (kept outside the tree, out of the sandbox's reach).
    None: a plain directory, searched without any repository's configuration."""
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    """Characters of tool output the model sees; longer output keeps its head and tail."""
    run_command: Callable[[str, float], tuple[int | None, str]] | None = None
    """Run a shell command in the sandbox: (command, timeout seconds) -> (exit code or None
    on timeout, combined output)."""
    run_tests: Callable[[list[str] | None], str] | None = None
    """Run the repo's tests (optionally a selection of ids/paths) -> a failure digest."""
    locate: Callable[[str, int], dict[str, Any]] | None = None
    """(issue text, k) -> LocateResult.to_json(): {"files": [...], "symbols": [...]}."""
    recall: Callable[[str, int], list[dict[str, Any]]] | None = None
    """(query, k) -> past commits/knowledge: dicts with sha, subject, files, ..."""
    repo_map: Callable[[int, list[str]], str] | None = None
    """(token budget, focus paths or identifiers) -> a ranked outline of the code."""
    skills: Mapping[str, Skill] = field(default_factory=dict)
    """The genome's skills by name."""
    writable: Callable[[str], bool] | None = None
    """Policy check for a relative path; None allows every path inside the workspace."""
    command_timeout: float = 600.0
    """Upper bound for one `run` command, whatever the model asks for."""
    approve: Callable[[str, str], bool] | None = None
    """(action "edit" | "write" | "command", detail: the diff or the command) -> allowed.
    Called before acting; None allows everything (see agent/approval.py)."""
    current_call_id: str = ""
    """The id of the tool call being run (set by the loop), so what a tool streams while it
    runs (a command's live output) can name its call."""
    extra_tools: Mapping[str, Tool] = field(default_factory=dict)
    """Tools beyond the built-in registry, by name: the genome's Python tools of this run
    (see agent/genome_code.py). Looked up before the registry."""


def declined(action: str) -> ToolOutput:
    """The result of an action the user refused: nothing was applied or run."""
    return ToolOutput(
        f"The user declined this {action}; nothing was {'run' if action == 'command' else 'applied'}. "
        "Do not retry it unchanged; ask or take another approach.",
        ok=False,
        data={"declined": True},
    )


class Tool:
    """Base for built-in tools; subclasses set the class attributes and implement `run`."""

    name: ClassVar[str]
    description: ClassVar[str]
    parameters: ClassVar[dict[str, Any]]
    read_only: bool = False
    """True when a call changes nothing: an extra tool (an MCP server's) that says so is
    offered in read-only turns (/ask) too. Built-in tools are chosen there by name."""

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        """OpenAI tool format, for native tool calling."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


def unavailable(what: str, instead: str) -> ToolOutput:
    return ToolOutput(f"{what} is not available in this session; {instead}", ok=False)


def bound(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, keeping its head and tail."""
    if len(text) <= limit:
        return text
    note = "\n[... {n} characters elided ...]\n"
    room = max(0, limit - len(note.format(n=len(text))))
    head = room * 2 // 3
    tail = room - head
    elided = len(text) - head - tail
    return text[:head] + note.format(n=elided) + (text[-tail:] if tail else "")


JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def check_args(schema: dict[str, Any], args: Any, where: str = "arguments") -> str | None:
    """The first way `args` breaks `schema` (the subset tools use), or None when it fits."""
    kind = schema.get("type")
    if kind:
        expected = JSON_TYPES[kind]
        if not isinstance(args, expected) or (kind in ("integer", "number") and isinstance(args, bool)):
            return f"{where} must be {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    if "enum" in schema and args not in schema["enum"]:
        return f"{where} must be one of {schema['enum']}"
    if kind == "object":
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in args:
                return f"{where}: missing required {name!r}"
        if schema.get("additionalProperties") is False:
            extra = sorted(set(args) - set(props))
            if extra:
                return f"{where}: unknown {', '.join(map(repr, extra))} (expected: {', '.join(props)})"
        for name, value in args.items():
            if name in props:
                problem = check_args(props[name], value, name)
                if problem:
                    return problem
    if kind == "array" and "items" in schema:
        for index, item in enumerate(args):
            problem = check_args(schema["items"], item, f"{where}[{index}]")
            if problem:
                return problem
    return None
