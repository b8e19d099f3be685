"""What a person need not be asked about again: read-only commands and "allow always" rules.

The approver (agent/approval.py) consults this module only for actions that already passed
the policy: the tools check `policy.toml` (writable and protected paths, the tools that may
run at all, genome code) before they call `ctx.approve`, so a rule can skip a question but
never permit what the policy refuses.

A command counts as *simple* when bash would run exactly the words shlex reads from it: one
program and its arguments, with no operator, redirection, expansion, comment, escape or
environment assignment anywhere outside quotes, and no control character at all. Only
simple commands are ever read-only or matched by a rule, so `pytest; rm -rf x` is asked even
when `pytest` is allowed always. Unquoted globs are tolerated only where the file names
they may become cannot matter: after a rule's prefix, and for readers without dangerous
options (`grep x *.py`).

An MCP tool call is asked as the command `mcp server__tool {json arguments}`
(agent/mcp_tools.py); "allow always" remembers that one tool (`server__tool`), never its
server or all of MCP. The run tool may be handed the very same text as a shell command, so
an MCP rule covers only text bash would run as the program `mcp` and nothing else: the
exact form the MCP tool writes, without a `$` or a backquote (the only characters that
expand inside the JSON's strings, which bash reads as double-quoted words).

Rules live in `.evoagent/approvals.json`, the person's own file (state.py refuses a
repository that commits anything under `.evoagent/` but config.toml): written atomically,
read defensively. A damaged file means no rules and one warning; it is moved aside, never
overwritten, when the next rule is saved.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .terminal_text import terminal_safe

RULES_FILE = "approvals.json"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 256 * 1024
"""A rules file larger than this is not read (it would be no file a person wrote)."""

TOOLS_ALLOWED_ALWAYS = ("edit", "write")
"""The actions besides commands that a rule may cover."""

MCP = "mcp"
"""The action of a rule for one MCP tool; its one word is the tool's `server__tool` name."""
_MCP_TOOL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*__[A-Za-z0-9_-]+")
_MCP_TOOL_CHARS = 64
"""Longest `server__tool` name (what model APIs take as a function name)."""
_EXPANDS_IN_QUOTES = set("$`")
"""What bash expands inside double quotes (history expansion `!` is off in scripts)."""

_UNQUOTED_SPECIAL = set(";&|<>()$`\\{}!")
"""Outside quotes: operators, redirections, expansions, escapes, brace lists, negation."""
_WORD_START_SPECIAL = set("#~")
"""Special only where a word starts (a comment, a home directory) or, for `~`, after = or :."""
_GLOB = set("*?[]")
"""Unquoted, bash may replace the word by file names (which the agent can choose)."""

WRAPPERS = frozenset({
    "env", "sudo", "doas", "su", "exec", "eval", "command", "builtin", "time", "nohup",
    "nice", "ionice", "timeout", "stdbuf", "setsid", "chroot", "unshare", "xargs", "watch",
    "strace", "ltrace", "source", ".", "coproc", "trap", "alias", "enable", "busybox",
})
"""Programs that run another command (or code) given in their arguments: a prefix rule on
them would allow anything, so none is ever offered."""

_INTERPRETER = re.compile(
    r"(python|pypy)(\d+(\.\d+)?)?|node|ruby|perl|php|lua|tclsh|Rscript|bash|sh|zsh|dash|fish"
    r"|[gm]?awk|sed")
"""Interpreters (awk and sed run programs too): remembered with their script (`python
tools/check.py`, `sed s/a/b/`) or module (`python -m pytest`); never bare, never with
options first (`-c` or `-e` code)."""

SUBCOMMAND_TOOLS = frozenset({
    "git", "make", "npm", "npx", "yarn", "pnpm", "bun", "deno", "cargo", "go", "uv", "poetry",
    "pdm", "hatch", "pipenv", "rye", "pip", "pip3", "tox", "nox", "docker", "podman", "just",
    "bundle", "rake", "gradle", "mvn", "dotnet", "bazel", "conda", "mix", "swift", "dart",
    "composer",
})
"""Programs whose second word chooses what they do (`make test`, `git commit`): remembered
with it."""

RUNNERS = frozenset({"run", "exec", "x"})
"""Subcommands that run the command after them (`uv run pytest`): remembered with that
command's own prefix."""

READ_ONLY_PROGRAMS = frozenset({"ls", "cat", "head", "tail", "wc", "pwd", "grep", "rg", "find"})
READ_ONLY_GIT = frozenset({"status", "log", "diff", "show"})
GLOB_SAFE_READERS = frozenset({"ls", "cat", "head", "tail", "wc", "grep"})
"""Read-only even with globs: no option of theirs runs a program or writes a file, so a
file the agent named like an option (`--pre=sh`, `-delete`) cannot turn them."""

_FIND_ACTIONS = ("-exec", "-ok", "-delete", "-fprint", "-fls")
"""find primaries that run programs or write files (-execdir, -okdir, -fprintf included)."""
_RG_RUNNING = ("--pre", "--hostname-bin")
"""rg options that run a program (a preprocessor, a hostname helper)."""
_GIT_WRITING_OPTIONS = ("--output", "--ext-diff")
"""git log/diff/show options that write a file or run a configured program. git takes any
unambiguous abbreviation of a long option (`--outp=f`), so abbreviations count too."""


def simple_words(command: str, globs: bool = False) -> list[str] | None:
    """The words of `command` when it is a simple command (see the module docstring), else
    None: bash and shlex then agree on every word, and bash runs nothing but the first.
    `globs` also accepts unquoted `*`, `?` and `[`, whose words bash may expand."""
    globbed = _scan(command)
    if globbed is None or (globbed and not globs) or not command.strip():
        return None
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes
        return None
    if not words or "=" in words[0]:
        return None  # an environment assignment (or a program named like one)
    return words


def _scan(command: str) -> bool | None:
    """Walk `command` as bash reads quotes. None when something outside single quotes can
    expand, redirect or chain, or a control character appears anywhere (a newline runs a
    second command); otherwise whether an unquoted glob character occurs."""
    if "\n" in command or terminal_safe(command) != command:
        return None  # controls would also make what the person is shown differ from it
    quote, word_start, globbed = "", True, False
    i = 0
    while i < len(command):
        c = command[i]
        if quote == "'":
            quote = "" if c == "'" else quote
        elif quote == '"':
            if c == "\\" and command[i + 1: i + 2] in ('"', "\\"):
                i += 1  # \" and \\ mean the same to bash and shlex; others are literal
            elif c in "$`!":
                return None
            elif c == '"':
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in " \t":
            word_start = True
            i += 1
            continue
        elif _special_unquoted(command, i, word_start):
            return None
        globbed = globbed or (c in _GLOB and not quote)
        word_start = False
        i += 1
    return None if quote else globbed


def _special_unquoted(command: str, i: int, word_start: bool) -> bool:
    """Whether bash gives the unquoted character at `i` a meaning beyond itself (globs apart)."""
    c = command[i]
    if c in _UNQUOTED_SPECIAL:
        return True
    # bash expands `~` after = or : even in an argument (`--dir=~/x`), not only first
    return c in _WORD_START_SPECIAL and (word_start or (c == "~" and command[i - 1] in "=:"))


def is_read_only(command: str) -> bool:
    """True for a simple command that only reads: git status/log/diff/show, ls, cat, head,
    tail, wc, pwd, grep, rg, and find without actions that run programs or write files."""
    words = simple_words(command, globs=True)
    if words is None or words[0] not in READ_ONLY_PROGRAMS | {"git"}:
        return False
    program, args = words[0], words[1:]
    if program not in GLOB_SAFE_READERS and simple_words(command) is None:
        return False  # globbed: its arguments are file names nobody has seen yet
    if program == "git":
        return bool(args) and args[0] in READ_ONLY_GIT and not any(
            _abbreviates(a, _GIT_WRITING_OPTIONS) for a in args[1:])
    if program == "find":
        return not any(a.startswith(_FIND_ACTIONS) for a in args)
    if program == "rg":
        return not any(a.startswith(_RG_RUNNING) for a in args)
    return True


def _abbreviates(arg: str, options: tuple[str, ...]) -> bool:
    name = arg.split("=", 1)[0]
    if not name.startswith("--") or name == "--":
        return False
    return any(o.startswith(name) or name.startswith(o) for o in options)


def mcp_tool_called(detail: str) -> str | None:
    """The `server__tool` of an MCP tool call's approval detail (`mcp NAME {json}`, exactly
    as agent/mcp_tools.py writes it), or None for any other text and for arguments holding
    `$` or a backquote (see the module docstring: the same text run by bash would expand)."""
    program, _, rest = detail.partition(" ")
    name, _, arguments = rest.partition(" ")
    if program != "mcp" or len(name) > _MCP_TOOL_CHARS or not _MCP_TOOL.fullmatch(name):
        return None
    if _EXPANDS_IN_QUOTES & set(arguments):
        return None
    try:  # canonical JSON only: no other spacing, no duplicate keys, nothing after it
        args = json.loads(arguments)
        canonical = isinstance(args, dict) and json.dumps(args, ensure_ascii=False) == arguments
    except (ValueError, RecursionError):
        return None
    return name if canonical else None


def command_prefix(words: list[str]) -> list[str] | None:
    """The words an "allow always" for this command remembers (`pytest`, `make test`,
    `python -m pytest`, `uv run pytest`), or None when no prefix would be safe to allow.

    None too for the read-only programs: they are asked only when they do more than read
    (`find -delete`, `rg --pre`), and a rule would then cover every such use."""
    if not words:
        return None
    program, rest = words[0], words[1:]
    if program in WRAPPERS or program in READ_ONLY_PROGRAMS or program.startswith("-"):
        return None
    if _INTERPRETER.fullmatch(program):
        if rest[:1] == ["-m"] and len(rest) > 1 and not rest[1].startswith("-"):
            return _literal([program, "-m", rest[1]])
        if rest and not rest[0].startswith("-"):
            return _literal([program, rest[0]])
        return None  # bare, -c code, or options first
    if program in SUBCOMMAND_TOOLS:
        if not rest or rest[0].startswith("-"):
            return None  # bare (`make` would become every target) or options first
        if program == "git" and rest[0] in READ_ONLY_GIT:
            return None
        if rest[0] in RUNNERS:  # `npm run` alone would allow every script
            inner = command_prefix(rest[1:])
            return None if inner is None else [program, rest[0], *inner]
        return _literal([program, rest[0]])
    return _literal([program])


def _literal(prefix: list[str]) -> list[str] | None:
    """`prefix` when no word of it holds a glob character: such a word, unquoted in a later
    command, would match the rule while bash runs whatever file names it expands to."""
    return None if any(_GLOB & set(word) for word in prefix) else prefix


@dataclass(frozen=True)
class Rule:
    """One "allow always": an action (`edit`, `write`), a command prefix (its words), or
    one MCP tool (action MCP, words `(server__tool,)`)."""

    action: str
    words: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What the person is shown: `edit`, the prefix as a shell would read it, or
        `mcp server__tool`."""
        if self.action == MCP:
            return f"mcp {self.words[0]}"
        return shlex.join(self.words) if self.action == "command" else self.action

    def covers(self, action: str, detail: str) -> bool:
        if self.action == MCP:  # MCP calls are asked as commands
            return action == "command" and mcp_tool_called(detail) == self.words[0]
        if action != self.action:
            return False
        if action != "command":
            return True
        # Globs may follow the prefix (`pytest tests/test_*.py`): prefix words hold none,
        # so a globbed word never matches one.
        words = simple_words(detail, globs=True)
        return words is not None and tuple(words[: len(self.words)]) == self.words


def rule_for(action: str, detail: str) -> Rule | None:
    """The rule an "allow always" answer to this request would store, or None when none
    may be offered (a compound command, a wrapper, an action no rule covers)."""
    if action in TOOLS_ALLOWED_ALWAYS:
        return Rule(action)
    if action != "command":
        return None
    tool = mcp_tool_called(detail)
    if tool is not None:
        return Rule(MCP, (tool,))
    words = simple_words(detail, globs=True)
    prefix = command_prefix(words) if words is not None else None
    return Rule("command", tuple(prefix)) if prefix else None


class DamagedRules(Exception):
    """The rules file cannot be used; the message says why (never its bytes)."""


class ApprovalRules:
    """The "allow always" rules of one repository, thread-safe.

    `path` None keeps rules in memory only (they last as long as the session). `warning` is
    one line when the file could not be used; `take_warning` hands it out once.
    """

    def __init__(self, path: Path | None = None):
        self.path = path
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._damaged = False
        self.warning: str | None = None
        if path is not None:
            try:
                self._rules = _read(path)
            except DamagedRules as exc:
                self._damaged = True
                self.warning = (f"{path} is damaged ({exc}): no \"allow always\" rule applies; "
                                "the next one saved keeps the old file beside it as .damaged-<time>")

    @classmethod
    def for_repo(cls, state_dir: Path) -> ApprovalRules:
        """The rules in `<state_dir>/approvals.json` (`.evoagent/` of the repository)."""
        return cls(Path(state_dir) / RULES_FILE)

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def allows(self, action: str, detail: str) -> bool:
        """True when a stored rule covers this request (only ever asked after the policy)."""
        return any(rule.covers(action, detail) for rule in self.rules)

    def take_warning(self) -> str | None:
        with self._lock:
            warning, self.warning = self.warning, None
            return warning

    def add(self, rule: Rule) -> None:
        """Remember `rule`, and save every rule when there is a file. A failed save keeps
        the rule for this session and leaves `warning` saying so."""
        with self._lock:
            if rule not in self._rules:
                self._rules.append(rule)
            if self.path is None:
                return
            try:
                self._save(self.path)
            except OSError as exc:
                self.warning = f"could not save approvals to {self.path}: {exc.strerror or exc}"

    def _save(self, path: Path) -> None:
        if self._damaged and path.exists():
            stamp = time.strftime("%Y%m%dT%H%M%S")
            os.replace(path, path.with_name(f"{path.name}.damaged-{stamp}"))
        elif not self._damaged:
            try:  # another session may have added rules since this one read the file
                self._rules += [r for r in _read(path) if r not in self._rules]
            except DamagedRules:
                self._damaged = True
                return self._save(path)
        self._damaged = False
        data: dict[str, object] = {
            "version": FORMAT_VERSION,
            "tools": sorted(r.action for r in self._rules if r.action in TOOLS_ALLOWED_ALWAYS),
            "commands": [list(r.words) for r in self._rules if r.action == "command"],
        }
        mcp_tools = [r.words[0] for r in self._rules if r.action == MCP]
        if mcp_tools:  # absent otherwise: files without MCP rules stay as they were
            data[MCP] = mcp_tools
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)  # a reader sees the old rules or the new, never half
        finally:
            tmp.unlink(missing_ok=True)


def _read(path: Path) -> list[Rule]:
    """The rules in `path` ([] when there is no file); DamagedRules when it is not one this
    module wrote: not a regular file, too large, not JSON, another version or shape."""
    if not os.path.lexists(path):
        return []
    try:
        if not path.is_file():  # a FIFO would block the read, a directory fail it
            raise DamagedRules("not a regular file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DamagedRules(f"larger than {MAX_FILE_BYTES} bytes")
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DamagedRules(f"not JSON: {type(exc).__name__}") from None
    except OSError as exc:
        raise DamagedRules(f"unreadable: {exc.strerror or type(exc).__name__}") from None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise DamagedRules(f"not a version {FORMAT_VERSION} approvals file")
    tools, commands = data.get("tools", []), data.get("commands", [])
    if not isinstance(tools, list) or any(t not in TOOLS_ALLOWED_ALWAYS for t in tools):
        raise DamagedRules(f"'tools' must list only {', '.join(TOOLS_ALLOWED_ALWAYS)}")
    if not isinstance(commands, list) or not all(_valid_prefix(c) for c in commands):
        raise DamagedRules("'commands' must list command prefixes as lists of words")
    mcp_tools = data.get(MCP, [])
    if not isinstance(mcp_tools, list) or not all(_valid_mcp_tool(t) for t in mcp_tools):
        raise DamagedRules("'mcp' must list MCP tools by their server__tool names")
    return [Rule(t) for t in dict.fromkeys(tools)] + [
        Rule("command", tuple(c)) for c in commands] + [
        Rule(MCP, (t,)) for t in dict.fromkeys(mcp_tools)]


def _valid_mcp_tool(name: object) -> bool:
    """One tool's full name: a hand-edited server name alone (`"github"`), `"*"` or `""`
    would not match one tool, and no question offers them."""
    return (isinstance(name, str) and len(name) <= _MCP_TOOL_CHARS
            and _MCP_TOOL.fullmatch(name) is not None)


def _valid_prefix(words: object) -> bool:
    """A stored prefix must be one this module could have offered: a hand-edited `["env"]`
    or `[]` would allow anything."""
    if not isinstance(words, list) or not words or not all(isinstance(w, str) for w in words):
        return False
    return command_prefix(words) == words
