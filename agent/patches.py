"""Unified diffs hunk by hunk: parse, select, apply to the user's tree, undo exactly.

`parse` gives files and hunks with stable ids ("<file index>:<hunk index>", e.g. "1:0"; a
file without hunks — a pure rename, a mode change, a binary file — is selected by its file
index alone, "2"), `select` rebuilds a patch from chosen hunks (later hunks' target offsets
recomputed so they still apply), `apply_to_worktree` runs `git apply` after a `--check` and
records the touched files' previous bytes, and `undo` puts those bytes back, refusing when a
file changed since the apply.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from evoagent.memory.commit_names import strip_prefix, unquote_path

from .errors import EvoError


class PatchError(EvoError):
    """A patch that cannot be parsed, selected, applied, undone or committed (one line)."""


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
    for rel in sorted(applied.created_dirs, key=lambda d: -d.count("/")):
        directory = root / rel
        for sub in sorted((p for p in directory.rglob("*") if p.is_dir()),
                          key=lambda p: -len(p.parts)) if directory.is_dir() else []:
            _rmdir_if_empty(sub)
        _rmdir_if_empty(directory)


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
