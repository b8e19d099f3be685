"""The one module that talks to LanceDB.

The store lives at `.evoagent/memory` (or any URI LanceDB accepts: a team can share one
memory on object storage). Tables: `memories` (one row per commit) and `_meta`
(applied migrations and the embedding spec the vectors were made with).

Writes are append-only batches; each LanceDB append is atomic, so an interrupted mine
leaves a consistent table and the next run resumes from the shas already stored.
Concurrent writers on a local store serialise on a file lock; `add` also skips shas
that another writer stored first, so nothing is duplicated.

A damaged store (a truncated or corrupted data, manifest or index file) is looked into
where a LanceDB call fails: a table that no longer reads in full is `StoreDamaged`, one line
naming the command that repairs it (`evoagent mine --rebuild`); a damaged full-text index,
derived from rows that still read, is dropped and built again without asking anyone. Git is
the source of truth for the memories, so a rebuild mines them afresh; other tables (the
approved fixes in `knowledge`) are not derived from git and are never deleted: kept when they
read in full, moved aside into a dated backup folder beside the store when they do not.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from .embeddings import Embedder
from .errors import MemoryUserError
from .records import Memory

MEMORIES = "memories"
META = "_meta"
# A rebuild mines into STAGING, renames it REBUILT once complete, then swaps it for
# MEMORIES one rename at a time (the previous memories go to REPLACED when the rebuild holds
# every commit they held, else into the backup folder). A kill between any two steps leaves a
# readable memories table, and the next writer or reader finishes or discards the rest.
STAGING = "_memories_rebuilding"
REBUILT = "_memories_rebuilt"
REPLACED = "_memories_replaced"
_REBUILD_TABLES = (MEMORIES, STAGING, REBUILT, REPLACED)
DEFAULT_STORE = (".evoagent", "memory")
T = TypeVar("T")
# Compact after this many appends since the last compaction, so versions and small
# fragments do not pile up across many incremental mines.
COMPACT_EVERY_VERSIONS = 20


class StoreError(MemoryUserError, RuntimeError):
    """A store problem a user can act on (bad URI, embedding mismatch)."""


class StoreDamaged(StoreError):
    """A table of the store no longer reads in full: what is damaged, and the command that
    repairs it."""

    def __init__(self, store: MemoryStore, table: str, cause: str):
        self.table = table
        where = f"memory store {store.uri} is damaged: its {table} table cannot be read ({cause})"
        if table in (MEMORIES, META):
            fix = f"run `{store.repair_command}` to rebuild it from git"
        else:
            fix = (f"it is not rebuilt from git; run `{store.repair_command}` to move it aside "
                   "into a backup folder and rebuild the rest")
        super().__init__(f"{where}; {fix}")


@dataclass
class Rebuild:
    """One `mine --rebuild`: the store it mines into, and what it moved aside (never deleted)."""

    staging: MemoryStore | None = None  # None: finishing a swap a killed rebuild left
    backup: Path | None = None  # the dated folder beside the store, made on the first move
    moved: list[str] = field(default_factory=list)  # tables moved into it


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

    def __init__(self, uri: str | Path, embedder: Embedder | None = None, table_name: str = MEMORIES):
        self.uri = str(uri)
        self.embedder = embedder
        # MEMORIES, or STAGING for the store a rebuild mines into (it leaves `_meta` alone:
        # the marks there describe MEMORIES until the swap).
        self.name = table_name
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

    @property
    def repair_command(self) -> str:
        """The command that rebuilds this store (`--store` named unless it is the default)."""
        default = self.is_local and self._root().parts[-2:] == DEFAULT_STORE
        return "evoagent mine --rebuild" + ("" if default else f" --store {self.uri}")

    def _root(self) -> Path:
        return Path(self.uri.removeprefix("file://"))

    def _dir(self, name: str) -> Path:
        return self._root() / f"{name}.lance"

    def _made_root(self) -> Path:
        """The local store's directory, made when missing. A path that cannot be one (a
        file, under a file, a parent that does not exist or cannot be written) is the
        person's input: one line, never a traceback."""
        root = self._root()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise StoreError(f"cannot use {root} as the memory store: it is a file, not a "
                             "directory (pass --store a directory)") from None
        except OSError as exc:
            raise StoreError(f"cannot create memory store {root}: "
                             f"{exc.strerror or type(exc).__name__}") from None
        return root

    def _forget(self) -> None:
        """Drop the connection and table handles: the next call opens the files afresh."""
        self._db = None
        self._table = None

    def _connect(self):
        if self._db is None:
            import lancedb

            if self.is_local:
                self._made_root()
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

        def open_or_create():
            db = self._connect()
            if name in self._table_names():
                return db.open_table(name)
            return None if schema is None else db.create_table(name, schema=schema, exist_ok=True)

        return self.guarded(name, open_or_create)

    # -- damage -----------------------------------------------------------------------

    def guarded(
        self, name: str, call: Callable[[], T], heal_index: bool = False, retry: bool = True
    ) -> T:
        """`call()`, LanceDB work on table `name`. When it fails, the store is looked into:
        a table (`name` or `_meta`) that no longer reads in full raises StoreDamaged. With
        all of them readable, work that is safe to repeat (`retry`) runs again on fresh
        handles (a table a concurrent rebuild or compaction moved reads again), then, with
        `heal_index`, once more after `name`'s full-text index was built again. A failure
        none of this explains is raised as it is (a bug keeps its traceback)."""
        try:
            return _held_call(call)
        except Exception as exc:
            if not _worth_a_look(exc):
                raise
            _looked(exc)
            self._forget()
            self._raise_if_damaged(name, exc)
            if not retry:
                raise
        try:
            return _held_call(call)
        except Exception as exc:
            worth = _worth_a_look(exc)
            _looked(exc)
            if not (heal_index and worth):
                raise
        self.rebuild_fts_index(name)
        try:
            return _held_call(call)
        except Exception as exc:
            _looked(exc)
            raise

    def _raise_if_damaged(self, name: str, cause: BaseException | None = None) -> None:
        for table in dict.fromkeys((name, META)):
            why = self._unreadable(table)
            if why:
                raise StoreDamaged(self, table, why) from cause

    def _unreadable(self, name: str) -> str | None:
        """Why table `name` does not read in full (manifest and every column of every row,
        without any index), or None: it reads, or does not exist."""
        try:
            with _native_stderr_held():
                db = self._connect()
                if name not in self._table_names():
                    return None
                table = db.open_table(name)
                rows = table.count_rows()
                if rows:
                    for _batch in table.search().limit(rows).to_batches(4096):
                        pass
        except Exception as exc:
            if _worth_a_look(exc):
                return _cause(exc)
            raise
        finally:
            self._forget()
        return None

    def rebuild_fts_index(self, name: str) -> None:
        """Drop table `name`'s full-text index and build it again from its rows: the index is
        derived data, so a damaged one is replaced without asking anyone."""
        with self.write_lock(), _native_stderr_held(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._forget()
            table = self._connect().open_table(name)
            for index in table.list_indices():
                if getattr(index, "index_type", "") == "FTS":
                    # Replaced below even when the drop fails: a damaged index may not drop.
                    with contextlib.suppress(RuntimeError, OSError, ValueError):
                        table.drop_index(index.name)
            table.create_fts_index("text", replace=True, with_position=False)
            self._forget()

    def get_meta(self, key: str) -> str | None:
        return self._get_meta(key)

    def set_meta(self, key: str, value: str) -> None:
        self._set_meta(key, value)

    def table(self, create: bool = False):
        """The memories table; None when it does not exist yet and create is False."""
        if self._table is None:
            self._table = self.guarded(self.name, lambda: self._open(create))
        return self._table

    def _open(self, create: bool):
        db = self._connect()
        names = self._table_names()
        if self.name == MEMORIES and MEMORIES not in names and REBUILT in names:
            with self.write_lock():  # a rebuild was stopped half way through its swap
                self._complete_swap(None)
            db, names = self._connect(), self._table_names()
        if self.name in names:
            table = db.open_table(self.name)
            if self.name == MEMORIES:
                self._check_embedding()
            return table
        if not create:
            return None
        ndims = self.embedder.ndims() if self.embedder else None
        table = db.create_table(self.name, schema=_memory_schema(ndims), exist_ok=True)
        self._mark("embedding", self.embedder.spec if self.embedder else "none")
        return table

    def _meta_table(self):
        import pyarrow as pa

        db = self._connect()
        schema = pa.schema([("key", pa.string()), ("value", pa.string())])
        return db.create_table(META, schema=schema, exist_ok=True)

    def _get_meta(self, key: str) -> str | None:
        def read() -> str | None:
            if META not in self._table_names():
                return None
            rows = self._meta_table().search().where(f"key = {_quote(key)}").to_list()
            return rows[-1]["value"] if rows else None

        return self.guarded(META, read)

    def _set_meta(self, key: str, value: str) -> None:
        def write() -> None:
            table = self._meta_table()
            table.delete(f"key = {_quote(key)}")
            table.add([{"key": key, "value": value}])

        self.guarded(META, write, retry=False)

    def _mark(self, key: str, value: str) -> None:
        """A `_meta` mark about the memories table; a rebuild's staging table sets none."""
        if self.name == MEMORIES:
            self._set_meta(key, value)

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
        """Cross-process exclusive lock for writers of a local store (no-op remotely).

        Exclusive between processes (flock) and threads, re-entrant within a thread: a
        rebuild holds it while it mines, heals an index or moves a table aside."""
        if not self.is_local:
            yield
            return
        root = self._made_root()
        with _HELD_GUARD:
            held = _HELD.setdefault(str(root.resolve()), _HeldLock())
        with held.mutex:
            if held.depth == 0:
                # Kept open across nested entries: closed when the outermost one leaves.
                try:
                    handle = open(root / ".write.lock", "a+")  # noqa: SIM115
                except OSError as exc:  # a directory we may not write (read-only, /proc)
                    raise StoreError(f"cannot write to memory store {root}: "
                                     f"{exc.strerror or type(exc).__name__}") from None
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX)
                except BaseException:
                    handle.close()
                    raise
                held.handle = handle
            held.depth += 1
            try:
                yield
            finally:
                held.depth -= 1
                if held.depth == 0:
                    fcntl.flock(held.handle, fcntl.LOCK_UN)
                    held.handle.close()
                    held.handle = None

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

        def scan():
            table = self.table()
            return table.search().select(columns).limit(table.count_rows() or 1).to_arrow()

        return self.guarded(self.name, scan)

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

        batch = pa.Table.from_pylist(rows, schema=table.schema)
        self.guarded(self.name, lambda: table.add(batch), retry=False)
        known.update(fresh)
        self._known = (table.version, known)
        self._file_history = None
        return len(rows)

    def finish_write(self) -> None:
        """Bring the full-text index up to date and compact old versions now and then
        (a damaged index is built again instead)."""
        if self.table() is not None:
            self.guarded(self.name, self._update_index, heal_index=True)

    def _update_index(self) -> None:
        table = self.table()
        if not self._has_fts_index(table):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table.create_fts_index("text", replace=True, with_position=False)
            self._mark("compacted_at_version", str(table.version))
            return
        last = int(self._get_meta("compacted_at_version") or 0)
        if table.version - last >= COMPACT_EVERY_VERSIONS:
            # Keep recent versions: a reader (recall, the app) may still be on one.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table.optimize(cleanup_older_than=timedelta(minutes=10))
            self._mark("compacted_at_version", str(table.version))
        else:
            # Index only the rows appended since the last run (cheap, incremental).
            table.optimize()

    @staticmethod
    def _has_fts_index(table) -> bool:
        return any(getattr(ix, "index_type", "") == "FTS" for ix in table.list_indices())

    # -- reads ------------------------------------------------------------------------

    def count(self) -> int:
        table = self.table()
        return 0 if table is None else self.guarded(self.name, lambda: self.table().count_rows())

    def get(self, sha: str) -> Memory | None:
        table = self.table()
        if table is None or not sha:
            return None
        clause = f"sha = {_quote(sha)}" if len(sha) == 40 else f"sha LIKE {_quote(sha + '%')}"
        rows = self.guarded(
            self.name, lambda: self.table().search().where(clause).limit(2).to_list()
        )
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

        def search() -> list[dict[str, Any]]:
            found = self.table().search(query, query_type="fts").limit(k)
            if where:
                found = found.where(where, prefilter=True)
            with _quiet_lance():
                return found.to_list()

        rows = self.guarded(self.name, search, heal_index=True)
        return [(Memory.from_row(r), float(r["_score"])) for r in rows]

    def nearest(self, query: str, k: int, where: str | None = None) -> list[tuple[Memory, float]]:
        table = self.table()
        if table is None or self.embedder is None or not self.has_vectors:
            return []
        vector = self.embedder.embed_query(query)

        def search() -> list[dict[str, Any]]:
            found = self.table().search(vector, vector_column_name="vector").limit(k)
            if where:
                found = found.where(where, prefilter=True)
            return found.to_list()

        rows = self.guarded(self.name, search)
        return [(Memory.from_row(r), 1.0 / (1.0 + float(r["_distance"]))) for r in rows]

    # -- rebuild ----------------------------------------------------------------------

    def begin_rebuild(self) -> Rebuild:
        """Start replacing the memories by a table mined afresh from git (the caller holds
        write_lock, mines into `rebuild.staging`, then calls `finish_rebuild`).

        Every table git cannot rebuild (knowledge) is checked first: kept as it is when it
        reads in full, moved aside into the backup folder when it does not. Nothing that
        reads is deleted, and the memories stay in place until the swap."""
        if not self.is_local:
            raise StoreError(f"`mine --rebuild` needs a local store, not {self.uri}")
        rebuild = Rebuild(staging=MemoryStore(self.uri, self.embedder, table_name=STAGING))
        self._complete_swap(rebuild)  # a rebuild killed after it had finished mining
        shutil.rmtree(self._dir(STAGING), ignore_errors=True)  # one killed while mining
        for name in self._table_names():
            if name not in _REBUILD_TABLES and self._unreadable(name):
                self._move_aside(name, rebuild)
        rebuild.staging.table(create=True)
        return rebuild

    def finish_rebuild(self, rebuild: Rebuild) -> Rebuild:
        """Put the staging table in the memories' place and mark it in `_meta`."""
        if rebuild.staging is not None:
            rebuild.staging._forget()
        os.rename(self._dir(STAGING), self._dir(REBUILT))  # complete: it may now replace
        self._complete_swap(rebuild)
        # After the swap: a kill in between leaves the old spec beside a table mined with a
        # new embedding, which open refuses in one line, never mixes.
        self._set_meta("embedding", self.embedder.spec if self.embedder else "none")
        table = self.table()
        self._set_meta("compacted_at_version", str(table.version))
        return rebuild

    def _complete_swap(self, rebuild: Rebuild | None) -> None:
        """Replace the memories by a finished rebuild, if one is waiting (the caller holds
        write_lock). One rename per step; each step can be repeated after a kill."""
        rebuilt, current, replaced = self._dir(REBUILT), self._dir(MEMORIES), self._dir(REPLACED)
        shutil.rmtree(replaced, ignore_errors=True)  # only ever what a rebuild holds in full
        if not rebuilt.is_dir():
            return
        if current.is_dir():
            if self._covers(REBUILT, MEMORIES):
                os.rename(current, replaced)
            else:
                self._move_aside(MEMORIES, rebuild or Rebuild())
        os.rename(rebuilt, current)
        self._forget()
        shutil.rmtree(replaced, ignore_errors=True)

    def _covers(self, new: str, old: str) -> bool:
        """Table `new` holds every commit `old` does (so `old` can go: each row of it is
        mined again from git). False when `old` does not read."""
        try:
            return self._shas(old) <= self._shas(new)
        except Exception as exc:
            if _worth_a_look(exc):
                return False
            raise
        finally:
            self._forget()

    def _shas(self, name: str) -> set[str]:
        with _native_stderr_held():
            table = self._connect().open_table(name)
            rows = table.count_rows()
            if not rows:
                return set()
            return set(table.search().select(["sha"]).limit(rows).to_arrow().column("sha").to_pylist())

    def _move_aside(self, name: str, rebuild: Rebuild) -> None:
        """Move table `name`, every byte as it is, into the rebuild's dated backup folder."""
        if rebuild.backup is None:
            rebuild.backup = self._new_backup_folder()
        shutil.move(str(self._dir(name)), str(rebuild.backup / f"{name}.lance"))
        rebuild.moved.append(name)
        self._forget()

    def _new_backup_folder(self) -> Path:
        """`<store>-backup-<date>-<time>` beside the store: inside `.evoagent/` by default."""
        root = self._root()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for n in range(1000):
            folder = root.parent / f"{root.name}-backup-{stamp}{f'-{n}' if n else ''}"
            try:
                folder.mkdir(parents=True)
                return folder
            except FileExistsError:
                continue
        raise StoreError(f"cannot make a backup folder beside {root}")


@contextlib.contextmanager
def _quiet_lance() -> Iterator[None]:
    # Lance prints a deprecation note about _score auto-projection on every FTS query;
    # it would corrupt a TUI frame and clutter CLI output.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


class _HeldLock:
    """The write lock of one store path in this process: who holds it, how deep."""

    def __init__(self) -> None:
        self.mutex = threading.RLock()
        self.depth = 0
        self.handle: Any = None


_HELD: dict[str, _HeldLock] = {}
_HELD_GUARD = threading.Lock()


def _held_call(call: Callable[[], T]) -> T:
    with _native_stderr_held():
        return call()


def _looked(exc: BaseException) -> None:
    """Mark a failure already looked into: an enclosing guard raises it as it is."""
    with contextlib.suppress(AttributeError, TypeError):
        exc._evoagent_looked = True


def _worth_a_look(exc: BaseException) -> bool:
    """A failure LanceDB raises for a file it could not read (IO, decode, a panic in its
    native code), not yet looked into; never one of ours, which is already one line."""
    if isinstance(exc, MemoryUserError) or getattr(exc, "_evoagent_looked", False):
        return False
    return isinstance(exc, RuntimeError | OSError | ValueError) or type(exc).__name__ == "RustPanic"


_RUST_SOURCE = re.compile(r",\s*/\S+\.rs:\d+(:\d+)?")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _cause(exc: BaseException) -> str:
    """LanceDB's reason in a few words: no Rust source locations, one line."""
    if type(exc).__name__ == "RustPanic":
        return "LanceDB crashed reading it"
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = _RUST_SOURCE.sub("", text.removeprefix("lance error: "))
    text = _UNPRINTABLE.sub("?", text).strip()
    return text if len(text) <= 160 else text[:157] + "..."


_holding_stderr = False


@contextlib.contextmanager
def _native_stderr_held() -> Iterator[None]:
    """Hold file descriptor 2 while LanceDB works.

    LanceDB's native code reports a panic (a manifest with corrupted bytes) on fd 2 itself,
    several lines before Python sees the error. Held in a temporary file, the text is
    written out after a call that succeeds and attached to the exception of one that fails
    (shown with a traceback, dropped when the failure becomes one StoreDamaged line). fd 2
    belongs to the whole process, so it is held only on the main thread when no other
    Python thread (the app's screen writer) could be writing to it meanwhile."""
    global _holding_stderr
    if _holding_stderr or not _alone_with_lancedb():
        yield
        return
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    with tempfile.TemporaryFile() as held:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all: nothing to hold
            yield
            return
        os.dup2(held.fileno(), 2)
        _holding_stderr = True
        failed: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            failed = exc
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            _holding_stderr = False
            held.seek(0)
            text = held.read()
            if text and isinstance(failed, Exception):
                failed.add_note(text.decode("utf-8", "replace").rstrip())
            elif text:
                os.write(2, text)


def _alone_with_lancedb() -> bool:
    main = threading.main_thread()
    return threading.current_thread() is main and all(
        t is main or t.name.lower().startswith("lancedb") for t in threading.enumerate()
    )


def now() -> float:
    return time.time()


os.environ.setdefault("LANCE_LOG", "error")
# LanceDB's own warnings (an unreadable index it then reports as an error anyway) would be
# lines on the user's terminal before the one line that says what to do.
os.environ.setdefault("LANCEDB_LOG", "error")
