"""Who a sandboxed command runs as when evoagent itself runs as root.

Root inside bubblewrap, even with every capability dropped, still owns every root-owned file:
it reads /etc/shadow and anything else mode 0600 outside the hidden trees. So a root caller's
commands run as an unprivileged user U instead: bwrap still starts as root (its bind sources
may sit under /root, mode 0700), builds the mounts, keeps only CAP_SETUID, CAP_SETGID and
CAP_SETPCAP, and runs `setpriv` to become U with no capabilities, an empty bounding set and
no_new_privs before exec'ing the command. A non-root caller's commands keep its own uid, which
cannot read root's files anyway.

U is 65534 (nobody) unless `SandboxConfig.run_as` or EVOAGENT_SANDBOX_USER names another
(`uid[:gid]` or a user name; `0` or `root` keeps today's behaviour). Where setpriv is missing
or the switch fails (an old bwrap, a seccomp profile), commands run as root as before, after
one warning.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import subprocess
import threading
import warnings
from dataclasses import dataclass

log = logging.getLogger(__name__)

ENV = "EVOAGENT_SANDBOX_USER"
NOBODY = 65534
KEPT_CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")


class StillRootWarning(UserWarning):
    """Sandboxed commands run as root: the unprivileged user could not be used."""


@dataclass(frozen=True)
class SandboxUser:
    uid: int
    gid: int


def sandbox_user(setting: str | None = None) -> SandboxUser | None:
    """The user a root caller's commands run as; None when they keep the caller's uid (the
    caller is not root, or the setting names root)."""
    if os.geteuid() != 0:
        return None
    uid, gid = parse_user(setting or os.environ.get(ENV) or str(NOBODY))
    return None if uid == 0 else SandboxUser(uid, gid)


def parse_user(value: str) -> tuple[int, int]:
    """`uid`, `uid:gid`, `name` or `name:group` → (uid, gid); the gid defaults to the user's
    primary group, or the uid's number for a uid without a passwd entry."""
    user, _, group = value.strip().partition(":")
    try:
        uid = int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
        if group:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        else:
            try:
                gid = pwd.getpwuid(uid).pw_gid
            except KeyError:
                gid = uid
    except KeyError as exc:
        raise ValueError(f"{ENV}: unknown user or group in {value!r}") from exc
    return uid, gid


def setpriv_argv(setpriv: str, user: SandboxUser) -> list[str]:
    """The prefix that turns the rest of the command line into a process of `user` holding no
    capability and unable to gain one (no setuid binaries, no file capabilities)."""
    return [
        setpriv,
        f"--reuid={user.uid}",
        f"--regid={user.gid}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def cap_args() -> list[str]:
    args = ["--cap-drop", "ALL"]
    for cap in KEPT_CAPS:
        args += ["--cap-add", cap]
    return args


_lock = threading.Lock()
_probed: dict[tuple[str, SandboxUser], str | None] = {}


def usable_setpriv(bwrap: str, user: SandboxUser) -> str | None:
    """setpriv's path when bwrap plus setpriv really switch to `user` here (tried once per
    process); None, after one warning, when they do not."""
    key = (bwrap, user)
    with _lock:
        if key not in _probed:
            _probed[key] = _probe(bwrap, user)
        return _probed[key]


def setpriv_path() -> str | None:
    return shutil.which("setpriv")


def _probe(bwrap: str, user: SandboxUser) -> str | None:
    setpriv = setpriv_path()
    if setpriv is None:
        still_root("setpriv (util-linux) is not installed")
        return None
    argv = [
        bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
        "--unshare-pid", "--die-with-parent", *cap_args(),
        "--", *setpriv_argv(setpriv, user), setpriv, "--dump",
    ]  # fmt: skip
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        still_root(f"bwrap with setpriv failed to start ({exc})")
        return None
    if proc.returncode != 0 or f"uid: {user.uid}\n" not in proc.stdout:
        reason = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        still_root(f"switching to uid {user.uid} failed ({reason})")
        return None
    return setpriv


def still_root(reason: str) -> None:
    message = (
        f"sandbox: {reason}; sandboxed commands run as root, which can read root-only files "
        "outside the hidden trees (e.g. /etc/shadow). See sandbox/README.md."
    )
    log.warning(message)
    warnings.warn(message, StillRootWarning, stacklevel=3)
