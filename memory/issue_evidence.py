"""What an issue text says about where to look: tracebacks, paths, modules, names, words.

Pure text analysis (no repository access), so it is cheap to test and to reuse: the
locator maps this evidence onto the files and symbols of a revision.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from .codeindex import split_identifier  # one splitting rule for issues and code

# Python: File "/site-packages/pkg/mod.py", line 12, in func
_PY_FRAME = re.compile(r'File "([^"\n]+)", line (\d+)(?:, in ([\w<>.]+))?')
# JS/TS: at fn (path/to/file.js:12:3)  |  at path/to/file.ts:12:3
_JS_FRAME = re.compile(r"at (?:([\w.$<>\[\] ]+?) )?\(?((?:[\w.@~-]+/)*[\w.@-]+\.(?:[cm]?[jt]sx?)):(\d+)(?::\d+)?\)?")
# Java: at com.acme.Foo.bar(Foo.java:42)
_JAVA_FRAME = re.compile(r"at ([\w$.]+)\.([\w$<>]+)\(([\w$]+\.(?:java|kt|scala)):(\d+)\)")
# Go / Rust / generic "path/file.ext:123"
_PATH_LINE = re.compile(r"((?:[\w.@~-]+/)+[\w.@-]+\.(?:go|rs|c|h|cc|cpp|hpp|rb|php|py|pyx|js|ts|tsx|jsx|java|kt)):(\d+)")
# A path-like mention: dir/file.ext or file.ext with a known source/doc extension.
_PATH = re.compile(
    r"(?<![\w/.-])((?:[\w.@-]+/)*[\w@-][\w.@-]*\.(?:py|pyi|pyx|js|jsx|mjs|cjs|ts|tsx|go|rs|java|kt|c|h|cc|cpp|hpp|rb|php|cfg|toml|ini|yaml|yml|json|rst|md|txt|html|css|scss|sql|sh))(?![\w])"
)
_DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*){1,8})(?![\w(])?")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An exception line: `ValueError: bad value` or `pkg.mod.Mismatch: bad value`, also behind
# pytest's `E   ` or INTERNALERROR>.
_RAISED = re.compile(
    r"^[ \t]*(?:E[ \t]+|INTERNALERROR>[ \t]*)?(?:(?:[a-z_]\w*\.)+([A-Z]\w*)|(?:[A-Za-z_]\w*\.)*"
    r"([A-Z]\w*(?:Error|Exception|Warning|Exit|Failure|Interrupt)))[ \t]*:[ \t]*(\S[^\n]{2,300})$",
    re.M,
)
# Text whose words name other things than the files an issue is about: URLs, paths
# (a traceback's site-packages folders) and a code fence's language tag.
_NOT_NAMING = re.compile(r"\w+://\S+|\S*[/\\]\S*|```[^\n]*")
_PAIR = re.compile(r"(?=\b([a-z]{2,})[ -]([a-z]{2,})\b)")
# A path inside a link to a repository host: .../blob/<ref>/pkg/mod.py#L504
_URL_PATH = re.compile(r"https?://[^\s/]+/\S+?/(?:blob|tree|raw|edit|src)/[^/\s]+/([^\s#?)\]>\"']+)")
# Environment dumps (show_versions, pip freeze, `key: 1.2.3`): dependency names and
# versions, not what the issue is about.
_ENV_LINE = re.compile(
    r"^[ \t]*[-*]?[ \t]*[\w.\-\[\]]+[ \t]*(?::|==|>=|<=|~=)?[ \t]*(?:None|v?\d[\w.+\-]*(?: ?\([^)\n]*\))?)[ \t\r]*$",
    re.M,
)
# In a code example: `import pkg as pk`, `var = Class(` and `recv.method(`
_IMPORT_AS = re.compile(r"^[ \t>.]*import ([\w.]+)(?: as (\w+))?", re.M)
_ASSIGN_CALL = re.compile(r"\b(\w+)\s*=\s*(?:[\w]+\.)*([A-Z]\w*)\(")
_METHOD_CALL = re.compile(r"\b(\w+)\.(\w+)\s*\(")
_CALL = re.compile(r"([A-Za-z_][\w.]*)\s*\(")
_BACKTICK = re.compile(r"`([^`\n]{1,200})`")
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.S)

# Words too common in issue prose (and code) to say anything about where.
STOPWORDS = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do", "does", "doing", "done", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "it's", "just", "like", "may", "me", "might", "more", "most", "my", "no", "not", "now", "of", "on", "one", "or", "our", "out", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "too", "up", "us", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you", "your", "also", "any", "all", "get", "got", "use", "used", "using", "want", "wants", "need", "needs", "see", "seems", "seem", "expected", "actual", "behavior", "behaviour", "result", "results", "error", "errors", "issue", "bug", "problem", "work", "works", "working", "instead", "still", "however", "example", "e", "g", "eg", "ie", "etc", "self", "cls", "none", "true", "false", "return", "def", "class", "import", "from"]
)


@dataclass
class Frame:
    path: str
    line: int
    function: str = ""
    depth: int = 0  # position in its traceback: later frames are closer to the failure
    block: int = 0  # which traceback of the issue it belongs to (chained ones are several)


@dataclass
class IssueEvidence:
    text: str
    body: str = ""  # the text without environment dumps (what content is matched on)
    title: str = ""
    frames: list[Frame] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    dotted: list[str] = field(default_factory=list)
    # identifier -> strength (code spans and calls weigh more than prose mentions)
    names: Counter = field(default_factory=Counter)
    words: list[str] = field(default_factory=list)
    # words that may name a file: the issue's words outside paths, URLs and fence tags,
    # plus two adjacent words written as one ("man page" -> "manpage")
    naming: set[str] = field(default_factory=set)
    # calls in the issue's code whose receiver it can tell: ("module", "xr", "merge") for
    # `xr.merge(` after `import xarray as xr`; ("type", "Dataset", "sel") for `ds.sel(`
    # after `ds = xr.Dataset(`
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    # (exception type, message) of each exception line, in order
    errors: list[tuple[str, str]] = field(default_factory=list)


def looks_like_code_name(token: str) -> bool:
    """snake_case, CamelCase, dunder or mixed names are specific; plain words are not."""
    if len(token) < 3:
        return False
    if "_" in token.strip("_") or token.startswith("__"):
        return True
    if re.search(r"[a-z][A-Z]", token) or re.match(r"[A-Z][a-z]+[A-Z]", token):
        return True
    return bool(re.match(r"[A-Z][A-Za-z0-9]+$", token)) and not token.isupper() and len(token) > 3


def message_fragments(message: str, min_chars: int = 14) -> list[str]:
    """The literal parts of an error message, longest first: the text between the values
    it quotes (`'x'`, numbers, reprs), as a source's format string would hold it.
    `Cannot cast 'a' to int64 (got 3)` -> ['Cannot cast'] is too short; `Invalid fill
    method. Expecting pad (ffill)` -> ['Invalid fill method. Expecting pad']."""
    pieces = re.split(r"'[^']*'|\"[^\"]*\"|`[^`]*`|<[^>]*>|\d+(?:\.\d+)?|[(){}\[\]=:]", message)
    out = []
    for piece in pieces:
        piece = piece.strip(" ,;.-")
        if len(piece) >= min_chars and len(piece.split()) >= 3:
            out.append(piece)
    return sorted(dict.fromkeys(out), key=len, reverse=True)


def extract_calls(code: str) -> list[tuple[str, str, str]]:
    """Method calls of a code example resolved through its imports and assignments."""
    modules = {}
    for m in _IMPORT_AS.finditer(code):
        modules[m.group(2) or m.group(1).split(".")[0]] = m.group(1)
    types = {m.group(1): m.group(2) for m in _ASSIGN_CALL.finditer(code) if m.group(1) not in modules}
    calls = []
    for m in _METHOD_CALL.finditer(code):
        receiver, member = m.group(1), m.group(2)
        if receiver in modules:
            calls.append(("module", receiver, member))
        elif receiver in types:
            calls.append(("type", types[receiver], member))
    return list(dict.fromkeys(calls))


def extract_frames(text: str) -> list[Frame]:
    frames: list[Frame] = []
    starts = [m.start() for m in re.finditer(r"Traceback \(most recent call last\)", text)]
    for m in _PY_FRAME.finditer(text):
        block = sum(1 for s in starts if s < m.start())
        frames.append(Frame(m.group(1), int(m.group(2)), m.group(3) or "", block=block))
    for m in _JAVA_FRAME.finditer(text):
        package = m.group(1).split(".")
        directory = "/".join(package[:-1])
        path = f"{directory}/{m.group(3)}" if directory else m.group(3)
        frames.append(Frame(path, int(m.group(4)), m.group(2)))
    for m in _JS_FRAME.finditer(text):
        frames.append(Frame(m.group(2), int(m.group(3)), (m.group(1) or "").strip()))
    seen = {(f.path, f.line) for f in frames}
    for m in _PATH_LINE.finditer(text):
        if (m.group(1), int(m.group(2))) not in seen:
            frames.append(Frame(m.group(1), int(m.group(2))))
    for depth, frame in enumerate(frames):
        frame.depth = depth
    return frames


def extract(text: str) -> IssueEvidence:
    ev = IssueEvidence(text=text)
    ev.title = next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]
    ev.frames = extract_frames(text)
    ev.errors = list(
        dict.fromkeys((m.group(1) or m.group(2), m.group(3).strip()) for m in _RAISED.finditer(text))
    )
    frame_paths = {f.path for f in ev.frames}
    linked = [p for p in _URL_PATH.findall(text) if "." in p.rsplit("/", 1)[-1]]
    ev.paths = list(dict.fromkeys(p for p in linked + _PATH.findall(text) if p not in frame_paths))
    ev.body = _ENV_LINE.sub("", text)

    code_parts = [m.group(1) for m in _FENCE.finditer(text)] + _BACKTICK.findall(text)
    code_text = "\n".join(code_parts)
    prose = _FENCE.sub(" ", text)

    for m in _DOTTED.finditer(text):
        dotted = m.group(1)
        if re.search(r"\.(py|js|ts|go|rs|java|md|rst|txt|html|org|com|io)$", dotted):
            continue
        if dotted.count(".") >= 1 and not re.match(r"^\d", dotted):
            ev.dotted.append(dotted)
    ev.dotted = list(dict.fromkeys(ev.dotted))

    ev.calls = extract_calls(code_text + "\n" + "\n".join(re.findall(r"^[ \t]*>>> ?(.*)$", text, re.M)))

    names: Counter = Counter()
    for token in _IDENT.findall(code_text):
        if len(token) >= 3 and token.lower() not in STOPWORDS:
            names[token] += 2 if looks_like_code_name(token) else 1
    for m in _CALL.finditer(text):
        last = m.group(1).split(".")[-1]
        if len(last) >= 3 and last.lower() not in STOPWORDS:
            names[last] += 2
    for token in _IDENT.findall(prose):
        if looks_like_code_name(token):
            names[token] += 1
    for dotted in ev.dotted:
        for part in dotted.split("."):
            if looks_like_code_name(part) or len(part) > 3:
                names[part] += 1
    for frame in ev.frames:
        if frame.function and frame.function.isidentifier():
            names[frame.function] += 1
    for token in _IDENT.findall(ev.title):
        if token in names or looks_like_code_name(token):
            names[token] += 2
    ev.names = names

    words: list[str] = []
    for token in _IDENT.findall(ev.body):
        for part in split_identifier(token):
            if len(part) >= 2 and part not in STOPWORDS and not part.isdigit():
                words.append(part)
    ev.words = words
    naming_text = _NOT_NAMING.sub(" ", ev.body)
    naming = {p for t in _IDENT.findall(naming_text) for p in split_identifier(t) if len(p) >= 2}
    naming |= {t.lower() for t in _IDENT.findall(naming_text)}
    pairs = _PAIR.findall(naming_text.lower())
    naming |= {a + b for a, b in pairs if a not in STOPWORDS and b not in STOPWORDS}
    ev.naming = naming - STOPWORDS
    return ev
