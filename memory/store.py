"""The one module that talks to LanceDB.

The store lives at `.evoagent/memory` (or any URI LanceDB accepts: a team can share one
memory on object storage). Tables: `memories` (one row per commit) and `_meta`
(applied migrations and the embedding spec the vectors were made with).

Writes are append-only batches; each LanceDB append is atomic, so an interrupted mine
leaves a consistent table and the next run resumes from the shas already stored.
Concurrent writers on a local store serialise on a file lock; `add` also skips shas
that another writer stored first, so nothing is duplicated.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from .embeddings import Embedder
from .errors import MemoryUserError
from .records import Memory

MEMORIES = "memories"
META = "_meta"
# Compact after this many appends since the last compaction, so versions and small
# fragments do not pile up across many incremental mines.
COMPACT_EVERY_VERSIONS = 20


class StoreError(MemoryUserError, RuntimeError):
    """A store problem a user can act on (bad URI, embedding mismatch)."""


def _memory_schema(ndims: int | None):
    import pyarrow as pa

    file_type = pa.struct(
        [
            ("path", pa.string()),
            ("old_path", pa.string()),
            ("change", pa.string()),
            ("added", pa.int32()),
            ("removed", pa.int32()),
            ("binary", pa.bool_()),
        ]
    )
    fields = [
        ("sha", pa.string()),
        ("parents", pa.list_(pa.string())),
        ("author", pa.string()),
        ("author_email", pa.string()),
        ("authored_at", pa.int64()),
        ("committed_at", pa.int64()),
        ("subject", pa.string()),
        ("message", pa.string()),
        ("issue_refs", pa.list_(pa.string())),
        ("files", pa.list_(file_type)),
        ("symbols", pa.list_(pa.string())),
        ("tests_touched", pa.list_(pa.string())),
        ("diff_excerpt", pa.string()),
        ("is_merge", pa.bool_()),
        ("keywords", pa.list_(pa.string())),
        ("problem", pa.string()),
        ("root_cause", pa.string()),
        ("solution", pa.string()),
        ("text", pa.string()),
    ]
    if ndims:
        fields.append(("vector", pa.list_(pa.float32(), ndims)))
    return pa.schema(fields)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class MemoryStore:
    """Commit memories in LanceDB, with a full-text index and optional vectors."""

    def __init__(self, uri: str | Path, embedder: Embedder | None = None):
        self.uri = str(uri)
        self.embedder = embedder
        self._db = None
        self._table = None
        # The shas `add` checks against: (table version they were read at, shas). Loaded
        # once, extended by each add; read again when the table moved on without us.
        self._known: tuple[int, set[str]] | None = None
        self._file_history: list[tuple[str, list[str], str]] | None = None

    # -- connection -------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri or self.uri.startswith("file://")

    @property
    def path(self) -> str:
        return self.uri

    def _connect(self):
        if self._db is None:
            import lancedb

            if self.is_local:
                Path(self.uri.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
            try:
                self._db = lancedb.connect(self.uri)
            except Exception as exc:  # LanceDB raises many types for a bad URI
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise StoreError(f"cannot open memory store {self.uri}: {first}") from exc
        return self._db

    def _table_names(self) -> list[str]:
        db = self._connect()
        names = db.list_tables()
        return list(getattr(names, "tables", names))

    def open_table(self, name: str, schema=None):
        """Another table of this database (knowledge lives beside the memories): None when
        it does not exist and no schema is given to create it with."""
        db = self._connect()
        if name in self._table_names():
            return db.open_table(name)
        return None if schema is None else db.create_table(name, schema=schema, exist_ok=True)

    def get_meta(self, key: str) -> str | None:
        return self._get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self._set_meta(key, value)

    def table(self, create: bool = False):
        """The memories table; None when it does not exist yet and create is False."""
        if self._table is not None:
            return self._table
        db = self._connect()
        if MEMORIES in self._table_names():
            self._table = db.open_table(MEMORIES)
            self._check_embedding()
        elif create:
            ndims = self.embedder.ndims() if self.embedder else None
            self._table = db.create_table(MEMORIES, schema=_memory_schema(ndims), exist_ok=True)
            self._set_meta("embedding", self.embedder.spec if self.embedder else "none")
        return self._table

    def _meta_table(self):
        import pyarrow as pa

        db = self._connect()
        schema = pa.schema([("key", pa.string()), ("value", pa.string())])
        return db.create_table(META, schema=schema, exist_ok=True)

    def _get_meta(self, key: str) -> str | None:
        if META not in self._table_names():
            return None
        rows = self._meta_table().search().where(f"key = {_quote(key)}").to_list()
        return rows[-1]["value"] if rows else None

    def _set_meta(self, key: str, value: str) -> None:
        table = self._meta_table()
        table.delete(f"key = {_quote(key)}")
        table.add([{"key": key, "value": value}])

    def _check_embedding(self) -> None:
        stored = self._get_meta("embedding") or "none"
        wanted = self.embedder.spec if self.embedder else None
        if wanted and stored != wanted:
            raise StoreError(
                f"memory store was built with embedding {stored!r}, not {wanted!r}: "
                "re-mine into a new --store or keep the old embedding"
            )
        if wanted is None and stored != "none":
            # Searching a vector store without its embedder is fine: BM25 only.
            return

    @property
    def has_vectors(self) -> bool:
        table = self.table()
        return table is not None and "vector" in table.schema.names

    # -- writes -----------------------------------------------------------------------

    @contextlib.contextmanager
    def write_lock(self) -> Iterator[None]:
        """Cross-process exclusive lock for writers of a local store (no-op remotely)."""
        if not self.is_local:
            yield
            return
        root = Path(self.uri.removeprefix("file://"))
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".write.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def known_shas(self) -> set[str]:
        """Every stored sha, read now (a writer calls this once it holds write_lock)."""
        table = self.table()
        if table is None:
            return set()
        version = table.version
        shas = set(self._scan(["sha"]).column("sha").to_pylist())
        self._known = (version, shas)
        return set(shas)

    def _known_for_add(self, table) -> set[str]:
        if self._known is None or self._known[0] != table.version:
            self.known_shas()
        return self._known[1]

    def _scan(self, columns: list[str]):
        """Selected columns of every row as an Arrow table (no limit, no scoring)."""
        table = self.table()
        return table.search().select(columns).limit(table.count_rows() or 1).to_arrow()

    def add(self, memories: list[Memory]) -> int:
        """Append memories whose sha is not stored yet; returns how many were added."""
        if not memories:
            return 0
        table = self.table(create=True)
        known = self._known_for_add(table)
        fresh: dict[str, Memory] = {}
        for memory in memories:
            if memory.sha not in known:
                fresh.setdefault(memory.sha, memory)
        if not fresh:
            return 0
        rows = [m.to_row() for m in fresh.values()]
        if self.has_vectors:
            if self.embedder is None:
                raise StoreError("this store has vectors: configure its embedding to add to it")
            vectors = self.embedder.embed_documents([r["text"][:8000] for r in rows])
            for row, vector in zip(rows, vectors, strict=True):
                row["vector"] = vector
        import pyarrow as pa

        table.add(pa.Table.from_pylist(rows, schema=table.schema))
        known.update(fresh)
        self._known = (table.version, known)
        self._file_history = None
        return len(rows)

    def finish_write(self) -> None:
        """Bring the full-text index up to date and compact old versions now and then."""
        table = self.table()
        if table is None:
            return
        if not self._has_fts_index(table):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table.create_fts_index("text", replace=True, with_position=False)
            self._set_meta("compacted_at_version", str(table.version))
            return
        last = int(self._get_meta("compacted_at_version") or 0)
        if table.version - last >= COMPACT_EVERY_VERSIONS:
            # Keep recent versions: a reader (recall, the app) may still be on one.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table.optimize(cleanup_older_than=timedelta(minutes=10))
            self._set_meta("compacted_at_version", str(table.version))
        else:
            # Index only the rows appended since the last run (cheap, incremental).
            table.optimize()

    @staticmethod
    def _has_fts_index(table) -> bool:
        return any(getattr(ix, "index_type", "") == "FTS" for ix in table.list_indices())

    # -- reads ------------------------------------------------------------------------

    def count(self) -> int:
        table = self.table()
        return 0 if table is None else table.count_rows()

    def get(self, sha: str) -> Memory | None:
        table = self.table()
        if table is None or not sha:
            return None
        clause = f"sha = {_quote(sha)}" if len(sha) == 40 else f"sha LIKE {_quote(sha + '%')}"
        rows = table.search().where(clause).limit(2).to_list()
        return Memory.from_row(rows[0]) if len(rows) == 1 else None

    def file_history(self) -> list[tuple[str, list[str], str]]:
        """(sha, changed paths, subject) of every memory, oldest first, loaded once per
        store object (locate builds per-file histories from it)."""
        if self._file_history is None:
            rows = self.all_rows(["sha", "files", "subject", "committed_at"])
            rows.sort(key=lambda r: r["committed_at"])
            self._file_history = [
                (r["sha"], [f["path"] for f in r["files"] or []], r["subject"] or "") for r in rows
            ]
        return self._file_history

    def all_rows(self, columns: list[str]) -> list[dict[str, Any]]:
        """Selected columns of every memory, for in-process ranking (locate, replay)."""
        table = self.table()
        if table is None:
            return []
        return self._scan(columns).to_pylist()

    def fts(self, query: str, k: int, where: str | None = None) -> list[tuple[Memory, float]]:
        table = self.table()
        if table is None or not query.strip():
            return []
        if not self._has_fts_index(table):
            # A mine interrupted before its first index build leaves rows without one.
            with self.write_lock():
                self.finish_write()
        search = table.search(query, query_type="fts").limit(k)
        if where:
            search = search.where(where, prefilter=True)
        with _quiet_lance():
            rows = search.to_list()
        return [(Memory.from_row(r), float(r["_score"])) for r in rows]

    def nearest(self, query: str, k: int, where: str | None = None) -> list[tuple[Memory, float]]:
        table = self.table()
        if table is None or self.embedder is None or not self.has_vectors:
            return []
        search = table.search(self.embedder.embed_query(query), vector_column_name="vector")
        search = search.limit(k)
        if where:
            search = search.where(where, prefilter=True)
        rows = search.to_list()
        return [(Memory.from_row(r), 1.0 / (1.0 + float(r["_distance"]))) for r in rows]


@contextlib.contextmanager
def _quiet_lance() -> Iterator[None]:
    # Lance prints a deprecation note about _score auto-projection on every FTS query;
    # it would corrupt a TUI frame and clutter CLI output.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def now() -> float:
    return time.time()


os.environ.setdefault("LANCE_LOG", "error")
