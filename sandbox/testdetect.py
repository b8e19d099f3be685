"""Which command runs a repository's tests: the configured one, else one read off its files."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evoagent.sandbox.untrusted_files import UntrustedFileError, read_untrusted_text

PYTHON_MARKERS = ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini", "setup.py", "conftest.py")
MAKE_TEST_TARGET = re.compile(r"^test\s*:(?!=)", re.MULTILINE)
NPM_PLACEHOLDER = "no test specified"
CONFIG_LIMIT = 1 << 20  # bytes of a package.json or Makefile worth reading
PYTHON_TEST_FILE = re.compile(r"test_.*\.py|.*_test\.py")
TEST_DIRS = ("tests", "test")
"""Where test files are looked for besides the top level (and below them)."""
WALK_LIMIT = 5000
"""Directory entries looked at before giving up: a huge tree is never listed in full."""
WALK_DEPTH = 4
"""How deep below the top level the walk goes (tests/unit/api/v2/test_x.py)."""
SKIPPED_DIRS = ("__pycache__", "node_modules")
NOT_FOUND = (
    "no test command found: set test_command in .evoagent/config.toml (nothing to detect: no "
    "pytest configuration, setup.py, conftest.py or test_*.py, no package.json test script, "
    "Makefile test target, go.mod or Cargo.toml)"
)


def _text(path: Path, root: Path) -> str:
    """A repository file's text, never through a link (it is the repository's content)."""
    try:
        return read_untrusted_text(path, CONFIG_LIMIT, root=root)
    except UntrustedFileError:
        return ""


@dataclass(frozen=True)
class TestCommand:
    """A test command and the runner family it belongs to."""

    __test__ = False  # not a pytest test class

    argv: tuple[str, ...]
    kind: str
    """pytest | go | npm | make | cargo | custom: decides JUnit support and subset syntax."""
    source: str
    """Where it came from: "config" or the file that revealed it."""

    @classmethod
    def of(cls, argv: Sequence[str], source: str) -> TestCommand | None:
        """The command an event or report describes (None: no argv, no command)."""
        return cls(tuple(argv), _kind_of(list(argv)), source) if argv else None


def describe_test_command(command: TestCommand | None) -> str:
    """One line for a person: which command runs the tests and where it came from."""
    if command is None:
        return NOT_FOUND
    origin = "configured" if command.source == "config" else f"detected from {command.source}"
    return f"{shlex.join(command.argv)} ({origin})"


def _kind_of(argv: list[str]) -> str:
    if "pytest" in argv or "py.test" in argv:
        return "pytest"
    if argv[:2] == ["go", "test"]:
        return "go"
    if argv[:2] in (["npm", "test"], ["npm", "run"]):
        return "npm"
    if argv[:1] == ["make"]:
        return "make"
    if argv[:2] == ["cargo", "test"]:
        return "cargo"
    return "custom"


def detect_test_command(root: Path, configured: str | None = None) -> TestCommand | None:
    """The configured command first, then pytest, npm, make, go, cargo by marker files, then
    pytest for Python test files (`_python_test_file`)."""
    root = Path(root)
    if configured:
        argv = shlex.split(configured)
        return TestCommand(tuple(argv), _kind_of(argv), "config")
    for marker in PYTHON_MARKERS:
        if (root / marker).is_file():
            return TestCommand(("python", "-m", "pytest"), "pytest", marker)
    package = root / "package.json"
    if package.is_file():
        try:
            text = read_untrusted_text(package, CONFIG_LIMIT, root=root)
            script = (json.loads(text).get("scripts") or {}).get("test")
        except (ValueError, AttributeError, UntrustedFileError):
            script = None
        if isinstance(script, str) and NPM_PLACEHOLDER not in script:
            return TestCommand(("npm", "test"), "npm", "package.json")
    makefile = next(
        (root / n for n in ("GNUmakefile", "makefile", "Makefile") if (root / n).is_file()), None
    )
    if makefile and MAKE_TEST_TARGET.search(_text(makefile, root)):
        return TestCommand(("make", "test"), "make", makefile.name)
    if (root / "go.mod").is_file():
        return TestCommand(("go", "test", "./..."), "go", "go.mod")
    if (root / "Cargo.toml").is_file():
        return TestCommand(("cargo", "test"), "cargo", "Cargo.toml")
    # Last: a stray test_*.py beside a go.mod or a Makefile test target is not the suite.
    found = _python_test_file(root)
    if found is not None:
        return TestCommand(("python", "-m", "pytest"), "pytest", found)
    return None


def _python_test_file(root: Path) -> str | None:
    """The first `test_*.py` / `*_test.py` (by name, level by level) at the top level or under
    tests/ or test/, as a path relative to `root`; None when there is none. Only names are
    looked at, never contents; the walk is breadth-first, bounded in entries (WALK_LIMIT) and
    depth (WALK_DEPTH), and never follows a link (the tree is the repository's content: a
    `tests -> /` link must not make us list the host)."""
    looked = 0
    pending: deque[tuple[Path, int]] = deque([(root, 0)])
    while pending:
        directory, depth = pending.popleft()
        try:
            with os.scandir(directory) as listing:
                entries = []
                for entry in listing:
                    looked += 1
                    if looked > WALK_LIMIT:
                        return None
                    entries.append(entry)
        except OSError:
            continue
        entries.sort(key=lambda entry: entry.name)
        for entry in entries:
            if PYTHON_TEST_FILE.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                return Path(entry.path).relative_to(root).as_posix()
        if depth >= WALK_DEPTH:
            continue
        for entry in entries:
            wanted = entry.name in TEST_DIRS if depth == 0 else not (
                entry.name.startswith(".") or entry.name in SKIPPED_DIRS)
            if wanted and entry.is_dir(follow_symlinks=False):
                pending.append((Path(entry.path), depth + 1))
    return None
