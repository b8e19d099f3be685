"""Which directories under a hidden root (a home, /tmp) the sandbox shows again, read-only.

Tools installed under a home directory (pyenv, rustup, nvm, uv, Go) and the Python behind a
repository's virtualenv must keep working behind the tmpfs that hides HOME. The inputs are
trusted except the venv: it sits in the repository (or is named by it), so a repository file
must never choose what is shown. The venv's interpreter is followed to a real executable and
only the installation that binary belongs to is shown; `pyvenv.cfg` is never read.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

# Tool installs under a home directory that hold no credentials; shown read-only so pyenv,
# rustup, nvm, uv and Go toolchains keep working behind the tmpfs home.
TOOLCHAIN_DIRS = (
    ".pyenv",
    ".rustup",
    ".cargo/bin",
    ".cargo/registry",
    ".nvm",
    ".local/bin",
    ".local/share/uv/python",
    "go/pkg/mod",
    "sdk",
)
VERSIONED = re.compile(r"python(\d+\.\d+)")


def toolchain_paths(
    homes: Sequence[Path],
    path_var: str,
    venv: Path | None,
    hidden: Sequence[Path] = (),
) -> list[Path]:
    """Directories under a hidden root (a home, /tmp) that commands need: PATH entries (the
    person's environment), the interpreter running evoagent (a checkout in /tmp keeps its venv
    there), the known toolchain roots and the real installation behind `venv`. None of them may
    be a hidden root or hold one (that would un-hide it: ~, the user's repository)."""
    roots = [*homes, Path("/tmp").resolve(), Path("/var/tmp").resolve()]
    covered = [*roots, *(Path(p).resolve() for p in hidden)]
    found = [Path(entry).resolve() for entry in path_var.split(":") if entry]
    found += [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    found += [home / rel for home in homes for rel in TOOLCHAIN_DIRS]
    if venv is not None:
        install = python_installation(venv)
        if install is not None:
            found.append(install)
    return [
        p
        for p in dict.fromkeys(found)
        if p.is_dir()
        and any(p.is_relative_to(r) for r in roots)
        and not any(c.is_relative_to(p) for c in covered)
    ]


def python_installation(venv: Path) -> Path | None:
    """The prefix of the real Python installation behind `<venv>/bin/python`: its links are
    followed to an executable regular file `<prefix>/bin/<name>`, and `<prefix>` must hold that
    Python's standard library (`lib/pythonX.Y/os.py`). None when there is no such thing."""
    binary = Path(os.path.realpath(Path(venv, "bin", "python")))
    try:
        info = os.stat(binary)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o111 or binary.parent.name != "bin":
        return None
    prefix = binary.parent.parent
    match = VERSIONED.fullmatch(binary.name)
    pattern = f"lib/python{match.group(1)}/os.py" if match else "lib/python3*/os.py"
    for stdlib in prefix.glob(pattern):
        if stdlib.is_file() and not stdlib.is_symlink():
            return prefix
    return None


def is_virtualenv(venv: Path, covered: Sequence[Path]) -> bool:
    """Whether `venv` looks like a virtualenv and showing it un-hides nothing else: it has a
    `pyvenv.cfg` file and neither is nor holds a hidden root (a `.venv` link to ~ or ~/.ssh)."""
    venv = Path(venv).resolve()
    cfg = venv / "pyvenv.cfg"
    return (
        cfg.is_file()
        and not cfg.is_symlink()
        and not any(Path(c).resolve().is_relative_to(venv) for c in covered)
    )
