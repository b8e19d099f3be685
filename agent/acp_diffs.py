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


def file_changes(root: Path, patch_text: str) -> list[FileChange]:
    """Each file of `patch_text` (a git diff against `root`'s tree) as old and new text, read
    by the same strict parser the patch policy uses (`patch_sections`); a file whose hunks do
    not match what it holds now is shown as its hunks (no fuzz: a wrong diff is worse)."""
    from .patch_sections import apply_hunks, split

    changes = []
    for section in split(patch_text).sections:
        path = section.new_path or section.old_path or ""
        hunks_text = _hunks_text(section.text)
        if not section.well_formed or section.binary or not section.hunks:
            changes.append(FileChange(path, None, None, hunks_text or section.text))
            continue
        old = "" if section.old_path is None else _read_text(root, section.old_path)
        new = apply_hunks(old, section.hunks) if old is not None else None
        if new is None:
            changes.append(FileChange(path, None, None, hunks_text))
            continue
        if section.new_path is None:
            new = ""  # a deleted file
        changes.append(FileChange(path, None if section.old_path is None else old, new,
                                  hunks_text))
    return changes


def _hunks_text(section_text: str) -> str:
    """The section from its first hunk header on (the `diff --git` lines are noise here)."""
    at = section_text.find("\n@@ ")
    return section_text[at + 1:] if at >= 0 else ""


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
