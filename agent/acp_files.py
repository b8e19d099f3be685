"""The ACP client's file-system methods as a `patches.FileAccess`: what `/accept` and `/undo`
write through when the client said it can read and write text files.

`fs/read_text_file` returns the editor's buffer (unsaved edits included) and
`fs/write_text_file` replaces it, so an accepted change lands where the person is looking and
an edit they have not saved is never overwritten by a stale disk copy. ACP has no delete:
undoing a file the accept created removes it on disk, here (a regular file only, never
through a link).

`Session.accept`/`undo` run on a worker thread; each call here is scheduled on the event
loop that owns the connection (`run_coroutine_threadsafe`) and waited for, bounded, on that
worker thread. Paths sent to the client are absolute, as ACP asks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import stat
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from .patches import PatchError
from .terminal_text import one_line

CLIENT_TIMEOUT = 30.0
"""Seconds one fs request may wait for the client's answer."""


class ClientFiles:
    """See the module docstring. `conn` is the SDK's client connection, `loop` its loop."""

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop, session_id: str, root: Path,
                 timeout: float = CLIENT_TIMEOUT):
        self.conn = conn
        self.loop = loop
        self.session_id = session_id
        self.root = Path(root)
        self.timeout = timeout

    def read(self, rel_path: str) -> str | None:
        try:
            response = self._call(self.conn.read_text_file(
                session_id=self.session_id, path=self._path(rel_path)), "read")
        except PatchError:
            raise  # no answer at all: say so, rather than "could not be read"
        except Exception:  # the client refused (no such file, not text): unreadable
            return None
        return response.content

    def write(self, rel_path: str, text: str) -> None:
        self._call(self.conn.write_text_file(session_id=self.session_id,
                                             path=self._path(rel_path), content=text), "write")

    def remove(self, rel_path: str) -> None:
        target = self.root / rel_path
        try:
            if stat.S_ISREG(os.lstat(target).st_mode):
                target.unlink()
        except FileNotFoundError:
            pass  # the editor never saved it: nothing on disk to remove

    def _path(self, rel_path: str) -> str:
        return str(self.root / rel_path)

    def _call(self, request: Coroutine[Any, Any, Any], what: str) -> Any:
        future = asyncio.run_coroutine_threadsafe(request, self.loop)
        try:
            return future.result(self.timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise PatchError(f"your editor did not answer fs/{what}_text_file within "
                             f"{self.timeout:.0f} s") from None
        except PatchError:
            raise
        except Exception as exc:
            raise RuntimeError(one_line(str(exc) or type(exc).__name__, 200)) from None
