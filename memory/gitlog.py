"""Stream a repository's history through one `git log -p` and turn each commit into a Memory.

One git process writes every commit as a NUL-delimited header (sha, parents, author, times,
raw message) followed by its patch. The patch is read line by line as bytes and parsed by
a small state machine that never holds more than one excerpt per commit: +/- lines are
counted from their first byte, only the first DIFF_EXCERPT_CHARS of text are decoded, so a
vendored 500 MB diff costs a scan, not memory. Enclosing symbols come from git's funcname
context, sharpened by the drivers in `commit_names`; the repo's own .gitattributes wins.

Clones can lack objects (partial clones, snapshots without big blobs): git then dies
mid-stream with "unable to read <sha>". The memories already yielded stand; the commit git
was on is mined alone without content (`--raw`: paths and change kinds, no line counts;
its diff_excerpt starts with DIFF_UNAVAILABLE), and a new stream resumes with the next
commit. Only a failure costs extra processes.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from .commit_names import (
    FUNCNAME_CONFIG,
    attributes_text,
    extract_issue_refs,
    is_code,
    path_from_diff_header,
    strip_prefix,
    unquote_path,
)
from .commit_names import is_test_path as is_test_path  # re-exported for callers of gitlog
from .commit_names import symbol_name as symbol_name
from .errors import MemoryUserError
from .records import DIFF_EXCERPT_CHARS, MESSAGE_CHARS, FileChange, Memory

_START = b"\x00\x1eEVO\x1f"
_END = b"\x00\x1eEND\x1f"
# %x00 / %x1e / %x1f are bytes git never lets into a commit header and a patch line
# never starts with, so an arbitrary message cannot forge a commit boundary.
_FORMAT = "%x00%x1eEVO%x1f%H%x00%P%x00%an%x00%ae%x00%at%x00%ct%x00%B%x00%x1eEND%x1f"

# Pinned so a user's config (noprefix, mnemonic prefixes, signatures) cannot change the
# output we parse.
_GIT_CONFIG = {
    "core.quotepath": "off",
    "diff.noprefix": "false",
    "diff.mnemonicPrefix": "false",
    "diff.relative": "false",
    "diff.suppressBlankEmpty": "false",
    "log.showSignature": "false",
    **FUNCNAME_CONFIG,
}
_DIFF_OPTIONS = ["--no-color", "--no-ext-diff", "--no-textconv"]
_LOG_OPTIONS = ["log", "-p", *_DIFF_OPTIONS, "-M", "--format=" + _FORMAT]
# One commit without blob contents: --raw reads trees only, but -M may still read blobs
# (inexact renames), so the next try drops renames and the last shows the header alone.
# (--numstat needs the same blobs as -p, so it fails with it.)
_FALLBACKS = (["--raw", "-M"], ["--raw", "--no-renames"], [])
_MISSING_OBJECT = re.compile(
    r"unable to read|missing (?:blob|tree) object|did not receive expected object"
    r"|is corrupt|unable to unpack|inflate|invalid object",
    re.IGNORECASE,
)
# How a memory mined without its diff says so (its diff_excerpt starts with this).
DIFF_UNAVAILABLE = "[diff unavailable: object missing]"


class GitLogError(MemoryUserError, RuntimeError):
    """git log failed (not a repository, unknown revision, ...)."""


def iter_commits(
    repo_path: str | Path,
    revs: list[str] | None = None,
    shas_stdin: list[str] | None = None,
) -> Iterator[Memory]:
    """Yield one Memory per commit, newest first (or in `shas_stdin` order).

    `shas_stdin` feeds exact commits (`--no-walk=unsorted --stdin`): incremental mining
    asks only for the commits it has not stored yet. Close the iterator to stop git early.
    A commit whose objects are missing is yielded without content (see DIFF_UNAVAILABLE).
    """
    if shas_stdin is not None and not shas_stdin:
        return  # git would fall back to HEAD with nothing on stdin
    with tempfile.TemporaryDirectory(prefix="evoagent-log-") as tmp:
        attributes = Path(tmp) / "attributes"
        attributes.write_text(attributes_text())
        git = ["git"]
        for key, value in {**_GIT_CONFIG, "core.attributesFile": str(attributes)}.items():
            git += ["-c", f"{key}={value}"]
        git_run = _Git(git, repo_path, Path(tmp) / "stderr")
        todo, pos = shas_stdin, 0  # todo[pos:] still to yield, once the order is known
        while True:
            if todo is None:
                log = git_run.stream([*_LOG_OPTIONS, *(revs or ["HEAD"]), "--"], None)
            else:
                log = git_run.stream(
                    [*_LOG_OPTIONS, "--no-walk=unsorted", "--stdin", "--"], todo[pos:]
                )
            last = None
            with contextlib.closing(iter(log)) as memories:
                for memory in memories:
                    yield memory
                    last = memory.sha
            if log.error is None:
                return
            if not _MISSING_OBJECT.search(log.error):
                raise GitLogError(log.error)
            if todo is None:  # a walk: continue from the same order, given as exact shas
                todo = git_run.lines(["rev-list", *(revs or ["HEAD"]), "--"])
            if last is not None:
                pos = todo.index(last, pos) + 1
            if pos >= len(todo):
                return
            if log.held is not None:
                # Parsed before git died: whole, unless git died inside its patch.
                whole = git_run.one(todo[pos], ["-p", "-M"])
                if whole is not None:
                    yield whole
                    pos += 1
                    continue  # git died on the commit after it: the next stream finds it
            yield git_run.without_content(todo[pos], log.error)
            pos += 1
            if pos >= len(todo):
                return


class _Git:
    """git with our pinned config in one repository; stderr goes to one scratch file."""

    def __init__(self, git: list[str], cwd: str | Path, stderr_path: Path):
        self.git, self.cwd, self.stderr_path = git, cwd, stderr_path

    def stream(self, args: list[str], shas: list[str] | None) -> _LogStream:
        return _LogStream([*self.git, *args], self.cwd, shas, self.stderr_path)

    def lines(self, args: list[str]) -> list[str]:
        result = subprocess.run([*self.git, *args], cwd=self.cwd, capture_output=True)
        if result.returncode != 0:
            raise GitLogError(_last_line(result.stderr, f"git {args[0]} failed"))
        return result.stdout.decode().split()

    def one(self, sha: str, options: list[str]) -> Memory | None:
        """One commit shown with `options`; None when git fails on it."""
        args = [*self.git, "log", *_DIFF_OPTIONS, *options, "--format=" + _FORMAT]
        result = subprocess.run([*args, "--no-walk", sha, "--"], cwd=self.cwd, capture_output=True)
        found = list(parse_log(result.stdout.splitlines(keepends=True)))
        return found[0] if result.returncode == 0 and len(found) == 1 else None

    def without_content(self, sha: str, error: str) -> Memory:
        """The commit's header and, when its trees are readable, its paths and changes."""
        for options in _FALLBACKS:
            memory = self.one(sha, options)
            if memory is not None:
                memory.diff_excerpt = "" if memory.is_merge else f"{DIFF_UNAVAILABLE} {error}"
                return memory
        raise GitLogError(error)


class _LogStream:
    """One `git log` process parsed as it streams.

    The last commit is held back until git exits: when git dies, the commit it was writing
    may be cut short, so it is left in `held` (and the message in `error`) instead.
    """

    def __init__(self, args: list[str], cwd, shas: list[str] | None, stderr_path: Path):
        self.args, self.cwd, self.shas, self.stderr_path = args, cwd, shas, stderr_path
        self.held: Memory | None = None
        self.error: str | None = None

    def __iter__(self) -> Iterator[Memory]:
        with open(self.stderr_path, "w+b") as stderr:
            proc = subprocess.Popen(
                self.args,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL if self.shas is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                bufsize=1 << 20,
            )
            writer = None
            if self.shas is not None:
                # git reads all of stdin before it writes; a thread keeps a long list from
                # ever deadlocking against a full stdout pipe.
                data = b"".join(sha.encode() + b"\n" for sha in self.shas)
                writer = threading.Thread(target=_feed, args=(proc.stdin, data), daemon=True)
                writer.start()
            held = None
            finished = False
            try:
                for memory in parse_log(proc.stdout):
                    if held is not None:
                        yield held
                    held = memory
                finished = True
            finally:
                if not finished:
                    proc.kill()
                proc.stdout.close()
                code = proc.wait()
                if writer is not None:
                    writer.join()
            if code == 0:
                if held is not None:
                    yield held
                return
            self.held = held
            stderr.seek(0)
            self.error = _last_line(stderr.read(), f"git log exited {code}")


def _last_line(stderr: bytes, default: str) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else default


def _feed(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, OSError):
        pass  # git died early (bad sha, killed): its exit code tells the story


def parse_log(stream: Iterable[bytes]) -> Iterator[Memory]:
    """Parse `git log -p --format=<_FORMAT>` output (an iterable of byte lines)."""
    commit: _Commit | None = None
    header: list[bytes] | None = None
    # Hunk bodies are nearly every line: counted here inline, from the first byte only.
    hunk: FileChange | None = None
    added = removed = 0
    keep = False
    for line in stream:
        if hunk is not None:
            first = line[0]
            if first == 43:  # +
                added += 1
            elif first == 45:  # -
                removed += 1
            elif first != 32 and first != 92 and first != 10:  # not " ", "\\", bare newline
                hunk.added += added
                hunk.removed += removed
                hunk, added, removed = None, 0, 0
            if hunk is not None:
                if keep:
                    keep = commit.keep(line)
                continue
        if header is not None:
            header.append(line)
            if _END in line:
                commit = _Commit(b"".join(header))
                header = None
            continue
        if line.startswith(_START):
            if commit is not None:
                yield commit.finish()
                commit = None
            if _END in line:
                commit = _Commit(line)
            else:
                header = [line]
            continue
        if commit is not None and commit.header_line(line):
            hunk, keep = commit.file, commit.room > 0
    if hunk is not None:
        hunk.added += added
        hunk.removed += removed
    if commit is not None:
        yield commit.finish()


_RAW_CHANGES = {b"A": "A", b"D": "D", b"R": "R", b"C": "A"}


class _Commit:
    """One commit's header fields and patch metadata; `finish` builds the Memory."""

    __slots__ = ("fields", "files", "file", "code", "symbols", "excerpt", "room")

    def __init__(self, raw_header: bytes):
        body = raw_header[raw_header.index(_START) + len(_START) : raw_header.index(_END)]
        self.fields = body.split(b"\x00", 6)
        self.files: list[FileChange] = []
        self.file: FileChange | None = None
        self.code = False
        self.symbols: dict[str, None] = {}
        self.excerpt: list[bytes] = []
        self.room = DIFF_EXCERPT_CHARS

    def keep(self, line: bytes) -> bool:
        """Add a raw line to the excerpt (decoded once, in finish); False once it is full."""
        self.excerpt.append(line)
        self.room -= len(line)
        return self.room > 0

    def header_line(self, line: bytes) -> bool:
        """Take one line outside a hunk body; True when it opens a hunk."""
        opens_hunk = False
        if line.startswith(b"diff --git "):
            self.file = FileChange(path=path_from_diff_header(line[11:].rstrip(b"\n")))
            self.files.append(self.file)
            self.code = is_code(self.file.path)
        elif self.file is None:
            if line[:1] == b":":
                self._raw(line)
            return False  # else the blank line after the commit header
        elif line.startswith(b"@@ "):
            opens_hunk = True
            parts = line.split(b"@@", 2)
            if self.code and len(parts) == 3:
                name = symbol_name(parts[2].decode("utf-8", "replace").strip())
                if name:
                    self.symbols[f"{self.file.path}::{name}"] = None
        elif line.startswith(b"index "):
            return False  # blob ids: noise in an excerpt
        else:
            self._file_header(self.file, line.rstrip(b"\n"))
        if self.room > 0:
            self.keep(line)
        return opens_hunk

    def _raw(self, line: bytes) -> None:
        """A `--raw` line (mined without blobs): `:mode mode blob blob STATUS\tpath[\tpath]`."""
        meta, _, names = line.rstrip(b"\n").partition(b"\t")
        status = meta.rpartition(b" ")[2][:1]
        paths = [unquote_path(name) for name in names.split(b"\t")]
        file = FileChange(path=paths[-1], change=_RAW_CHANGES.get(status, "M"))
        if len(paths) == 2 and file.change in ("R", "A"):  # renamed, or copied
            file.old_path = paths[0]
        self.files.append(file)

    def _file_header(self, file: FileChange, line: bytes) -> None:
        if line.startswith(b"new file mode"):
            file.change = "A"
        elif line.startswith(b"deleted file mode"):
            file.change = "D"
        elif line.startswith(b"rename from "):
            file.change = "R"
            file.old_path = unquote_path(line[12:])
        elif line.startswith(b"rename to "):
            file.path = unquote_path(line[10:])
            self.code = is_code(file.path)
        elif line.startswith(b"+++ ") and line[4:] != b"/dev/null":
            file.path = strip_prefix(unquote_path(line[4:].rstrip(b"\t")))
            self.code = is_code(file.path)
        elif line.startswith(b"--- ") and line[4:] != b"/dev/null" and file.change == "R":
            file.old_path = strip_prefix(unquote_path(line[4:].rstrip(b"\t")))
        elif line.startswith(b"Binary files ") or line == b"GIT binary patch":
            file.binary = True

    def _excerpt(self) -> str:
        return b"".join(self.excerpt).decode("utf-8", "replace")[:DIFF_EXCERPT_CHARS]

    def finish(self) -> Memory:
        sha, parents, author, email, authored, committed, message = self.fields + [b""] * (
            7 - len(self.fields)
        )
        text = message.decode("utf-8", "replace").strip()
        parent_list = parents.decode().split()
        is_merge = len(parent_list) > 1
        files = [] if is_merge else self.files
        return Memory(
            sha=sha.decode(),
            parents=parent_list,
            author=author.decode("utf-8", "replace"),
            author_email=email.decode("utf-8", "replace"),
            authored_at=int(authored or 0),
            committed_at=int(committed or 0),
            subject=text.split("\n", 1)[0].strip(),
            message=text[:MESSAGE_CHARS],
            issue_refs=extract_issue_refs(text),
            files=files,
            symbols=[] if is_merge else list(self.symbols),
            tests_touched=[f.path for f in files if is_test_path(f.path)],
            diff_excerpt="" if is_merge else self._excerpt(),
            is_merge=is_merge,
        )
