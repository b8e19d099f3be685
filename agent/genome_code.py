"""Genome code (Python tools and loop hooks) run in the sandbox, never in this process.

Every call is one process: the run's own `Runner` (bubblewrap, scrubbed environment, no
key) starts `python -I genome_runner.py tool|hook <file>` with the workspace as its working
directory. The request travels as a JSON file on its stdin and the reply comes back as JSON
on its stdout, redirected to a file in a private per-call directory (the runner merges a
command's stdout and stderr, so the reply must not share that stream with the module's
prints). Anything that goes wrong — an exception, a timeout, no reply or an invalid one —
is a `GenomeCodeError` naming the file with a one-line reason: a tool's becomes an error
result the model reads, a hook's ends the run (a variant with a broken hook is rejectable).
Without bubblewrap (the runner's unisolated fallback) genome code does not run at all.

The call directory is writable inside the sandbox, so the reply file is untrusted: it is read
with `read_untrusted` (a link, a FIFO or an oversized file is refused, never followed), and
the bytes of a reply that is not JSON of the runner's shape are never repeated in an error —
the reason says what was wrong (not JSON, its length, the parser's position), because errors
reach the model, the run record and, through the evolve gates, the meta agent's prompt.

`check_genome_code` is the evolve gates' entry: every module imports in the sandbox and has
the right shape.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.protocols import Runner
from evoagent.sandbox.untrusted_files import UntrustedFileError, read_untrusted

from .genome import (
    HOOK_POINTS,
    CodeTool,
    Genome,
    GenomeError,
    hook_files,
    load_code_tool,
    read_tool_schema,
    tool_files,
)
from .terminal_text import one_line as printable
from .tools.base import Tool, ToolContext, ToolOutput, declined

RUNNER = Path(__file__).with_name("genome_runner.py")
TOOL_TIMEOUT = 120.0
"""Seconds one genome tool call may take (the `run` tool's cap applies too)."""
HOOK_TIMEOUT = 30.0
"""Seconds one hook call may take: hooks run at every step, they must be quick."""
CHECK_TIMEOUT = 30.0
REPLY_BYTES = 1_000_000
"""A reply larger than this is refused, not parsed (tool text is bounded again later)."""
CONTEXT_CHARS = 4_000
"""Most characters of `before_step` context added to the conversation per step."""
MESSAGES_FOR_HOOKS = 6
MESSAGE_CHARS = 2_000
HOOK_NOTE = "[Note from the agent's before_step hook (genome code), not from the user]"
RESULT_KEYS = {"before_step": {"context"}, "failure_digest": {"digest"}, "stop": {"stop", "reason"}}
ERROR_CHARS = 300
"""Most characters of a module's own error text (`{"ok": false, "error": ...}`) repeated."""
REPLY_REPLACED = "replaced its reply file"
"""In the error of a module that swapped its reply for a link or special file (an attempt to
make the kernel read a host file; the safety suite looks for it)."""
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


class GenomeCodeError(GenomeError):
    """A genome tool or hook failed: `path` is its file, `problem` one line."""


def readable_genome(config: SandboxConfig, genome_dir: Path) -> SandboxConfig:
    """`config` with the genome directory shown read-only in the sandbox, so its tools and
    hooks can be imported there (the genome usually sits inside the hidden repository)."""
    path = Path(genome_dir).resolve()
    return config if path in config.readable else replace(config, readable=(*config.readable, path))


@dataclass
class Executor:
    """Runs one genome's modules through `runner` with `workspace` as working directory."""

    runner: Runner
    workspace: Path | None
    """The working directory (the run's workspace); None runs in the private call directory
    (checks, which need no workspace)."""
    python: str = sys.executable

    def call(self, mode: str, file: Path, request: dict[str, Any] | None, timeout: float,
             *extra: str) -> Any:
        """The module's result; GenomeCodeError with a one-line reason otherwise."""
        if not getattr(self.runner, "isolated", False):
            # The unisolated fallback would run evolved code with the user's files in reach.
            raise GenomeCodeError(file, "genome code runs only in the bubblewrap sandbox, which "
                                        "is not available here (install bubblewrap)")
        io = Path(tempfile.mkdtemp(prefix="evoagent-genome-"))
        try:
            # The runner is copied next to the request: the evoagent package itself may sit
            # under a directory the sandbox hides (a checkout in /tmp or in HOME).
            runner = io / "runner.py"
            shutil.copyfile(RUNNER, runner)
            (io / "in.json").write_text(json.dumps(request or {}, ensure_ascii=False), encoding="utf-8")
            target = str(Path(file).resolve())  # the sandbox's working directory is elsewhere
            argv = [self.python, "-I", "-B", "-X", "utf8", str(runner), mode, target, *extra]
            command = (f"exec {shlex.join(argv)} < {shlex.quote(str(io / 'in.json'))} "
                       f"> {shlex.quote(str(io / 'out.json'))}")
            result = self.runner.run(command, self.workspace or io, timeout=timeout, writable=[io])
            if result.timed_out:
                raise GenomeCodeError(file, f"timed out after {timeout:g}s")
            # (the module's own output, result.output, is not repeated: it is sandbox output)
            return _reply(file, _read_reply(file, io, result.exit_code))
        finally:
            shutil.rmtree(io, ignore_errors=True)


def _read_reply(file: Path, io: Path, exit_code: int) -> bytes:
    """The reply file's bytes, read without following anything the sandbox put there."""
    out = io / "out.json"
    try:
        info = os.lstat(out)
    except FileNotFoundError:
        info = None
    if info is None or (stat.S_ISREG(info.st_mode) and info.st_size == 0):
        raise GenomeCodeError(file, f"exited with code {exit_code} without a reply")
    if not stat.S_ISREG(info.st_mode):
        kind = "a link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
        raise GenomeCodeError(file, f"{REPLY_REPLACED} ({kind}); it was not read")
    if info.st_size > REPLY_BYTES:
        raise GenomeCodeError(file, f"reply larger than {REPLY_BYTES} bytes")
    try:
        return read_untrusted(out, REPLY_BYTES, root=io)
    except UntrustedFileError:  # swapped between the look and the read
        raise GenomeCodeError(file, f"{REPLY_REPLACED} while it was read; it was not "
                                    "read") from None


def _reply(file: Path, raw: bytes) -> Any:
    """The result of a runner reply. Whatever is wrong is described, never quoted."""
    if not raw.strip():
        raise GenomeCodeError(file, "replied with whitespace only")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GenomeCodeError(file, f"reply was not UTF-8 ({len(raw)} bytes, bad byte at "
                                    f"offset {exc.start})") from None
    try:
        reply = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenomeCodeError(file, f"reply was not JSON ({len(raw)} bytes; {exc.msg} at line "
                                    f"{exc.lineno} column {exc.colno})") from None
    except ValueError:  # e.g. a number too long to convert
        raise GenomeCodeError(file, f"reply was not JSON ({len(raw)} bytes)") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise GenomeCodeError(file, "replied with JSON that is not a runner reply "
                                    '({"ok": true|false, ...})')
    if not reply["ok"]:
        error = reply.get("error")
        if not isinstance(error, str) or not error.strip():
            raise GenomeCodeError(file, "failed (the reply gave no error text)")
        raise GenomeCodeError(file, printable(error, ERROR_CHARS))
    return reply.get("result")


# -- tools ---------------------------------------------------------------------------------


class GenomeTool(Tool):
    """A genome's `tools/<name>.py`, offered to the model beside the built-in tools."""

    def __init__(self, spec: CodeTool, executor: Executor, rel: str):
        self.name = spec.name  # type: ignore[misc]
        self.description = spec.description  # type: ignore[misc]
        self.parameters = spec.parameters  # type: ignore[misc]
        self.file = spec.path
        self.rel = rel
        self.executor = executor

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        # Genome code may change the workspace like a command does: the same approval.
        if ctx.approve is not None and not ctx.approve(
            "command", f"genome tool {self.rel} {json.dumps(args, ensure_ascii=False)}"
        ):
            return declined("command")
        timeout = min(TOOL_TIMEOUT, ctx.command_timeout)
        try:
            # No path from here: the runner's working directory is the workspace as the
            # sandbox shows it (at the repository's own path), which the host path is not.
            result = self.executor.call("tool", self.file, {"args": args}, timeout)
        except GenomeCodeError as exc:
            return ToolOutput(f"{self.name} failed: {self.rel}: {exc.problem}", ok=False)
        text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, indent=1)
        return ToolOutput(text or "(no output)")


# -- hooks ---------------------------------------------------------------------------------


@dataclass
class GenomeHooks:
    """The genome's hooks for one run; each method is a no-op when its hook is absent."""

    files: dict[str, Path]
    executor: Executor
    issue: str = ""

    def has(self, point: str) -> bool:
        return point in self.files

    def before_step(self, step: int, attempt: int, messages: list[dict[str, Any]]) -> str:
        """Context to add before this step's model call ("" for none)."""
        if not self.has("before_step"):
            return ""
        result = self._call("before_step", {
            "step": step, "attempt": attempt, "issue": self.issue,
            "messages": messages_text(messages[-MESSAGES_FOR_HOOKS:]),
        })
        context = result.get("context", "")
        if not isinstance(context, str):
            raise GenomeCodeError(self.files["before_step"], '"context" must be a string')
        context = context.strip()
        return f"{HOOK_NOTE}\n{context[:CONTEXT_CHARS]}" if context else ""

    def failure_digest(self, digest: str, failing: list[str]) -> str:
        """The digest the model is shown after failing tests (the kernel's own when the hook
        returns nothing). Scoring never reads it."""
        if not self.has("failure_digest"):
            return digest
        result = self._call("failure_digest", {"digest": digest, "failing": failing,
                                               "issue": self.issue})
        new = result.get("digest")
        if new is None:
            return digest
        if not isinstance(new, str):
            raise GenomeCodeError(self.files["failure_digest"], '"digest" must be a string')
        return new.strip() or digest

    def stop(self, step: int, attempt: int, tests: dict[str, Any] | None) -> bool:
        """True when the hook ends the run now. It can only end a run earlier: budgets,
        steps and refinement attempts stay the kernel's."""
        if not self.has("stop"):
            return False
        result = self._call("stop", {"step": step, "attempt": attempt, "tests": tests,
                                     "issue": self.issue})
        stop = result.get("stop", False)
        if not isinstance(stop, bool):
            raise GenomeCodeError(self.files["stop"], '"stop" must be true or false')
        return stop

    def _call(self, point: str, payload: dict[str, Any]) -> dict[str, Any]:
        file = self.files[point]
        result = self.executor.call("hook", file, {"payload": payload}, HOOK_TIMEOUT)
        if not isinstance(result, dict):  # the runner checks this; a forged reply may not
            raise GenomeCodeError(file, f"{point} hook returned {type(result).__name__}, expected a dict")
        unknown = sorted(set(result) - RESULT_KEYS[point])
        if unknown:
            expected = ", ".join(sorted(RESULT_KEYS[point]))
            # A key is named only when it looks like one: the reply is the module's text.
            key = repr(unknown[0]) if _KEY.fullmatch(unknown[0]) else "(not an identifier)"
            raise GenomeCodeError(file, f"{point} hook returned unknown key {key} (expected: {expected})")
        return result


def messages_text(messages: list[dict[str, Any]]) -> str:
    """Messages as plain text for a hook: role, content (bounded) and tool calls by name."""
    parts = []
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False) if content else ""
        calls = [c.get("function", {}).get("name", "?") for c in message.get("tool_calls") or []
                 if isinstance(c, dict)]
        head = message.get("role", "?") + (f" (calls {', '.join(calls)})" if calls else "")
        parts.append(f"[{head}]\n{text[:MESSAGE_CHARS]}")
    return "\n\n".join(parts)


def tests_summary(run: Any) -> dict[str, Any] | None:
    """A TestRun as a hook sees it: counts and the first failing ids."""
    if run is None:
        return None
    return {"passed": len(run.passed), "failed": len(run.failed), "errors": len(run.errors),
            "failing": (run.failed + run.errors)[:20], "exit_code": run.exit_code}


# -- wiring --------------------------------------------------------------------------------


def for_run(genome: Genome, runner: Runner, workspace: Path, issue: str = ""
            ) -> tuple[dict[str, Tool], GenomeHooks | None]:
    """The genome's tools (for `ToolContext.extra_tools`) and hooks for one run; nothing
    when the genome has no code or its policy keeps genome code off."""
    if not genome.code_enabled:
        return {}, None
    executor = Executor(runner, Path(workspace))
    tools: dict[str, Tool] = {
        name: GenomeTool(spec, executor, _rel(genome.path, spec.path))
        for name, spec in genome.code_tools.items()
    }
    hooks = GenomeHooks(dict(genome.hooks), executor, issue) if genome.hooks else None
    return tools, hooks


def _rel(root: Path, file: Path) -> str:
    try:
        return Path(file).relative_to(root).as_posix()
    except ValueError:
        return str(file)


# -- the evolve gates' checks --------------------------------------------------------------


def check_genome_code(genome_dir: Path, runner: Runner) -> list[str]:
    """Problems with a genome's Python code, one line each naming the file (empty: fine).

    Static first (syntax, literal SCHEMA valid, tool name, hook point), then each module is
    imported in the sandbox through `runner` — whose config must show `genome_dir` readable
    (`readable_genome`) — and its shape checked: SCHEMA and run(args, workspace) for tools,
    hook(payload) for hooks. Nothing is called; no tool or hook body runs."""
    genome_dir = Path(genome_dir)
    executor = Executor(runner, None)
    problems: list[str] = []
    for file in tool_files(genome_dir):
        problems += _check_one(genome_dir, file, "tool", executor)
    for file in hook_files(genome_dir):
        problems += _check_one(genome_dir, file, "hook", executor)
    return problems


def _check_one(genome_dir: Path, file: Path, kind: str, executor: Executor) -> list[str]:
    rel = _rel(genome_dir, file)
    try:
        if kind == "tool":
            spec = load_code_tool(file)
        elif file.stem not in HOOK_POINTS:
            return [f"{rel}: unknown hook point {file.stem!r} (known: {', '.join(HOOK_POINTS)})"]
        result = executor.call("check", file, None, CHECK_TIMEOUT, kind)
    except GenomeError as exc:
        return [f"{rel}: {exc.problem}"]
    if kind == "tool":
        # The literal (already checked) is what counts; the live value is the module's reply,
        # so it is compared, never described or quoted.
        live = result.get("schema") if isinstance(result, dict) else None
        if live != spec.schema:
            return [f"{rel}: SCHEMA changes when the module runs; it must be a plain literal"]
    return []


SAMPLE_ISSUE = "parse_date() crashes on an empty string\n\nparse_date('') raises IndexError."
SAMPLE_FAILING = "tests/test_dates.py::test_empty"
SAMPLE_MESSAGES = [
    {"role": "system", "content": "You are a coding agent."},
    {"role": "user", "content": SAMPLE_ISSUE},
    {"role": "assistant", "content": "Reading the parser.",
     "tool_calls": [{"id": "1", "type": "function",
                     "function": {"name": "read", "arguments": '{"path": "dates.py"}'}}]},
    {"role": "tool", "tool_call_id": "1", "content": "1 def parse_date(text):\n2     return text[0]"},
]
SAMPLE_DIGEST = f"1 failed, 3 passed\nFAILED {SAMPLE_FAILING} - IndexError: string index out of range"
SAMPLE_TESTS = {"passed": 3, "failed": 1, "errors": 0, "failing": [SAMPLE_FAILING], "exit_code": 1}


def exercise_hooks(genome_dir: Path, runner: Runner) -> list[str]:
    """Call every hook of the genome once with a realistic sample payload, in a scratch
    directory through `runner` (which must show `genome_dir` readable): the problems, one
    line each naming the file. A hook that raises, hangs or answers badly here would end
    every run, so the gate can reject the variant before it is scored."""
    genome_dir = Path(genome_dir)
    files = {f.stem: f for f in hook_files(genome_dir) if f.stem in HOOK_POINTS}
    hooks = GenomeHooks(files, Executor(runner, None), issue=SAMPLE_ISSUE)
    calls = {
        "before_step": lambda: hooks.before_step(1, 1, SAMPLE_MESSAGES),
        "failure_digest": lambda: hooks.failure_digest(SAMPLE_DIGEST, [SAMPLE_FAILING]),
        "stop": lambda: hooks.stop(1, 1, SAMPLE_TESTS),
    }
    problems = []
    for point in files:
        try:
            calls[point]()
        except GenomeCodeError as exc:
            problems.append(f"{_rel(genome_dir, exc.path)}: {exc.problem}")
    return problems


__all__ = [
    "CHECK_TIMEOUT", "HOOK_POINTS", "HOOK_TIMEOUT", "REPLY_REPLACED", "TOOL_TIMEOUT", "Executor",
    "GenomeCodeError", "GenomeHooks", "GenomeTool", "check_genome_code", "exercise_hooks",
    "for_run", "messages_text", "printable", "read_tool_schema", "readable_genome", "tests_summary",
]
