"""POSIX ACLs that let the sandbox user write a workspace the host (root) keeps writing too.

When evoagent runs as root, sandboxed commands run as an unprivileged user U (run_as.py), but
the workspace is created, patched and reset by the host as root. Each writable directory gets
an access ACL entry granting U rwx and a default ACL doing the same, so whatever the host
creates there later (git checkouts, the agent's edit and write tools, applied patches) inherits
U's access; files are granted rw (plus x where the owner has x). Ownership never changes, so
host-side git sees the owner it expects.

What inheritance misses (a file made with mode 0600 and renamed in, a chmod on a new file) is
caught by a pass before each command: every directory is visited, and the entries of those
that changed since the previous pass (mtime or ctime) are checked and fixed. The pass walks
with directory file descriptors opened O_NOFOLLOW and sets ACLs through
`/proc/self/fd/<dir>/<name>` without following the last link, so a symlink the sandbox left
in the workspace can never redirect it to a file outside. Hard-linked files (more than one
link) are left alone: a link could name a file elsewhere on the same filesystem.

The ACLs are written as the kernel's xattr format (`system.posix_acl_access` /
`system.posix_acl_default`), so no `setfacl` is needed. A filesystem without ACL support
raises AclUnsupported; the caller falls back (see bwrap.py).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import struct
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"
VERSION = 2
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
UNDEFINED_ID = 0xFFFFFFFF
ENTRY = struct.Struct("<HHI")
HEADER = struct.Struct("<I")
MAX_DEPTH = 256
REMEMBERED = 512
# File timestamps come from a coarse clock that may lag the wall clock by a tick (at most
# 10 ms): anything changed less than this long before a pass started is looked at again.
SLACK_NS = 200_000_000
OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EROFS}

Acl = dict[tuple[int, int], int]
"""(tag, id) -> rwx bits."""


class AclUnsupported(OSError):
    """The filesystem holding a writable directory does not take POSIX ACLs."""


def decode(data: bytes) -> Acl:
    body = data[HEADER.size :]
    if len(data) < HEADER.size or HEADER.unpack_from(data)[0] != VERSION or len(body) % ENTRY.size:
        return {}
    return {(tag, ident): perm & 7 for tag, perm, ident in ENTRY.iter_unpack(body)}


def encode(acl: Acl) -> bytes:
    entries = sorted(acl.items())  # the kernel wants them ordered by tag, then id
    return HEADER.pack(VERSION) + b"".join(
        ENTRY.pack(tag, perm, ident) for (tag, ident), perm in entries
    )


def _with_user(acl: Acl, uid: int, perms: int) -> Acl:
    acl = dict(acl)
    acl[(USER, uid)] = acl.get((USER, uid), 0) | perms
    group_class = [p for (tag, _), p in acl.items() if tag in (USER, GROUP_OBJ, GROUP)]
    acl[(MASK, UNDEFINED_ID)] = 0
    for perm in group_class:
        acl[(MASK, UNDEFINED_ID)] |= perm
    return acl


def _grants(acl: Acl, uid: int, perms: int) -> bool:
    mask = acl.get((MASK, UNDEFINED_ID), 7)
    return acl.get((USER, uid), 0) & mask & perms == perms


def _read(path: str | int, name: str) -> Acl | None:
    try:
        if isinstance(path, int):
            return decode(os.getxattr(path, name))
        return decode(os.getxattr(path, name, follow_symlinks=False))
    except OSError as exc:
        if exc.errno in (errno.ENODATA, *UNSUPPORTED):
            return None
        raise


def _write(path: str | int, name: str, acl: Acl) -> None:
    try:
        if isinstance(path, int):
            os.setxattr(path, name, encode(acl))
        else:
            os.setxattr(path, name, encode(acl), follow_symlinks=False)
    except OSError as exc:
        if exc.errno in UNSUPPORTED:
            raise AclUnsupported(exc.errno, f"POSIX ACLs unsupported: {exc.strerror}") from exc
        raise


def _access_acl(path: str | int, mode: int) -> Acl:
    """The current access ACL; a file without one is described by its mode bits."""
    acl = _read(path, ACCESS)
    base: Acl = {
        (USER_OBJ, UNDEFINED_ID): (mode >> 6) & 7,
        (GROUP_OBJ, UNDEFINED_ID): (mode >> 3) & 7,
        (OTHER, UNDEFINED_ID): mode & 7,
    }
    if acl:
        # The mode is authoritative for owner and other; the group bits show the mask.
        acl = {**acl, (USER_OBJ, UNDEFINED_ID): base[(USER_OBJ, UNDEFINED_ID)],
               (OTHER, UNDEFINED_ID): base[(OTHER, UNDEFINED_ID)]}
        acl.setdefault((GROUP_OBJ, UNDEFINED_ID), base[(GROUP_OBJ, UNDEFINED_ID)])
        return acl
    return base


def _grant_entry(path: str | int, info: os.stat_result, uid: int) -> None:
    """Make sure U may use one file or directory (and, for a directory, what is created in
    it later)."""
    is_dir = stat.S_ISDIR(info.st_mode)
    perms = 7 if is_dir else 6 | (1 if info.st_mode & stat.S_IXUSR else 0)
    access = _access_acl(path, info.st_mode)
    if not _grants(access, uid, perms):
        _write(path, ACCESS, _with_user(access, uid, perms))
    if is_dir:
        default = _read(path, DEFAULT)
        if not default or not _grants(default, uid, 7):
            _write(path, DEFAULT, _with_user(default or {**access, (USER_OBJ, UNDEFINED_ID): 7}, uid, 7))


class Granter:
    """Remembers, per writable root and user, when its last pass started; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: dict[tuple[str, int, int, int], int] = {}

    def grant(self, root: Path, uid: int, skip: Iterable[Path] = ()) -> None:
        """Give `uid` access to everything under `root` (see the module docstring). Raises
        AclUnsupported when the filesystem has no ACLs."""
        root = Path(root).resolve()
        with self._lock:
            try:
                fd = os.open(root, OPEN_DIR)
            except OSError as exc:
                log.debug("sandbox: cannot open %s for ACLs: %s", root, exc)
                return
            try:
                info = os.fstat(fd)
                key = (str(root), info.st_dev, info.st_ino, uid)
                started = time.time_ns()
                since = self._since.get(key)
                _grant_tree(fd, str(root), info, uid, since, {os.fspath(p) for p in skip}, 0)
                self._since.pop(key, None)
                self._since[key] = started - SLACK_NS
                while len(self._since) > REMEMBERED:  # per-call directories come and go
                    del self._since[next(iter(self._since))]
            finally:
                os.close(fd)


def _changed(info: os.stat_result, since: int | None) -> bool:
    return since is None or max(info.st_mtime_ns, info.st_ctime_ns) >= since


def _grant_tree(
    fd: int, path: str, info: os.stat_result, uid: int, since: int | None,
    skip: set[str], depth: int,
) -> None:
    if info.st_uid != uid and _changed(info, since):
        try:
            _grant_entry(fd, info, uid)
        except AclUnsupported:
            raise  # the caller falls back to running as root
        except OSError as exc:
            log.debug("sandbox: no ACL for %s: %s", path, exc)
    if depth >= MAX_DEPTH:
        log.warning("sandbox: %s is nested too deeply; not granting access below it", path)
        return
    look_at_files = _changed(info, since)
    try:
        with os.scandir(fd) as entries:
            listed = list(entries)
    except OSError as exc:
        log.debug("sandbox: cannot list %s: %s", path, exc)
        return
    for entry in listed:
        if entry.is_dir(follow_symlinks=False):
            child = f"{path}/{entry.name}"
            if child in skip:
                continue
            try:
                child_fd = os.open(entry.name, OPEN_DIR, dir_fd=fd)
            except OSError:  # replaced by a link or removed since the listing: not ours to follow
                continue
            try:
                _grant_tree(child_fd, child, os.fstat(child_fd), uid, since, skip, depth + 1)
            finally:
                os.close(child_fd)
        elif look_at_files and entry.is_file(follow_symlinks=False):
            try:
                info_file = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
                if (
                    stat.S_ISREG(info_file.st_mode)
                    and info_file.st_uid != uid
                    and info_file.st_nlink == 1
                    and _changed(info_file, since)
                ):
                    _grant_entry(f"/proc/self/fd/{fd}/{entry.name}", info_file, uid)
            except AclUnsupported:
                raise
            except OSError as exc:  # gone, or swapped for a link since the listing: skip it
                log.debug("sandbox: no ACL for %s/%s: %s", path, entry.name, exc)
