"""Read a repository's files at any revision straight from git objects.

Never touches the working tree: uncommitted edits and untracked files are invisible.
`repo_path` may be a working-tree checkout or a bare git directory.
Paths are decoded with surrogateescape, so non-UTF-8 names survive a round trip.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import MemoryUserError

# Blobs above this are skipped: nobody indexes a 1 MB source file usefully.
MAX_BLOB_BYTES = 1_000_000


class GitError(MemoryUserError, RuntimeError):
    """A git command failed (bad revision, not a repository)."""


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str
    sha: str
    size: int


def _git(repo_path: str | Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo_path), *args], capture_output=True, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {err[-1] if err else proc.returncode}")
    return proc.stdout


def resolve(repo_path: str | Path, rev: str = "HEAD") -> str:
    """The commit sha `rev` names."""
    return (
        _git(repo_path, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}")
        .decode()
        .strip()
    )


def list_files(repo_path: str | Path, rev: str = "HEAD") -> list[TreeEntry]:
    """Regular files (blobs) at `rev`; submodules and symlinks are left out."""
    out = _git(repo_path, "ls-tree", "-r", "-z", "--long", "--end-of-options", rev)
    entries: list[TreeEntry] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        parts = meta.split()
        # <mode> <type> <sha> <size>; 120000 is a symlink, type "commit" a submodule.
        if len(parts) != 4 or parts[1] != b"blob" or parts[0] == b"120000":
            continue
        size = int(parts[3]) if parts[3].isdigit() else 0
        entries.append(
            TreeEntry(raw_path.decode("utf-8", "surrogateescape"), parts[2].decode(), size)
        )
    return entries


def read_blobs(
    repo_path: str | Path, shas: Iterable[str], max_bytes: int = MAX_BLOB_BYTES
) -> dict[str, bytes]:
    """Contents of the given blobs through one `git cat-file --batch` process.

    Blobs larger than `max_bytes` and missing objects are left out of the result.
    """
    wanted = list(dict.fromkeys(shas))
    if not wanted:
        return {}
    proc = subprocess.Popen(
        ["git", "-C", str(repo_path), "cat-file", "--batch", "--buffer"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None

    # Requests are written from a thread so git never blocks on a full stdout pipe
    # while we are still writing thousands of requests.
    def feed() -> None:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write("".join(f"{sha}\n" for sha in wanted).encode())
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.close()

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result: dict[str, bytes] = {}
    out = proc.stdout
    try:
        for sha in wanted:
            header = out.readline()
            if not header:
                break
            fields = header.split()
            if len(fields) != 3:  # "<sha> missing" / "<sha> ambiguous"
                continue
            size = int(fields[2])
            if size > max_bytes:
                _skip(out, size + 1)
                continue
            data = out.read(size)
            out.read(1)  # trailing newline
            if fields[1] == b"blob":
                result[sha] = data
    finally:
        writer.join()
        out.close()
        proc.wait()
    return result


def _skip(stream, count: int) -> None:
    while count > 0:
        chunk = stream.read(min(count, 1 << 20))
        if not chunk:
            return
        count -= len(chunk)
