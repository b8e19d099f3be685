"""Which command runs a repository's tests: the configured one, else one read off its files."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from evoagent.sandbox.untrusted_files import UntrustedFileError, read_untrusted_text

PYTHON_MARKERS = ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini")
MAKE_TEST_TARGET = re.compile(r"^test\s*:(?!=)", re.MULTILINE)
NPM_PLACEHOLDER = "no test specified"
CONFIG_LIMIT = 1 << 20  # bytes of a package.json or Makefile worth reading


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
    """The configured command first, then pytest, npm, make, go, cargo by marker files."""
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
    return None
