"""Tree-sitter symbols and word bags for every file at a revision, cached by blob sha.

`CodeIndex(repo, cache_dir).index(rev)` lists the files at `rev` from git objects, looks
each (blob sha, language) up in `cache_dir/codeindex.sqlite` and parses only the blobs it
has not seen, so indexing a neighbouring revision parses only the files that changed.
The cache is one SQLite table in WAL mode (safe for concurrent processes); each row holds a
zlib-compressed JSON payload. A bump of INDEX_VERSION switches to a fresh table.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evoagent.memory import gittree, languages

INDEX_VERSION = 1
CACHE_FILE = "codeindex.sqlite"
# Files above this size, or with an average line longer than MAX_AVG_LINE (minified,
# generated data), are not indexed at all.
MAX_FILE_BYTES = 500_000
MAX_AVG_LINE = 2000
# Per-file caps keep payloads small; the most frequent entries are kept.
MAX_TOKENS = 1500
MAX_REFERENCES = 1500
SIGNATURE_CHARS = 200
# Blobs read and parsed per batch: bounds memory and saves progress to the cache.
BATCH = 500

_WORD = re.compile(r"[^\W\d]\w*")
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")


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


class FileSymbols:
    """What one file (blob) defines, references and talks about.

    `tokens` is decoded from the cache on first access: a repo map never needs it, and it
    is most of a payload.
    """

    __slots__ = ("lang", "definitions", "references", "_tokens", "_tokens_payload")

    def __init__(
        self,
        lang: str,  # a languages.LANGUAGES name, or "text" for a words-only file
        definitions: list[Definition] | None = None,
        references: Counter[str] | None = None,
        tokens: Counter[str] | None = None,
        *,
        tokens_payload: bytes | None = None,
    ):
        self.lang = lang
        self.definitions = definitions if definitions is not None else []
        self.references = references if references is not None else Counter()
        if tokens is None and not tokens_payload:
            tokens = Counter()
        self._tokens = tokens  # None until decoded from _tokens_payload
        self._tokens_payload = tokens_payload

    @property
    def tokens(self) -> Counter[str]:
        """Normalized word -> count (see token_bag)."""
        if self._tokens is None:
            self._tokens = Counter(_unpack(self._tokens_payload or b""))
            self._tokens_payload = None
        return self._tokens

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileSymbols):
            return NotImplemented
        return (self.lang, self.definitions, self.references, self.tokens) == (
            other.lang,
            other.definitions,
            other.references,
            other.tokens,
        )

    def __repr__(self) -> str:
        return (
            f"FileSymbols(lang={self.lang!r}, definitions={len(self.definitions)},"
            f" references={len(self.references)})"
        )

    def to_payload(self) -> tuple[bytes, bytes]:
        """(symbols, tokens) as two compressed JSON documents."""
        rows = [
            [d.name, d.kind, d.line, d.end_line, d.container, d.signature, d.depth]
            for d in self.definitions
        ]
        return _pack({"d": rows, "r": self.references}), _pack(self.tokens)

    @classmethod
    def from_payload(cls, lang: str, symbols: bytes, tokens: bytes) -> FileSymbols:
        doc = _unpack(symbols)
        return cls(
            lang,
            [Definition(*row) for row in doc["d"]],
            Counter(doc["r"]),
            tokens_payload=tokens,
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
    bag: Counter[str] = Counter()
    for word, count in Counter(_WORD.findall(text)).items():
        low = word.lower()
        if len(low) > 1 and low not in STOPWORDS:
            bag[low] += count
        parts = _PART.findall(word)
        if len(parts) > 1 or (parts and parts[0] != word):
            for part in parts:
                part = part.lower()
                if len(part) > 1 and part != low and part not in STOPWORDS:
                    bag[part] += count
    if len(bag) > cap:
        bag = Counter(dict(bag.most_common(cap)))
    return bag


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
    tokens = token_bag(data.decode("utf-8", "replace"))
    if lang not in languages.LANGUAGES:
        return FileSymbols("text", tokens=tokens)
    from tree_sitter import QueryCursor

    root = languages.get_parser(lang).parse(data).root_node
    definitions, name_starts = _definitions(lang, root, data)
    refs: Counter[str] = Counter()
    captures = QueryCursor(languages.reference_query(lang)).captures(root)
    for node in captures.get("ref", ()):
        start = node.start_byte
        if start not in name_starts:
            refs[data[start : node.end_byte]] += 1
    references: Counter[str] = Counter()
    for raw, count in refs.most_common(MAX_REFERENCES):
        references[raw.decode("utf-8", "replace")] += count
    return FileSymbols(lang, definitions, references, tokens)


def _definitions(lang: str, root: Any, data: bytes) -> tuple[list[Definition], set[int]]:
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
        stack.append((end, name, kind, depth))
    return definitions, name_starts


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
                " symbols BLOB, tokens BLOB, PRIMARY KEY (sha, lang)) WITHOUT ROWID"
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
                    f"SELECT sha, lang, symbols, tokens FROM {self.table}"
                    f" WHERE sha IN ({','.join('?' * len(chunk))})",
                    chunk,
                )
                for sha, lang, symbols, tokens in rows:
                    if (sha, lang) in wanted:
                        found[sha, lang] = (
                            None
                            if symbols is None
                            else FileSymbols.from_payload(lang, symbols, tokens)
                        )
        finally:
            db.close()
        return found

    def put(self, items: dict[tuple[str, str], FileSymbols | None]) -> None:
        if not items:
            return
        rows = [
            (sha, lang, *((None, None) if sym is None else sym.to_payload()))
            for (sha, lang), sym in items.items()
        ]
        db = self._connect()
        try:
            with db:
                db.executemany(
                    f"INSERT OR REPLACE INTO {self.table} (sha, lang, symbols, tokens) VALUES (?, ?, ?, ?)",
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
