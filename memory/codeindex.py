"""Tree-sitter symbols and word bags for every file at a revision, cached by blob sha.

`CodeIndex(repo, cache_dir).index(rev)` lists the files at `rev` from git objects, looks
each (blob sha, language) up in `cache_dir/codeindex.sqlite` and parses only the blobs it
has not seen, so indexing a neighbouring revision parses only the files that changed.
The cache is one SQLite table in WAL mode (safe for concurrent processes); each row holds
zlib-compressed JSON payloads in separate columns (symbols, tokens, chunks), so a repo map
decodes only the symbols. A bump of INDEX_VERSION switches to a fresh table.

Each file is also split into chunks (`FileSymbols.chunks`): one per top-level definition and
per definition one level down (methods), one "<module>" chunk for the remaining top-level
code, or ~60-line windows for text files. Each chunk has its own word bag, so a search can
score the function that matches an issue instead of the whole file.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evoagent.memory import gittree, languages

INDEX_VERSION = 3  # 3: chunks column (2 held a pre-release chunk layout; not reused)
CACHE_FILE = "codeindex.sqlite"
# Files above this size, or with an average line longer than MAX_AVG_LINE (minified,
# generated data), are not indexed at all.
MAX_FILE_BYTES = 500_000
MAX_AVG_LINE = 2000
# Per-file caps keep payloads small; the most frequent entries are kept.
MAX_TOKENS = 1500
MAX_REFERENCES = 1500
SIGNATURE_CHARS = 200
# Chunks: distinct tokens kept per chunk, and window size for text files (a trailing
# window shorter than TEXT_CHUNK_MIN_LINES joins the previous one).
MAX_CHUNK_TOKENS = 400
TEXT_CHUNK_LINES = 60
TEXT_CHUNK_MIN_LINES = 20
MODULE_CHUNK = "<module>"
# Blobs read and parsed per batch: bounds memory and saves progress to the cache.
BATCH = 500

_WORD = re.compile(r"[^\W\d]\w*")
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")
# Lines directly above a definition that belong to it: decorators, annotations, Rust
# attributes and comments (#, //, /* ... */ and the " * " lines of a doc comment).
_LEADING = re.compile(r"[ \t]*(?:@|#|//|/\*|\*)")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words so common in code and prose that they only cost space.
STOPWORDS = _words(
    "the and for not with this that from are was were has have had but you your can will "
    "all any its into than then them they there these those what when which while who def "
    "self cls return import none true false elif else pass null nil var let const func "
    "function new end int str bool void public private static final package use mut pub "
    "impl fn struct type interface class if in is of or to be an as at by it on no do"
)


@dataclass(slots=True)
class Definition:
    name: str
    kind: str  # class function method interface struct enum trait type module macro constant impl
    line: int  # 1-based, first line of the definition
    end_line: int
    container: str | None = None  # enclosing definition (class for a method, impl type in Rust)
    signature: str = ""  # the definition's first source line, stripped
    depth: int = 0  # nesting level inside other definitions of the same file


@dataclass(slots=True)
class Chunk:
    """A part of a file with its own word bag: a definition, the module's top-level code
    (name MODULE_CHUNK, kind "module"), or a window of a text file (kind "text").

    `start_line`/`end_line` (1-based, inclusive) span a definition including the decorators
    and comments directly above it; for the module chunk they span its first to last
    non-blank line. `tokens` (token_bag normalization, at most MAX_CHUNK_TOKENS) count only
    the lines the chunk owns: a class owns its header, docstring and attributes but not
    its methods' lines, which are the methods' chunks. So every line of a file is counted
    in exactly one chunk, and the chunks' uncapped bags add up to the file's bag.
    """

    name: str
    kind: str
    start_line: int
    end_line: int
    tokens: Counter[str] = field(default_factory=Counter)


class FileSymbols:
    """What one file (blob) defines, references and talks about.

    `tokens` and `chunks` are decoded from the cache on first access: a repo map never
    needs them, and they are most of a payload.
    """

    __slots__ = (
        "lang",
        "definitions",
        "references",
        "_tokens",
        "_tokens_payload",
        "_chunks",
        "_chunks_payload",
    )

    def __init__(
        self,
        lang: str,  # a languages.LANGUAGES name, or "text" for a words-only file
        definitions: list[Definition] | None = None,
        references: Counter[str] | None = None,
        tokens: Counter[str] | None = None,
        chunks: list[Chunk] | None = None,
        *,
        tokens_payload: bytes | None = None,
        chunks_payload: bytes | None = None,
    ):
        self.lang = lang
        self.definitions = definitions if definitions is not None else []
        self.references = references if references is not None else Counter()
        if tokens is None and not tokens_payload:
            tokens = Counter()
        self._tokens = tokens  # None until decoded from _tokens_payload
        self._tokens_payload = tokens_payload
        if chunks is None and not chunks_payload:
            chunks = []
        self._chunks = chunks  # None until decoded from _chunks_payload
        self._chunks_payload = chunks_payload

    @property
    def tokens(self) -> Counter[str]:
        """Normalized word -> count (see token_bag)."""
        if self._tokens is None:
            self._tokens = Counter(_unpack(self._tokens_payload or b""))
            self._tokens_payload = None
        return self._tokens

    @property
    def chunks(self) -> list[Chunk]:
        """The file's chunks: the module chunk (if it has words) first, then definitions in
        source order; or the line windows of a text file."""
        if self._chunks is None:
            rows = _unpack(self._chunks_payload) if self._chunks_payload else []
            self._chunks = [Chunk(n, k, s, e, Counter(t)) for n, k, s, e, t in rows]
            self._chunks_payload = None
        return self._chunks

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileSymbols):
            return NotImplemented
        return (self.lang, self.definitions, self.references, self.tokens, self.chunks) == (
            other.lang,
            other.definitions,
            other.references,
            other.tokens,
            other.chunks,
        )

    def __repr__(self) -> str:
        return (
            f"FileSymbols(lang={self.lang!r}, definitions={len(self.definitions)},"
            f" references={len(self.references)})"
        )

    def to_payload(self) -> tuple[bytes, bytes, bytes]:
        """(symbols, tokens, chunks) as three compressed JSON documents."""
        rows = [
            [d.name, d.kind, d.line, d.end_line, d.container, d.signature, d.depth]
            for d in self.definitions
        ]
        chunks = [[c.name, c.kind, c.start_line, c.end_line, c.tokens] for c in self.chunks]
        return _pack({"d": rows, "r": self.references}), _pack(self.tokens), _pack(chunks)

    @classmethod
    def from_payload(
        cls, lang: str, symbols: bytes, tokens: bytes, chunks: bytes | None = None
    ) -> FileSymbols:
        doc = _unpack(symbols)
        return cls(
            lang,
            [Definition(*row) for row in doc["d"]],
            Counter(doc["r"]),
            tokens_payload=tokens,
            chunks_payload=chunks,
        )


def _pack(doc: object) -> bytes:
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode())


def _unpack(payload: bytes):
    return json.loads(zlib.decompress(payload)) if payload else {}


def split_identifier(word: str) -> list[str]:
    """Lowercase parts of a snake_case / camelCase identifier (`parseHTTPResponse_v2` ->
    parse, http, response, v2)."""
    return [part.lower() for part in _PART.findall(word)]


def token_bag(text: str, cap: int = MAX_TOKENS) -> Counter[str]:
    """Normalized words of a file: each identifier or word lowercased, plus its parts."""
    return _bag(Counter(_WORD.findall(text)), cap)


def _terms(word: str) -> tuple[str, ...]:
    """The bag entries one occurrence of `word` adds: itself lowercased, then its parts."""
    low = word.lower()
    terms = [low] if len(low) > 1 and low not in STOPWORDS else []
    parts = _PART.findall(word)
    if len(parts) > 1 or (parts and parts[0] != word):
        for part in parts:
            part = part.lower()
            if len(part) > 1 and part != low and part not in STOPWORDS:
                terms.append(part)
    return tuple(terms)


# word -> _terms(word), shared by all files (identifiers repeat across a repository);
# cleared when it reaches _TERMS_MAX entries.
_TERMS: dict[str, tuple[str, ...]] = {}
_TERMS_MAX = 300_000


def _bag(words: Counter[str], cap: int) -> Counter[str]:
    """token_bag of already-counted raw words."""
    if len(_TERMS) > _TERMS_MAX:
        _TERMS.clear()
    memo = _TERMS
    bag: dict[str, int] = {}  # a plain dict: Counter's __missing__ is slow here
    get = bag.get
    for word, count in words.items():
        terms = memo.get(word)
        if terms is None:
            terms = memo[word] = _terms(word)
        for term in terms:
            bag[term] = get(term, 0) + count
    if len(bag) > cap:
        return Counter(dict(Counter(bag).most_common(cap)))
    return Counter(bag)


def is_indexable(data: bytes) -> bool:
    """False for binary, minified or oversized content."""
    if len(data) > MAX_FILE_BYTES or b"\0" in data[:8192]:
        return False
    return len(data) / (data.count(b"\n") + 1) <= MAX_AVG_LINE


def parse_blob(lang: str, data: bytes) -> FileSymbols | None:
    """Symbols and tokens of one file's bytes; None when the content is not indexable.

    Tree-sitter recovers from syntax errors, and undecodable bytes are replaced, so any
    input yields a result.
    """
    if not is_indexable(data):
        return None
    lines = data.decode("utf-8", "replace").split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline does not start a line
    if lang not in languages.LANGUAGES:
        tokens, chunks = _chunk_bags(lines, *_text_spans(len(lines)))
        return FileSymbols("text", tokens=tokens, chunks=chunks)
    from tree_sitter import QueryCursor

    root = languages.get_parser(lang).parse(data).root_node
    definitions, name_starts, starts = _definitions(lang, root, data)
    tokens, chunks = _chunk_bags(lines, *_definition_spans(definitions, starts, lines))
    refs: Counter[str] = Counter()
    captures = QueryCursor(languages.reference_query(lang)).captures(root)
    for node in captures.get("ref", ()):
        start = node.start_byte
        if start not in name_starts:
            refs[data[start : node.end_byte]] += 1
    references: Counter[str] = Counter()
    for raw, count in refs.most_common(MAX_REFERENCES):
        references[raw.decode("utf-8", "replace")] += count
    return FileSymbols(lang, definitions, references, tokens, chunks)


# A chunk span: (name, kind, first line, last line), 1-based inclusive.
_Span = tuple[str, str, int, int]


def _text_spans(n_lines: int) -> tuple[list[_Span], list[int]]:
    """Windows of TEXT_CHUNK_LINES lines, and the window owning each line."""
    starts = list(range(0, n_lines, TEXT_CHUNK_LINES))
    if len(starts) > 1 and n_lines - starts[-1] < TEXT_CHUNK_MIN_LINES:
        starts.pop()
    spans: list[_Span] = []
    owner: list[int] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n_lines
        spans.append((f"lines {start + 1}-{end}", "text", start + 1, end))
        owner += [i] * (end - start)
    return spans, owner


def _definition_spans(
    definitions: list[Definition], starts: list[int], lines: list[str]
) -> tuple[list[_Span], list[int]]:
    """Spans of the module chunk (index 0) and of every definition at depth 0 or 1, and
    the span owning each line: the innermost one covering it, so deeper definitions belong
    to their depth-1 ancestor and a class keeps only the lines outside its methods.
    A span starts at `starts` (decorators included), extended up over the comment and
    annotation lines directly above. Constants are not chunks: they are module lines."""
    n = len(lines)
    owner = [0] * n
    spans: list[_Span] = [(MODULE_CHUNK, "module", 1, n)]
    # Definitions come in source order, containers before their contents, so painting
    # each one's lines over its container's leaves every line to the innermost.
    for d, first in zip(definitions, starts, strict=True):
        if d.depth > 1 or d.kind == "constant" or d.line > n:
            continue
        start, end = first - 1, min(d.end_line, n)  # 0-based, end exclusive
        parent = owner[start]
        while start > 0 and owner[start - 1] == parent and _LEADING.match(lines[start - 1]):
            start -= 1
        owner[start:end] = [len(spans)] * (end - start)
        spans.append((d.name, d.kind, start + 1, end))
    return spans, owner


def _chunk_bags(
    lines: list[str], spans: list[_Span], owner: list[int]
) -> tuple[Counter[str], list[Chunk]]:
    """The file's token bag and its chunks. Each run of lines with one owner is scanned
    once; the file bag is built from the same words, so it equals token_bag(text)."""
    n = len(lines)
    cuts = {0, n}
    for _, _, start, end in spans:
        cuts.add(min(start - 1, n))
        cuts.add(min(end, n))
    file_words: Counter[str] = Counter()
    chunk_words: list[Counter[str]] = [Counter() for _ in spans]
    module_runs: list[tuple[int, int]] = []  # [a, b) runs of module lines with words
    bounds = sorted(cuts)
    for a, b in zip(bounds, bounds[1:], strict=False):
        words = _WORD.findall("\n".join(lines[a:b]))
        file_words.update(words)
        chunk_words[owner[a]].update(words)
        if words and spans[owner[a]][0] == MODULE_CHUNK:
            module_runs.append((a, b))
    chunks: list[Chunk] = []
    for i, (name, kind, start, end) in enumerate(spans):
        tokens = _bag(chunk_words[i], MAX_CHUNK_TOKENS)
        if name == MODULE_CHUNK or kind == "text":
            if not tokens:
                continue  # blank or punctuation-only: nothing to score
            if name == MODULE_CHUNK:
                start, end = _nonblank_range(lines, module_runs[0][0], module_runs[-1][1])
        chunks.append(Chunk(name, kind, start, end, tokens))
    return _bag(file_words, MAX_TOKENS), chunks


def _nonblank_range(lines: list[str], a: int, b: int) -> tuple[int, int]:
    """1-based first and last non-blank line of lines[a:b]."""
    b -= 1
    while a < b and not lines[a].strip():
        a += 1
    while b > a and not lines[b].strip():
        b -= 1
    return a + 1, b + 1


def _definitions(lang: str, root: Any, data: bytes) -> tuple[list[Definition], set[int], list[int]]:
    """Definitions in source order (containers first), the start bytes of their names,
    and each definition's first line including Python decorators (for its chunk)."""
    from tree_sitter import QueryCursor

    # One definition per node; when several patterns match the same node (a Go struct
    # also matches the generic type pattern) the earlier, more specific pattern wins.
    found: dict[tuple[int, int], tuple[int, str, Any, Any, Any]] = {}
    for index, caps in QueryCursor(languages.definition_query(lang)).matches(root):
        tag = next((k for k in caps if k.startswith("def.")), None)
        if tag is None or "name" not in caps:
            continue
        node = caps[tag][0]
        key = (node.start_byte, node.end_byte)
        if key in found and found[key][0] <= index:
            continue
        receiver = caps.get("receiver", [None])[0]
        found[key] = (index, tag[4:], caps["name"][0], node, receiver)

    lines = data.split(b"\n")
    definitions: list[Definition] = []
    name_starts: set[int] = set()
    starts: list[int] = []
    stack: list[tuple[int, str, str, int]] = []  # (end_byte, name, kind, depth)
    for (_, end), (_, kind, name_node, node, receiver) in sorted(
        found.items(), key=lambda item: (item[0][0], -item[0][1])
    ):
        name = data[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
        if kind == "impl":
            name = _type_name(name)
        elif lang == "python" and kind == "constant" and not name.isupper():
            continue
        else:
            name_starts.add(name_node.start_byte)
        while stack and stack[-1][0] < end:
            stack.pop()
        container, depth = (stack[-1][1], stack[-1][3] + 1) if stack else (None, 0)
        if receiver is not None:
            container = _receiver_type(data[receiver.start_byte : receiver.end_byte])
        if kind == "function" and stack and stack[-1][2] in languages.CLASS_LIKE:
            kind = "method"
        row = node.start_point.row
        signature = lines[row].decode("utf-8", "replace").strip() if row < len(lines) else ""
        definitions.append(
            Definition(
                name,
                kind,
                row + 1,
                node.end_point.row + 1,
                container,
                signature[:SIGNATURE_CHARS],
                depth,
            )
        )
        parent = node.parent if lang == "python" else None
        decorated = parent is not None and parent.type == "decorated_definition"
        starts.append((parent.start_point.row if decorated else row) + 1)
        stack.append((end, name, kind, depth))
    return definitions, name_starts, starts


def _type_name(text: str) -> str:
    """`Vec<T>` -> Vec, `fmt::Display` -> Display."""
    return text.split("<", 1)[0].split("::")[-1].strip() or text


def _receiver_type(raw: bytes) -> str | None:
    """Go receiver `(s *Server[T])` -> Server."""
    words = raw.decode("utf-8", "replace").strip("() \t\n").split()
    if not words:
        return None
    return words[-1].lstrip("*").split("[", 1)[0] or None


@dataclass
class IndexStats:
    files: int = 0  # files in the index
    cached: int = 0  # blobs found in the cache
    parsed: int = 0  # blobs read and parsed this time
    seconds: float = 0.0


class RevisionIndex:
    """Symbols of every indexed file at one commit."""

    def __init__(self, rev: str, commit: str, files: dict[str, FileSymbols], stats: IndexStats):
        self.rev = rev
        self.commit = commit
        self.files = files
        self.stats = stats
        self._defs: dict[str, list[tuple[str, Definition]]] | None = None
        self._refs: dict[str, list[tuple[str, int]]] | None = None

    def definitions_named(self, name: str) -> list[tuple[str, Definition]]:
        """(path, definition) for every definition called `name` (Rust impls excluded)."""
        return self.definitions_by_name().get(name, [])

    def definitions_by_name(self) -> dict[str, list[tuple[str, Definition]]]:
        """Inverted map name -> (path, definition), built on first use."""
        if self._defs is None:
            defs: dict[str, list[tuple[str, Definition]]] = {}
            for path, symbols in self.files.items():
                for d in symbols.definitions:
                    if d.kind != "impl":
                        defs.setdefault(d.name, []).append((path, d))
            self._defs = defs
        return self._defs

    def chunks_for(self, paths: Iterable[str]) -> list[tuple[str, Chunk]]:
        """(path, chunk) for every chunk of the given indexed paths, in the paths' order;
        paths not in the index are skipped."""
        return [
            (path, chunk)
            for path in paths
            if (symbols := self.files.get(path)) is not None
            for chunk in symbols.chunks
        ]

    def referencing(self, name: str) -> list[tuple[str, int]]:
        """(path, count) of files that use `name`, most uses first."""
        if self._refs is None:
            refs: dict[str, list[tuple[str, int]]] = {}
            for path, symbols in self.files.items():
                for ref, count in symbols.references.items():
                    refs.setdefault(ref, []).append((path, count))
            for entries in refs.values():
                entries.sort(key=lambda e: (-e[1], e[0]))
            self._refs = refs
        return self._refs.get(name, [])


class _BlobCache:
    """(blob sha, language) -> FileSymbols, or None for content judged not indexable.

    A row with NULL payloads records a blob judged not indexable (binary, minified).
    """

    def __init__(self, path: Path):
        self.path = path
        self.table = f"symbols_v{INDEX_VERSION}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} (sha TEXT NOT NULL, lang TEXT NOT NULL,"
                " symbols BLOB, tokens BLOB, chunks BLOB, PRIMARY KEY (sha, lang)) WITHOUT ROWID"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def get(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], FileSymbols | None]:
        wanted = set(keys)
        shas = sorted({sha for sha, _ in wanted})
        found: dict[tuple[str, str], FileSymbols | None] = {}
        db = self._connect()
        try:
            for i in range(0, len(shas), 900):
                chunk = shas[i : i + 900]
                rows = db.execute(
                    f"SELECT sha, lang, symbols, tokens, chunks FROM {self.table}"
                    f" WHERE sha IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for sha, lang, symbols, tokens, chunks in rows:
                    if (sha, lang) in wanted:
                        found[sha, lang] = (
                            None
                            if symbols is None
                            else FileSymbols.from_payload(lang, symbols, tokens, chunks)
                        )
        finally:
            db.close()
        return found

    def put(self, items: dict[tuple[str, str], FileSymbols | None]) -> None:
        if not items:
            return
        rows = [
            (sha, lang, *((None, None, None) if sym is None else sym.to_payload()))
            for (sha, lang), sym in items.items()
        ]
        db = self._connect()
        try:
            with db:
                db.executemany(
                    f"INSERT OR REPLACE INTO {self.table} (sha, lang, symbols, tokens, chunks)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        finally:
            db.close()


class CodeIndex:
    """Indexes revisions of one repository (a checkout or a bare git dir)."""

    def __init__(self, repo_path: str | Path, cache_dir: str | Path):
        self.repo_path = Path(repo_path)
        self.cache = _BlobCache(Path(cache_dir) / CACHE_FILE)
        self.parse_count = 0  # blobs parsed by this instance, over all index() calls

    def index(self, rev: str = "HEAD") -> RevisionIndex:
        started = time.perf_counter()
        commit = gittree.resolve(self.repo_path, rev)
        wanted: list[tuple[str, tuple[str, str]]] = []
        for entry in gittree.list_files(self.repo_path, commit):
            kind = languages.kind_for_path(entry.path)
            if kind is not None and entry.size <= MAX_FILE_BYTES:
                wanted.append((entry.path, (entry.sha, kind)))
        keys = {key for _, key in wanted}
        symbols = self.cache.get(keys)
        stats = IndexStats(cached=len(symbols))
        missing = sorted(keys - symbols.keys())
        for i in range(0, len(missing), BATCH):
            batch = missing[i : i + BATCH]
            blobs = gittree.read_blobs(
                self.repo_path, {sha for sha, _ in batch}, max_bytes=MAX_FILE_BYTES
            )
            parsed: dict[tuple[str, str], FileSymbols | None] = {}
            for sha, kind in batch:
                if sha in blobs:  # an unreadable object is retried next time, not cached
                    parsed[sha, kind] = parse_blob(kind, blobs[sha])
            self.parse_count += len(parsed)
            stats.parsed += len(parsed)
            self.cache.put(parsed)
            symbols.update(parsed)
        files = {path: sym for path, key in wanted if (sym := symbols.get(key)) is not None}
        stats.files = len(files)
        stats.seconds = time.perf_counter() - started
        return RevisionIndex(rev, commit, files, stats)
