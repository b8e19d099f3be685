"""Unified diffs hunk by hunk: parse, select, apply to the user's tree, undo exactly.

`parse` gives files and hunks with stable ids ("<file index>:<hunk index>", e.g. "1:0"; a
file without hunks — a pure rename, a mode change, a binary file — is selected by its file
index alone, "2"), `select` rebuilds a patch from chosen hunks (later hunks' target offsets
recomputed so they still apply), `apply_to_worktree` runs `git apply` after a `--check` and
records the touched files' previous bytes, and `undo` puts those bytes back, refusing when a
file changed since the apply.

`apply_through` is the other writer: an editor's buffers (ACP's fs methods), given as a
`FileAccess`. Each file is read through it (a buffer may hold unsaved edits), its hunks are
applied in memory by patch_sections' strict parser (exactly at their lines, as the diffs
shown were made), and the results are written back through it, only once every file's
hunks applied. It makes modifications and creations of UTF-8 text files only; anything
else (a deletion, rename, mode change, binary file, symlink) raises `NotWritableThrough`,
and the caller applies the whole change with `git apply` instead. The `AppliedChange`
remembers its writer, so `undo` goes back the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from evoagent.memory.commit_names import strip_prefix, unquote_path

from .errors import EvoError

if TYPE_CHECKING:
    from .patch_sections import Section


class PatchError(EvoError):
    """A patch that cannot be parsed, selected, applied, undone or committed (one line)."""


class NotWritableThrough(PatchError):
    """The patch holds a change a `FileAccess` cannot make: apply it with `git apply`."""


class StaleFile(PatchError):
    """A file's hunks do not fit the text the `FileAccess` holds (edited since): `path`."""

    def __init__(self, path: str):
        super().__init__(f"{path}: the change does not fit its text now (edited since it was "
                         "proposed?): save or revert it and accept again; nothing was written")
        self.path = path


class FileAccess(Protocol):
    """Files of the person's tree as another program holds them (an editor's buffers).
    Paths are relative to the repository root."""

    def read(self, rel_path: str) -> str | None:
        """The file's whole text, or None when it cannot be read."""

    def write(self, rel_path: str, text: str) -> None:
        """Replace (or create) the file's text; raises on failure."""

    def remove(self, rel_path: str) -> None:
        """Delete the file (undo of a creation)."""


@dataclass
class Hunk:
    id: str
    """Stable for one patch text: "<file index>:<hunk index>"."""
    header: str
    """The "@@ -a,b +c,d @@ context" line (without the newline)."""
    text: str
    """The header line and the hunk's lines, newline-terminated."""
    added: int
    removed: int


@dataclass
class FilePatch:
    id: str
    """"<file index>": selects the whole file (all its hunks, or a hunk-less change)."""
    path: str
    """The new path (the old one for a deletion)."""
    status: str
    """added | modified | deleted | renamed"""
    hunks: list[Hunk] = field(default_factory=list)
    old_path: str | None = None
    """The path before a rename; None otherwise."""
    binary: bool = False

    @property
    def added(self) -> int:
        return sum(h.added for h in self.hunks)

    @property
    def removed(self) -> int:
        return sum(h.removed for h in self.hunks)


@dataclass
class FileState:
    path: str
    before: bytes | None
    """Content before the apply (None: the file did not exist)."""
    mode_before: int | None
    """Permission bits before the apply."""
    after_sha: str | None
    """sha256 of the content right after the apply (None: the apply removed the file)."""


@dataclass
class AppliedChange:
    root: Path
    patch: str
    """The patch that was applied; `git apply -R` of it is its reverse."""
    files: list[FileState]
    created_dirs: list[str] = field(default_factory=list)
    """Directories the apply created (removed again by undo when empty)."""
    through: FileAccess | None = None
    """The writer that applied it (`apply_through`); None: `git apply` in the tree."""

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]


def _patchset(patch_text: str):
    from unidiff import PatchSet
    from unidiff.errors import UnidiffParseError

    try:
        return PatchSet(patch_text)
    except UnidiffParseError as exc:
        raise PatchError(f"not a valid unified diff: {exc}") from None


def _path(raw: str) -> str:
    return strip_prefix(unquote_path(raw.encode()))


def parse(patch_text: str) -> list[FilePatch]:
    """Files and hunks of a unified (git) diff, in patch order; "" gives []."""
    files = []
    for index, pf in enumerate(_patchset(patch_text)):
        source, target = _path(pf.source_file), _path(pf.target_file)
        if pf.is_added_file:
            status, path, old = "added", target, None
        elif pf.is_removed_file:
            status, path, old = "deleted", source, None
        elif pf.is_rename:
            status, path, old = "renamed", target, source
        else:
            status, path, old = "modified", target, None
        hunks = [
            Hunk(f"{index}:{n}", _header(h, h.target_start).rstrip("\n"),
                 _header(h, h.target_start) + _body(h), h.added, h.removed)
            for n, h in enumerate(pf)
        ]
        files.append(FilePatch(str(index), path, status, hunks, old, bool(pf.is_binary_file)))
    return files


def select(patch_text: str, hunk_ids: Iterable[str]) -> str:
    """A valid patch with only the chosen hunks; a file id ("2") chooses all of that file's
    hunks. Files with nothing chosen are left out. Unknown ids raise PatchError."""
    wanted = set(hunk_ids)
    patchset = _patchset(patch_text)
    known = {str(i) for i in range(len(patchset))}
    known |= {f"{i}:{n}" for i, pf in enumerate(patchset) for n in range(len(pf))}
    unknown = sorted(wanted - known)
    if unknown:
        raise PatchError(f"unknown hunk id(s): {', '.join(unknown)}")
    out: list[str] = []
    for index, pf in enumerate(patchset):
        whole = str(index) in wanted
        chosen = [n for n in range(len(pf)) if whole or f"{index}:{n}" in wanted]
        if not chosen and not (whole and len(pf) == 0):
            continue
        if (pf.is_added_file or pf.is_removed_file) and len(chosen) != len(pf):
            raise PatchError(f"{_path(pf.path)}: a new or deleted file is applied whole")
        out.append(_file_header(pf))
        original_shift = chosen_shift = 0
        for n, hunk in enumerate(pf):
            if n in chosen:
                start = hunk.target_start - original_shift + chosen_shift
                out.append(_header(hunk, start) + _body(hunk))
                chosen_shift += hunk.added - hunk.removed
            original_shift += hunk.added - hunk.removed
    return "".join(out)


def _file_header(pf) -> str:
    head = str(pf.patch_info)
    if len(pf) == 0:  # rename / mode / binary: the git header is all there is
        return head
    return f"{head}--- {pf.source_file}\n+++ {pf.target_file}\n"


def _header(hunk, target_start: int) -> str:
    section = f" {hunk.section_header}" if hunk.section_header else ""
    return (f"@@ -{hunk.source_start},{hunk.source_length} "
            f"+{target_start},{hunk.target_length} @@{section}\n")


def _body(hunk) -> str:
    return "".join(str(line) for line in hunk)


def _touched(patch_text: str) -> list[str]:
    paths: dict[str, None] = {}
    for f in parse(patch_text):
        if f.old_path:
            paths.setdefault(f.old_path, None)
        paths.setdefault(f.path, None)
    return list(paths)


def apply_to_worktree(root: Path, patch_text: str) -> AppliedChange:
    """Apply to the working tree (not the index) with `git apply`, checked first, no 3-way
    merge; PatchError with git's first line when it does not apply."""
    root = Path(root)
    if not patch_text.strip():
        raise PatchError("nothing to apply: the patch is empty")
    paths = _touched(patch_text)
    if not paths:
        raise PatchError("nothing to apply: the patch touches no file")
    data = patch_text.encode("utf-8", "surrogateescape")
    check = _git(root, "apply", "--check", "-", input=data)
    if check.returncode != 0:
        raise PatchError(f"the patch does not apply to the working tree: {_first_line(check)}")
    before = {p: _read(root / p) for p in paths}
    modes = {p: _mode(root / p) for p in paths}
    dirs = _missing_dirs(root, paths)
    done = _git(root, "apply", "-", input=data)
    if done.returncode != 0:
        raise PatchError(f"git apply failed: {_first_line(done)}")
    files = [FileState(p, before[p], modes[p], _sha(_read(root / p))) for p in paths]
    return AppliedChange(root, patch_text, files, [d for d in dirs if (root / d).is_dir()])


def undo(root: Path, applied: AppliedChange) -> None:
    """Restore the touched files byte for byte (and mode) as before `applied`: files it
    created are removed, files it deleted come back. PatchError, changing nothing, when any
    of them changed since the apply."""
    root = Path(root)
    if applied.through is not None:
        _undo_through(root, applied, applied.through)
        return
    changed = [f.path for f in applied.files if _sha(_read(root / f.path)) != f.after_sha]
    if changed:
        raise PatchError(f"cannot undo: {', '.join(changed)} changed since the change was "
                         "applied; undo by hand (git diff shows it)")
    for state in applied.files:
        target = root / state.path
        if state.before is None:
            if target.is_file() or target.is_symlink():
                target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(state.before)
        if state.mode_before is not None:
            os.chmod(target, state.mode_before)
    _remove_created_dirs(root, applied.created_dirs)


def _remove_created_dirs(root: Path, created: list[str]) -> None:
    for rel in sorted(created, key=lambda d: -d.count("/")):
        directory = root / rel
        for sub in sorted((p for p in directory.rglob("*") if p.is_dir()),
                          key=lambda p: -len(p.parts)) if directory.is_dir() else []:
            _rmdir_if_empty(sub)
        _rmdir_if_empty(directory)


# -- through another writer (an editor's buffers) -------------------------------------------


def apply_through(root: Path, patch_text: str, files: FileAccess) -> AppliedChange:
    """Apply `patch_text` by reading and writing through `files` (see the module docstring).
    NotWritableThrough (nothing read or written) when a file is not a modification or
    creation of a UTF-8 text file; StaleFile when a file's hunks do not fit the text `files`
    holds, PatchError when it cannot be read: nothing is written then. A write that fails
    puts back what was already written (as far as `files` still answers) and raises."""
    from .patch_sections import apply_hunks, split

    root = Path(root)
    parsed = split(patch_text)
    if parsed.preamble.strip() or not parsed.sections:
        raise NotWritableThrough("the change is not a git diff of files")
    for section in parsed.sections:
        reason = _not_writable(root, section)
        if reason:
            raise NotWritableThrough(f"{section.display_path}: {reason}")
    planned: list[tuple[str, str | None, str]] = []  # path, text before (None: new), after
    for section in parsed.sections:
        rel = section.new_path or ""
        if section.is_new:
            if os.path.lexists(root / rel):
                raise PatchError(f"{rel}: already exists in your tree")
            old = None
        else:
            old = files.read(rel)
            if old is None:
                raise PatchError(f"{rel}: could not be read through your editor; "
                                 "nothing was written")
        new = apply_hunks(old or "", section.hunks)
        if new is None:
            raise StaleFile(rel)
        planned.append((rel, old, new))
    states = [FileState(rel, None if old is None else _utf8(old), _mode(root / rel),
                        _sha(_utf8(new))) for rel, old, new in planned]
    # The editor may not make a new file's directories; evoagent does (undo removes them).
    dirs = _missing_dirs(root, [rel for rel, old, _ in planned if old is None])
    for rel, old, _ in planned:
        if old is None:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
    written: list[tuple[str, str | None]] = []
    for rel, old, new in planned:
        try:
            files.write(rel, new)
        except Exception as exc:
            for done, before in reversed(written):
                with contextlib.suppress(Exception):  # best effort: the first error is the news
                    files.write(done, before) if before is not None else files.remove(done)
            _remove_created_dirs(root, dirs)
            why = (exc.message if isinstance(exc, EvoError) else str(exc)) or type(exc).__name__
            raise PatchError(f"{rel}: your editor could not write it ({why.splitlines()[0][:200]}"
                             "); what was written before it is put back") from None
        written.append((rel, old))
    return AppliedChange(root, patch_text, states, dirs, through=files)


def _not_writable(root: Path, section: Section) -> str | None:
    """Why `files` cannot make this section's change (None: it can): only a modification or
    a creation (mode 100644) of a UTF-8 text file at a plain path of the tree qualifies."""
    from .patch_sections import SYMLINK

    if not section.well_formed:
        return "not a change git writes"
    if section.is_deleted:
        return "a deletion"
    if section.copy or section.old_path not in (None, section.new_path):
        return "a rename or copy"
    if section.is_new and section.new_mode != "100644":
        return f"a new file of mode {section.new_mode}"
    if not section.is_new and section.old_mode != section.new_mode:
        return "a mode change"
    if section.binary or not section.hunks:
        return "not a change of text"
    if section.is_gitlink or SYMLINK in (section.old_mode, section.new_mode):
        return "a symbolic link or submodule"
    try:
        section.text.encode("utf-8")
    except UnicodeEncodeError:
        return "not UTF-8 text"
    rel = PurePosixPath(section.new_path or "")
    if rel.is_absolute() or not rel.parts or ".." in rel.parts or ".git" in rel.parts:
        return "not a plain path of the tree"
    target = root / rel
    # An existing directory on the way that is a link would lead the write elsewhere.
    if target.parent.resolve() != root.resolve().joinpath(rel.parent):
        return "behind a symbolic link"
    if not section.is_new:
        try:
            if not stat.S_ISREG(os.lstat(target).st_mode):
                return "not a regular file in your tree"
        except OSError:
            return "missing from your tree"
    return None


def _undo_through(root: Path, applied: AppliedChange, files: FileAccess) -> None:
    """Write the old texts back through `files` (a created file is removed), only when every
    file still holds exactly what the accept wrote; PatchError, nothing written, otherwise."""
    changed = []
    for state in applied.files:
        now = files.read(state.path)
        if now is None or _sha(_utf8(now)) != state.after_sha:
            changed.append(state.path)
    if changed:
        raise PatchError(f"cannot undo: {', '.join(changed)} changed in your editor since the "
                         "change was written; nothing was written (it stays undoable)")
    for state in applied.files:
        if state.before is None:
            files.remove(state.path)
        else:
            files.write(state.path, state.before.decode("utf-8", "surrogatepass"))
    _remove_created_dirs(root, applied.created_dirs)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def commit(root: Path, applied: AppliedChange, message: str) -> str:
    """Commit only the files `applied` touched, as they are in the working tree (other staged
    changes stay staged, uncommitted); returns the new commit's sha."""
    root = Path(root)
    paths = applied.paths
    # New files must be known to git before `commit --only` can take them.
    add = _git(root, "add", "-A", "--", *paths)
    if add.returncode != 0:
        raise PatchError(f"cannot stage the accepted files: {_first_line(add)}")
    done = _git(root, "commit", "-q", "--only", "-m", message, "--", *paths)
    if done.returncode != 0:
        raise PatchError(f"git commit failed: {_first_line(done)}")
    return _git(root, "rev-parse", "HEAD").stdout.decode().strip()


def _rmdir_if_empty(path: Path) -> None:
    with contextlib.suppress(OSError):  # not empty (the user put something there), or gone
        path.rmdir()


def _missing_dirs(root: Path, paths: list[str]) -> list[str]:
    """The topmost directory missing above each path (what an apply would create)."""
    missing: dict[str, None] = {}
    for rel in paths:
        parent = (root / rel).parent
        top = None
        while parent != root and not parent.exists():
            top = parent
            parent = parent.parent
        if top is not None:
            missing.setdefault(top.relative_to(root).as_posix(), None)
    return list(missing)


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


def _mode(path: Path) -> int | None:
    return path.stat().st_mode & 0o7777 if path.is_file() else None


def _sha(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _first_line(proc: subprocess.CompletedProcess) -> str:
    text = (proc.stderr or proc.stdout or b"").decode("utf-8", "replace").strip()
    return (text.splitlines() or ["unknown error"])[0]


def _git(root: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(root), *args], input=input, capture_output=True,
                          check=False)
