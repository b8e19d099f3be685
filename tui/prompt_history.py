"""The prompts a person sent in one repository, for Up/Down recall in the request input.

Stored in the repository's state directory as `.evoagent/prompt_history.jsonl`, one
`{"text": ...}` object per line, oldest first. Each prompt is one appended line written under
an exclusive lock on a file of its own (`prompt_history.lock`: a rewrite renames the history
away, and a lock on the old inode would not be seen by the next writer), so two apps open on
the same repository do not interleave. Past `LIMIT` entries the file is rewritten to its last
`LIMIT` through a temporary file and a rename: readers (who take no lock) see the old file
or the new one.

History is a convenience: nothing here raises. A line a kill cut short or anything else that
is not a history record is skipped, and an unreadable or unwritable file reads as empty and
drops the write.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .controller import SessionController

HISTORY_FILE = "prompt_history.jsonl"
LOCK_FILE = "prompt_history.lock"
LIMIT = 500
"""Entries kept: the most recent ones."""


class PromptHistory:
    """The history file in `state_dir` (a repository's `.evoagent/`)."""

    def __init__(self, state_dir: Path, limit: int = LIMIT) -> None:
        self.state_dir = Path(state_dir)
        self.limit = limit

    @property
    def path(self) -> Path:
        return self.state_dir / HISTORY_FILE

    def load(self) -> list[str]:
        """The stored prompts, oldest first, at most `limit`."""
        try:
            return self._read()[-self.limit:]
        except OSError:
            return []

    def append(self, text: str) -> bool:
        """Store `text` unless it is blank or repeats the newest entry. False when it was not
        written (blank, a repeat, or the file could not be written)."""
        if not text.strip():
            return False
        try:
            with self._locked():
                entries = self._read()
                if entries and entries[-1] == text:
                    return False
                if len(entries) + 1 > self.limit:
                    self._rewrite([*entries, text][-self.limit:])
                else:
                    with open(self.path, "a", encoding="ascii") as handle:
                        handle.write(_line(text))
        except OSError:
            return False
        return True

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.state_dir / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self) -> list[str]:
        if not self.path.is_file():
            return []
        entries = []
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # cut by a kill mid-write, or not ours
                    continue
                text = record.get("text") if isinstance(record, dict) else None
                if isinstance(text, str) and text.strip():
                    entries.append(text)
        return entries

    def _rewrite(self, entries: list[str]) -> None:
        fd, temp = tempfile.mkstemp(dir=self.state_dir, prefix=".prompt_history.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.writelines(_line(text) for text in entries)
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def session_history(controller: SessionController, poll: float = 0.1) -> PromptHistory | None:
    """The history of the repository the app's session opened, once it has opened (blocks:
    call it from a thread worker). None when no repository could be opened, or when the worker
    was cancelled while waiting (the app is closing)."""
    from textual.worker import get_current_worker

    worker = get_current_worker()
    while not controller.wait_ready(poll):
        if worker.is_cancelled:
            return None
    ctx = controller.ctx
    # The state directory `open_repo` checked (not a committed link) and keeps out of git.
    return PromptHistory(ctx.state.dir) if ctx is not None else None


def _line(text: str) -> str:
    # ASCII escapes: a lone surrogate from a paste still encodes, and reads back the same.
    return json.dumps({"text": text}, ensure_ascii=True) + "\n"
