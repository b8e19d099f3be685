"""Which command runs a repository's tests: the configured one, else one read off its files."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

PYTHON_MARKERS = ("pyproject.toml", "setup.cfg", "pytest.ini", "tox.ini")
MAKE_TEST_TARGET = re.compile(r"^test\s*:(?!=)", re.MULTILINE)
NPM_PLACEHOLDER = "no test specified"


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
            script = (json.loads(package.read_text()).get("scripts") or {}).get("test")
        except (ValueError, AttributeError):
            script = None
        if isinstance(script, str) and NPM_PLACEHOLDER not in script:
            return TestCommand(("npm", "test"), "npm", "package.json")
    makefile = next(
        (root / n for n in ("GNUmakefile", "makefile", "Makefile") if (root / n).is_file()), None
    )
    if makefile and MAKE_TEST_TARGET.search(makefile.read_text(errors="replace")):
        return TestCommand(("make", "test"), "make", makefile.name)
    if (root / "go.mod").is_file():
        return TestCommand(("go", "test", "./..."), "go", "go.mod")
    if (root / "Cargo.toml").is_file():
        return TestCommand(("cargo", "test"), "cargo", "Cargo.toml")
    return None
