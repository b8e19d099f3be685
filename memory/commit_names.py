"""What a commit names: its paths, which are tests, the symbol each hunk sits in, the
issues its message cites. Pure text functions over what git prints; no process runs here.

Paths come as git writes them: bare, or C-quoted with octal escapes, with a/ b/ prefixes.
Enclosing symbols come from git's own funcname context (the text after the second `@@` of a
hunk header). `attributes_text()` is a core.attributesFile that maps extensions to git's
builtin diff drivers (plus a JS/TS driver, `FUNCNAME_CONFIG`), so that context is a
definition line; `symbol_name` then reads the defined name out of it. `extract_issue_refs`
finds "#123", "GH-12", "owner/repo#5" and GitHub issue/PR URLs in a message.
"""

from __future__ import annotations

import re

# Extension -> git's builtin funcname driver (plus our JS/TS driver defined below).
_DRIVERS = {
    "python": "py pyi pyw",
    "golang": "go",
    "rust": "rs",
    "java": "java",
    "kotlin": "kt kts",
    "ruby": "rb rake",
    "php": "php",
    "cpp": "c h cc cpp cxx hpp hh hxx ino",
    "csharp": "cs",
    "objc": "m mm",
    "perl": "pl pm",
    "elixir": "ex exs",
    "bash": "sh bash",
    "fortran": "f f90 f95",
    "pascal": "pas",
    "scheme": "scm ss",
    "evoagent-js": "js jsx mjs cjs ts tsx mts cts vue svelte",
}
CODE_EXTS = frozenset(ext for exts in _DRIVERS.values() for ext in exts.split()) | {
    "swift",
    "scala",
    "dart",
    "lua",
    "groovy",
    "clj",
    "hs",
    "ml",
    "erl",
    "jl",
    "r",
}
# POSIX ERE (what git compiles); "!" lines exclude control-flow statements.
_JS_FUNCNAME = "\n".join(
    [
        "!^[ \t]*(if|else|for|while|do|switch|catch|return|try)([^A-Za-z0-9_$]|$)",
        # git shows the first group, so each pattern is one group around the whole line
        "^[ \t]*(((export|default|async|static|public|private|protected|abstract|get|set)"
        "[ \t]+)*(function|class|interface|enum)[^A-Za-z0-9_$].*)$",
        "^[ \t]*((export[ \t]+)?(const|let|var)[ \t]+[A-Za-z_$][A-Za-z0-9_$]*[ \t]*=[ \t]*"
        "(async[ \t]+)?(function|\\(|[A-Za-z_$][A-Za-z0-9_$]*[ \t]*=>).*)$",
        "^[ \t]*(((static|async|get|set|public|private|protected|readonly)[ \t]+)*"
        "[A-Za-z_$][A-Za-z0-9_$]*[ \t]*\\([^;]*\\)[ \t]*(:[^;{]*)?\\{.*)$",
    ]
)


# The git config that defines our JS/TS driver (git's builtin drivers need none).
FUNCNAME_CONFIG = {"diff.evoagent-js.xfuncname": _JS_FUNCNAME}


def attributes_text() -> str:
    """A core.attributesFile body: `*.py diff=python`, ... for every driver above."""
    lines = []
    for driver, exts in _DRIVERS.items():
        lines += [f"*.{ext} diff={driver}" for ext in exts.split()]
    return "\n".join(lines) + "\n"


def is_code(path: str) -> bool:
    """Is this a source file whose hunks name a symbol worth keeping?"""
    return path.rpartition(".")[2].lower() in CODE_EXTS


# --- paths --------------------------------------------------------------------------

_ESCAPES = dict(zip(b'abtnvfr"\\', b'\a\b\t\n\v\f\r"\\', strict=True))


def unquote_path(raw: bytes) -> str:
    """A path as git prints it: bare, or C-quoted with octal escapes for odd bytes."""
    if len(raw) < 2 or raw[:1] != b'"' or raw[-1:] != b'"':
        return raw.decode("utf-8", "replace")
    out = bytearray()
    body, i = raw[1:-1], 0
    while i < len(body):
        byte = body[i]
        if byte == 0x5C and i + 1 < len(body):  # backslash
            nxt = body[i + 1]
            if 0x30 <= nxt <= 0x37 and i + 4 <= len(body):
                out.append(int(body[i + 1 : i + 4], 8) & 0xFF)
                i += 4
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(byte)
        i += 1
    return out.decode("utf-8", "replace")


def strip_prefix(path: str) -> str:
    return path[2:] if path[:2] in ("a/", "b/") else path


def path_from_diff_header(rest: bytes) -> str:
    """The path from `diff --git a/P b/P` when no ---/+++ line follows (binary, mode only)."""
    if rest.startswith(b'"'):
        end = rest.find(b'" ', 1)
        while end != -1 and rest[end - 1 : end] == b"\\":
            end = rest.find(b'" ', end + 1)
        target = rest[end + 2 :] if end != -1 else rest
        return strip_prefix(unquote_path(target))
    half = (len(rest) - 1) // 2
    if len(rest) % 2 == 1 and rest[half : half + 1] == b" " and rest[2:half] == rest[half + 3 :]:
        return strip_prefix(rest[half + 1 :].decode("utf-8", "replace"))
    cut = rest.rfind(b" b/")
    target = rest[cut + 1 :] if cut != -1 else rest
    return strip_prefix(unquote_path(target))


# --- tests ---------------------------------------------------------------------------

_TEST_DIRS = frozenset({"test", "tests", "__tests__", "spec", "specs", "testing", "e2e"})
_TEST_FILE = re.compile(
    r"^(?:test_.*\.py|.*_tests?\.py|conftest\.py|.*_test\.go|.*\.(?:test|spec)\.[cm]?[jt]sx?"
    r"|.*(?:Test|Tests|IT)\.(?:java|kt|scala|cs|php|swift)|.*_(?:spec|test)\.rb|test_.*\.rb"
    r"|.*_(?:unit)?test\.(?:c|cc|cpp|cxx|rs|exs?)|test_.*\.(?:c|cc|cpp))$"
)


def is_test_path(path: str) -> bool:
    """Does this repo path look like a test file (by directory or file name convention)?"""
    *dirs, name = path.split("/")
    return any(d.lower() in _TEST_DIRS for d in dirs) or bool(_TEST_FILE.match(name))


_RUNNABLE = re.compile(
    r"^(?:test_.*\.py|.*_tests?\.py|.*_test\.go|.*\.(?:test|spec)\.[cm]?[jt]sx?|.*_spec\.rb"
    r"|test_.*\.rb|.*_test\.rb|.*(?:Test|Tests)\.(?:java|kt))$"
)


def is_runnable_test(path: str) -> bool:
    """A test file a test runner collects (`test_x.py`, `x_test.go`, `x.spec.ts`, ...), not
    test data or a fixture that only lives under a test directory (a typing sample)."""
    name = path.rsplit("/", 1)[-1]
    return is_test_path(path) and is_code(path) and bool(_RUNNABLE.match(name))


# --- symbols ------------------------------------------------------------------------

_KEYWORDS = frozenset(
    re.findall(
        r"\w+",
        "if else elif for while do switch case catch return try with sizeof new delete "
        "function async await yield typeof throw and or not in is lambda",
    )
)
_SYMBOL_PATTERNS = [
    re.compile(r"\bdef\s+(?:self\.)?([A-Za-z_]\w*[?!=]?)"),
    re.compile(r"\bfunc\s+(?:\([^)]*\)\s*)?([A-Za-z_]\w*)"),
    re.compile(r"\bfn\s+([A-Za-z_]\w*)"),
    re.compile(r"\bfunction\b\s*\*?\s*&?\s*([A-Za-z_$][\w$]*)"),
    re.compile(
        r"([A-Za-z_$][\w$]*)\s*[:=]\s*(?:async\s+)?(?:function\b|\([^)]*\)\s*=>|[\w$]+\s*=>)"
    ),
    re.compile(r"\bimpl\b(?:\s*<[^>]*>)?\s+(?:[\w:]+(?:<[^>]*>)?\s+for\s+)?([A-Za-z_]\w*)"),
    re.compile(
        r"\b(?:class|struct|interface|enum|trait|module|object|record|protocol|namespace|"
        r"union|type)\s+([A-Za-z_$][\w$]*)\s*(?=$|[({:<=]|extends\b|implements\b|where\b)"
    ),
]
_CALL = re.compile(r"([A-Za-z_~$][\w:~$.]*)\s*\(")


def symbol_name(context: str) -> str:
    """The defined name in a hunk's funcname context: "def foo(self):" -> "foo"."""
    for pattern in _SYMBOL_PATTERNS:
        match = pattern.search(context)
        if match:
            return match.group(1)
    for match in _CALL.finditer(context):
        name = re.split(r"::|\.", match.group(1))[-1]
        if name and name not in _KEYWORDS:
            return name
    return ""


# --- issue refs -------------------------------------------------------------------

_ISSUE_REF = re.compile(
    r"https?://github\.com/(?P<url_repo>[\w.-]+/[\w.-]+)/(?:issues|pull)/(?P<url_num>\d+)"
    r"|(?<![\w/.-])(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)#(?P<repo_num>\d+)\b"
    r"|\bGH-(?P<gh_num>\d+)\b"
    r"|(?<![\w&/#])#(?P<num>\d+)\b",
    re.IGNORECASE,
)


def extract_issue_refs(text: str) -> list[str]:
    """Issue references in order of appearance: "#123", or "owner/repo#5" across repos."""
    refs: dict[str, None] = {}
    for match in _ISSUE_REF.finditer(text):
        groups = match.groupdict()
        if groups["url_repo"]:
            ref = f"{groups['url_repo']}#{groups['url_num']}"
        elif groups["repo"]:
            ref = f"{groups['repo']}#{groups['repo_num']}"
        else:
            ref = f"#{groups['gh_num'] or groups['num']}"
        refs[ref] = None
    return list(refs)
