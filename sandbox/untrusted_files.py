"""Reading back files that untrusted code could have written or replaced.

A sandbox, a repository's committed contents and genome code can all leave a symlink where the
kernel expects a file (a reply, a JUnit report, `AGENTS.md`): following it on the host would
read whatever it points at (`~/.ssh/id_rsa`, `/proc/self/environ`) with the user's rights. Every
host-side read of such a file goes through `read_untrusted`: no symlink anywhere below `root`,
a regular file (not a FIFO that blocks, not a device), at most `limit` bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UntrustedFileError(OSError):
    """The file is missing, not a regular file, behind a link, or too large. The message
    names the path and the reason only, never any of the file's bytes."""


def _inside(path: Path, root: Path) -> Path:
    """`path` made absolute, refusing `..` and any symlink between `root` and the file."""
    root = Path(os.path.abspath(root))
    full = Path(os.path.abspath(path))
    if not full.is_relative_to(root):
        raise UntrustedFileError(f"{path}: outside {root}")
    current = root
    for part in full.relative_to(root).parts[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError as exc:
            raise UntrustedFileError(f"{path}: no such file") from exc
        if not stat.S_ISDIR(mode):
            raise UntrustedFileError(f"{path}: {current.name} is not a directory (a link?)")
    return full


def read_untrusted(path: Path, limit: int, root: Path | None = None) -> bytes:
    """The bytes of regular file `path`, never following a link (the file itself, or any
    directory between `root` and it). Longer than `limit` bytes is an error, not a cut: a
    truncated JSON or XML would be parsed as something else."""
    full = _inside(path, root) if root is not None else Path(os.path.abspath(path))
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(full, flags)
    except FileNotFoundError as exc:
        raise UntrustedFileError(f"{path}: no such file") from exc
    except OSError as exc:  # ELOOP: the last component is a symlink
        raise UntrustedFileError(f"{path}: not a regular file ({exc.strerror})") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedFileError(f"{path}: not a regular file")
        if info.st_size > limit:
            raise UntrustedFileError(f"{path}: larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # it grew after fstat
            raise UntrustedFileError(f"{path}: larger than {limit} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_untrusted_text(path: Path, limit: int, root: Path | None = None) -> str:
    """`read_untrusted` decoded as UTF-8 (undecodable bytes replaced)."""
    return read_untrusted(path, limit, root).decode("utf-8", "replace")
