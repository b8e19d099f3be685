"""A pending change as an ACP client shows it: per file, its text now and with the change.

ACP's diff content is whole texts (`oldText`, `newText`), not hunks. For each file of the
patch, `oldText` is the person's current file and `newText` that text with the file's hunks
applied in memory: nothing is written, so what reaches their files is still only what they
accept. A file whose current text no longer matches the hunks (edited since), a binary
file, or one that cannot be read as text (a link, too large, not UTF-8) gets its hunks as
plain text instead (`FileChange.hunks_text`).

The user's files are read like any repository content (`read_untrusted`: no link followed
below the repository root), since the patch's paths come from the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 2 << 20
"""A file larger than this is shown as its hunks, not as whole texts."""


@dataclass(frozen=True)
class FileChange:
    path: str
    """Relative to the repository root (the new path of a rename)."""
    old_text: str | None
    """The current text (None: the change creates the file, or no whole text could be made)."""
    new_text: str | None
    """The text with the change ("" when it deletes the file; None: no whole text)."""
    hunks_text: str
    """The file's part of the patch: shown when there are no whole texts."""

    @property
    def whole(self) -> bool:
        return self.new_text is not None


class _Mismatch(Exception):
    """A hunk's context or removed lines are not what the file holds at that place."""


def file_changes(root: Path, patch_text: str) -> list[FileChange]:
    """Each file of `patch_text` (a git diff against `root`'s tree) as old and new text."""
    from evoagent.memory.commit_names import strip_prefix, unquote_path
    from unidiff import PatchSet
    from unidiff.errors import UnidiffParseError

    def _path(raw: str) -> str:
        return strip_prefix(unquote_path(raw.encode()))

    try:
        patchset = PatchSet(patch_text)
    except UnidiffParseError:
        return []
    changes = []
    for pf in patchset:
        source, target = _path(pf.source_file), _path(pf.target_file)
        path = source if pf.is_removed_file else target
        hunks_text = "".join(str(h) for h in pf)
        if pf.is_binary_file or len(pf) == 0:
            changes.append(FileChange(path, None, None, hunks_text or str(pf.patch_info)))
            continue
        old = "" if pf.is_added_file else _read_text(root, source)
        if old is None:
            changes.append(FileChange(path, None, None, hunks_text))
            continue
        try:
            new = apply_hunks(old, pf)
        except _Mismatch:
            changes.append(FileChange(path, None, None, hunks_text))
            continue
        changes.append(FileChange(path, None if pf.is_added_file else old, new, hunks_text))
    return changes


def apply_hunks(text: str, patched_file) -> str:
    """`text` with the hunks of one unidiff `PatchedFile` applied; _Mismatch when a context
    or removed line differs from the file (no fuzz: showing a wrong diff is worse)."""
    old = text.splitlines(keepends=True)
    out: list[str] = []
    pos = 0
    for hunk in patched_file:
        # A hunk that removes nothing names the line it follows ("-5,0"), not the first.
        start = hunk.source_start if hunk.source_length == 0 else hunk.source_start - 1
        if start < pos or start > len(old):
            raise _Mismatch
        out.extend(old[pos:start])
        pos = start
        for kind, value in _lines(hunk):
            if kind in " -":
                if pos >= len(old) or old[pos] != value:
                    raise _Mismatch
                pos += 1
            if kind in " +":
                out.append(value)
    out.extend(old[pos:])
    return "".join(out)


def _lines(hunk) -> list[tuple[str, str]]:
    """(kind, text) of a hunk's lines; "\\ No newline at end of file" takes the newline off
    the line before it."""
    lines: list[tuple[str, str]] = []
    for line in hunk:
        if line.line_type == "\\":
            if lines:
                kind, value = lines[-1]
                lines[-1] = (kind, value[:-1] if value.endswith("\n") else value)
            continue
        lines.append((line.line_type, line.value))
    return lines


def _read_text(root: Path, rel: str) -> str | None:
    from evoagent.sandbox.untrusted_files import UntrustedFileError, read_untrusted

    try:
        data = read_untrusted(Path(root) / rel, MAX_FILE_BYTES, root=Path(root))
    except UntrustedFileError:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
