"""A static scan of genome code for what a variant's tools and hooks should never do.

The sandbox already denies most of it (no network, no HOME, no keys); the scan makes a
variant that *tries* visible before anything runs, so the gate can reject it with the line.
It reads the syntax tree only (nothing is imported or executed), resolves import aliases
(`import os as o; o.system(...)`), and is deliberately blunt: genome code that needs one of
these things is not what the genome is for. Categories:

    network           socket, urllib.request, http.client, requests, httpx, ftplib, smtplib, ...
    process           subprocess, os.system/popen/spawn*/exec*/fork, pty, shell=True
    outside_workspace absolute or parent paths, `~`, expanduser, Path.home, .ssh, /etc,
                      os.environ reads of secret-looking (or computed) names, environ dumps
    dynamic_code      eval, exec, compile, __import__, importlib, runpy, ctypes, marshal
    link              a symlink (or FIFO, device) anywhere in the genome, and code that makes
                      links (os.symlink, os.link, Path.symlink_to / hardlink_to, mkfifo, mknod)
    repo_internals    the repository's git directory or evoagent's state as a path (`.git/`,
                      `.evoagent`), git settings that run programs or move the repository
                      (core.fsmonitor, core.hooksPath, core.worktree, include.path, filters)
    test_infra        what can forge test outcomes: conftest.py, sitecustomize, usercustomize,
                      `.pth` files, pytest plugins and pytest hook functions
    syntax            a file that does not parse (nothing else can be said about it)

Files are read with `read_untrusted` (a variant's worktree may hold links its meta agent's
tools made): a link is a finding, never followed, so the scan — which runs before anything else
of a variant is loaded — cannot be made to read a host file.
"""

from __future__ import annotations

import ast
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from evoagent.sandbox.env import is_secret_name
from evoagent.sandbox.untrusted_files import UntrustedFileError, read_untrusted_text

SOURCE_BYTES = 1_000_000
"""A genome module larger than this is a finding, not read."""

NETWORK_MODULES = {
    "socket", "ssl", "urllib.request", "urllib2", "http.client", "http.server", "requests",
    "httpx", "aiohttp", "urllib3", "ftplib", "smtplib", "poplib", "imaplib", "telnetlib",
    "xmlrpc", "websocket", "websockets", "socketserver", "asyncore",
}
PROCESS_MODULES = {"subprocess", "pty", "multiprocessing", "pexpect", "sh", "commands"}
DYNAMIC_MODULES = {"importlib", "runpy", "ctypes", "marshal", "code", "codeop", "imp", "cffi"}
PROCESS_CALLS = re.compile(
    r"os\.(system|popen\d?|fork|forkpty|posix_spawnp?|spawn\w*|exec\w*|startfile)"
    r"|asyncio\.create_subprocess_\w+|pty\.\w+"
)
DYNAMIC_CALLS = {"eval", "exec", "compile", "__import__", "builtins.eval", "builtins.exec",
                 "builtins.compile", "builtins.__import__"}
HOME_CALLS = re.compile(r"(os\.path|posixpath)\.expanduser|(pathlib\.)?Path\.home|\w+\.expanduser"
                        r"|os\.path\.expandvars|pwd\.getpw\w+")
ENVIRON = {"os.environ", "os.environb"}
ENV_KEYED = {"get", "pop", "setdefault", "__getitem__"}
"""os.environ methods that take one variable's name (judged by that name)."""
ENV_GETTERS = {"os.getenv", "os.getenvb", *(f"{e}.{m}" for e in ENVIRON for m in ENV_KEYED)}
SENSITIVE_PARTS = (".ssh", ".aws", ".gnupg", ".netrc", ".config/gh", ".docker", ".kube", ".git-credentials")
ABSOLUTE = re.compile(r"^/[A-Za-z0-9._-]")
PARENT = re.compile(r"^\.\.(/|\\|$)")
TILDE = re.compile(r"^~[A-Za-z0-9_./-]*$")
LINK_CALLS = re.compile(r"os\.(symlink|link|mkfifo|mknod)|os\.(symlink|link)at")
LINK_METHODS = {"symlink_to", "hardlink_to", "link_to"}
"""Path methods that make links, judged by name whatever the object."""
REPO_INTERNALS = re.compile(r"(?:^|[/\\\s'\"=])\.(?:git|evoagent)(?:$|[/\\\s'\"])")
GIT_RUNNERS = re.compile(r"(?i)\b(?:core\.(?:fsmonitor|hookspath|worktree|sshcommand|pager|editor|"
                         r"askpass|gitproxy|attributesfile|excludesfile)|include(?:if)?\b[^=\s]*\.path|"
                         r"filter\.[^.\s]+\.(?:clean|smudge|process)|diff\.[^.\s]+\.(?:textconv|command)|"
                         r"diff\.external|merge\.[^.\s]+\.driver|uploadpack\.packobjectshook)\b")
TEST_INFRA = re.compile(r"(?i)(?:^|[/\\\s'\"])(?:conftest\.py|sitecustomize(?:\.py)?|usercustomize(?:\.py)?|"
                        r"[\w.-]*\.pth|pytest\.ini|pytest_plugins|pytest11)(?:$|[/\\\s'\":])")
PYTEST_HOOK = re.compile(r"pytest_\w+")
DANGEROUS_ATTRS = {"system", "popen", "fork", "execv", "execve", "execvp", "spawnv", "eval", "exec",
                   "compile", "__import__", "environ", "getenv", "expanduser", "home", "socket",
                   "create_connection", "urlopen", "Popen", "check_output", "symlink", "link",
                   "symlink_to", "hardlink_to", "mkfifo", "mknod"}
"""Attribute names that, fetched by `getattr`, dodge the checks above."""


@dataclass(frozen=True)
class Finding:
    path: str
    """The file, relative to the genome directory (posix)."""
    line: int
    category: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.category}: {self.message}"


def scan_genome_code(genome_dir: Path) -> list[Finding]:
    """Findings for every Python file of the genome (tools/, hooks/ and anywhere else),
    in path and line order; empty when the code is clean."""
    genome_dir = Path(genome_dir)
    findings: list[Finding] = []
    for rel, kind in _genome_entries(genome_dir):
        if kind != "file":
            findings.append(Finding(rel, 0, "link", f"{kind}: the genome holds only plain files "
                                                    "and folders (it is never followed)"))
            continue
        if not rel.endswith(".py") or "__pycache__" in rel.split("/"):
            continue
        try:
            source = read_untrusted_text(genome_dir / rel, SOURCE_BYTES, root=genome_dir)
        except UntrustedFileError as exc:
            findings.append(Finding(rel, 0, "link", f"not read: {str(exc).rsplit(': ', 1)[-1]}"))
            continue
        findings += scan_source(source, rel)
    return sorted(findings, key=lambda f: (f.path, f.line, f.category, f.message))


def _genome_entries(genome_dir: Path) -> list[tuple[str, str]]:
    """(path relative to the genome, "file" | what else it is) for everything in it but `.git`,
    never descending into a linked folder."""
    entries = []
    for top, dirs, files in os.walk(genome_dir, followlinks=False):
        base = Path(top).relative_to(genome_dir)
        if base == Path("."):
            dirs[:] = [d for d in dirs if d != ".git"]
            files = [f for f in files if f != ".git"]  # a worktree's .git is a file
        for name in sorted(dirs + files):
            rel = (base / name).as_posix()
            mode = os.lstat(Path(top) / name).st_mode
            if stat.S_ISLNK(mode):
                entries.append((rel, "a symbolic link"))
                if name in dirs:
                    dirs.remove(name)
            elif stat.S_ISREG(mode):
                entries.append((rel, "file"))
            elif not stat.S_ISDIR(mode):
                entries.append((rel, "not a regular file"))
    return entries


def scan_source(source: str, path: str = "<string>") -> list[Finding]:
    """Findings for one module's source."""
    try:
        tree = ast.parse(source, path)
    except SyntaxError as exc:
        return [Finding(path, exc.lineno or 0, "syntax", f"does not parse: {exc.msg}")]
    scanner = _Scanner(path)
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            scanner.parents[id(child)] = parent
    scanner.visit(tree)
    return sorted(set(scanner.findings), key=lambda f: (f.line, f.category, f.message))


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str):
        self.path = path
        self.findings: list[Finding] = []
        self.aliases: dict[str, str] = {}
        """Local name -> the dotted name it stands for (`sp` -> `subprocess`)."""
        self.docstrings: set[int] = set()
        self.parents: dict[int, ast.AST] = {}

    def flag(self, node: ast.AST, category: str, message: str) -> None:
        self.findings.append(Finding(self.path, getattr(node, "lineno", 0), category, message))

    # -- imports -----------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            local = alias.asname or alias.name.split(".")[0]
            self.aliases[local] = alias.name if alias.asname else alias.name.split(".")[0]
            self._module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        self._module(node, base)
        for alias in node.names:
            full = f"{base}.{alias.name}" if base else alias.name
            self.aliases[alias.asname or alias.name] = full
            self._module(node, full, imported_name=True)

    def _module(self, node: ast.AST, name: str, imported_name: bool = False) -> None:
        parts = name.split(".")
        prefixes = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
        if prefixes & NETWORK_MODULES:
            self.flag(node, "network", f"imports {name}")
        elif prefixes & PROCESS_MODULES:
            self.flag(node, "process", f"imports {name}")
        elif prefixes & DYNAMIC_MODULES:
            self.flag(node, "dynamic_code", f"imports {name}")
        elif imported_name and PROCESS_CALLS.fullmatch(name):
            self.flag(node, "process", f"imports {name}")
        elif imported_name and LINK_CALLS.fullmatch(name):
            self.flag(node, "link", f"imports {name}")
        elif imported_name and (name in DYNAMIC_CALLS or HOME_CALLS.fullmatch(name)):
            category = "dynamic_code" if name in DYNAMIC_CALLS else "outside_workspace"
            self.flag(node, category, f"imports {name}")

    # -- names, calls, constants ---------------------------------------------------------

    def dotted(self, node: ast.AST) -> str | None:
        """`a.b.c` for a Name/Attribute chain, with the first name resolved through imports."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        if isinstance(node, ast.Call):  # Path("x").home() and the like
            inner = self.dotted(node.func)
            return f"{inner}()" if inner else None
        return None

    def visit_Call(self, node: ast.Call) -> None:
        bare = (self.dotted(node.func) or "").replace("()", "")
        if bare in DYNAMIC_CALLS:
            self.flag(node, "dynamic_code", f"calls {bare}()")
        elif PROCESS_CALLS.fullmatch(bare):
            self.flag(node, "process", f"calls {bare}()")
        elif HOME_CALLS.fullmatch(bare) or bare.endswith((".expanduser", ".home")):
            self.flag(node, "outside_workspace", f"calls {bare}() (the home directory)")
        elif LINK_CALLS.fullmatch(bare):
            self.flag(node, "link", f"calls {bare}()")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in LINK_METHODS:
            self.flag(node, "link", f"calls .{node.func.attr}()")
        elif bare in ("getattr", "builtins.getattr") and len(node.args) >= 2:
            attr = node.args[1]
            if isinstance(attr, ast.Constant) and attr.value in DANGEROUS_ATTRS:
                self.flag(node, "dynamic_code", f"getattr(..., {attr.value!r})")
            elif not isinstance(attr, ast.Constant):
                self.flag(node, "dynamic_code", "getattr() with a computed name")
        if bare in ENV_GETTERS:
            self._env_key(node, node.args[0] if node.args else None)
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value in (False, None)
            ):
                self.flag(keyword.value, "process", "shell=True")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self.dotted(node.value) in ENVIRON:
            self._env_key(node, node.slice)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if self.dotted(node) in ENVIRON:
            self._environ_use(node)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        name = self.aliases.get(node.id, node.id)
        parent = self.parents.get(id(node))
        called = isinstance(parent, ast.Call) and parent.func is node  # judged by visit_Call
        if name in DYNAMIC_CALLS and not called:
            self.flag(node, "dynamic_code", f"uses {name}")  # `run = eval` dodges the call check
        elif name in ENVIRON:
            self._environ_use(node)

    def _environ_use(self, node: ast.AST) -> None:
        """`os.environ[...]` and `os.environ.get(...)` are judged by their key; any other
        use (iterate, copy, pass along, print) reads the whole environment."""
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return
        if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr in ENV_KEYED:
            return
        self.flag(node, "outside_workspace", "reads the whole environment (os.environ)")

    def _env_key(self, node: ast.AST, key: ast.AST | None) -> None:
        if isinstance(key, ast.Constant) and isinstance(key.value, str | bytes):
            value = key.value.decode() if isinstance(key.value, bytes) else key.value
            if is_secret_name(value):
                self.flag(node, "outside_workspace", f"reads the secret-looking variable {value}")
        else:
            self.flag(node, "outside_workspace", "reads an environment variable with a computed name")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if PYTEST_HOOK.fullmatch(node.name):  # a plugin's hook: it can rewrite test reports
            self.flag(node, "test_infra", f"defines the pytest hook {node.name}()")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Expr(self, node: ast.Expr) -> None:
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            self.docstrings.add(id(node.value))  # prose about /etc is not a read of /etc
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if id(node) in self.docstrings or not isinstance(node.value, str):
            return
        self._path_text(node, node.value)

    def _path_text(self, node: ast.AST, text: str) -> None:
        stripped = text.strip()
        lowered = stripped.lower()
        if ABSOLUTE.match(stripped) and "\n" not in stripped:
            self.flag(node, "outside_workspace", f"absolute path {stripped[:60]!r}")
        elif PARENT.match(stripped):
            self.flag(node, "outside_workspace", f"parent-directory path {stripped[:60]!r}")
        elif TILDE.match(stripped):
            self.flag(node, "outside_workspace", f"home path {stripped[:60]!r}")
        elif "/etc/" in lowered or lowered == "/etc":
            self.flag(node, "outside_workspace", f"mentions /etc: {stripped[:60]!r}")
        if any(part in lowered for part in SENSITIVE_PARTS):
            self.flag(node, "outside_workspace", f"credential path {stripped[:60]!r}")
        if REPO_INTERNALS.search(stripped):
            self.flag(node, "repo_internals", f"names the git directory or .evoagent: {stripped[:60]!r}")
        if GIT_RUNNERS.search(stripped):
            self.flag(node, "repo_internals", f"names a git setting that runs programs: {stripped[:60]!r}")
        if TEST_INFRA.search(stripped):
            self.flag(node, "test_infra", f"names test infrastructure: {stripped[:60]!r}")
