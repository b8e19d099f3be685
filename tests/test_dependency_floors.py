"""The floors pyproject.toml declares are the ones `.ci/lowest-deps` verified.

That script installs the lowest allowed version of every direct dependency and runs the
commands and a smoke set of tests against them; this file is its fast, offline half. The
table below is what it verified. A floor changed in pyproject.toml without the table, or a
dependency added without a floor, fails here: run `.ci/lowest-deps`, then update the table.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# Verified with Python 3.11.7 (the lowest 3.11 at hand that has tarfile's extraction
# filters, which genome export uses; they arrived in 3.11.4).
VERIFIED_PYTHON = "3.11.4"

# name -> the verified floor, and what breaks below it.
VERIFIED_FLOORS = {
    "click": "8.2",  # 8.1: CliRunner results have no separate stderr
    "gitpython": "3.1.40",
    "unidiff": "0.7.5",
    # <0.26: no list_tables; <0.39: its Tokio runtime is never shut down, and a command
    # can abort at exit ("PyGILState_Release", SIGABRT) after doing all its work;
    # 0.39: list_indices reads a damaged index's files, and recall fails instead of healing
    "lancedb": "0.40",
    "pyarrow": "16",
    "tantivy": "0.22",
    "numpy": "2.0",  # recent pyarrow refuses to import beside numpy 1.x
    "tree-sitter": "0.25",  # 0.24: no QueryCursor
    "tree-sitter-python": "0.23",
    "tree-sitter-javascript": "0.23",
    "tree-sitter-typescript": "0.23",
    "tree-sitter-go": "0.23",
    "tree-sitter-rust": "0.23",
    "tree-sitter-java": "0.23",
    # <1.83.7: streamed tool calls end "stop"; 1.83.x pins click 8.1.8
    "litellm": "1.84",
    "jinja2": "3.1.6",  # what litellm 1.84 requires
    # older ones warn about lancedb's model_name field in every command; mcp 2.0 needs 2.12
    "pydantic": "2.12",
    "textual": "8.2.5",  # what textual-diff-view 0.1.5 requires
    "textual-diff-view": "0.1.5",  # 0.1.2: SyntaxError on 3.11; <0.1.5: other review layout
    "agent-client-protocol": "0.7",  # 0.6: no run_agent / spawn_agent_process (snake_case API)
    "mcp": "2.0",  # 1.x: other field names, error class and server class (FastMCP)
    # test extra
    "pytest": "8",
    "pytest-xdist": "3.5",
    "pytest-textual-snapshot": "1.1",  # 1.0 writes .raw, not the committed .svg baselines
    "ruff": "0.13",  # older ones still enforce UP038 and UP027
    # ray extra
    "ray": "2.40",
}

# Releases that are known to break: each must stay outside what pyproject.toml allows.
KNOWN_BROKEN = {
    "lancedb": ["0.25.0", "0.38.0", "0.39.0"],
    "numpy": ["1.26.4"],
    "tree-sitter": ["0.24.0"],
    "textual-diff-view": ["0.1.2", "0.1.4"],
    "textual": ["1.0.0", "8.2.4"],
    "litellm": ["1.83.14", "1.107.0"],
    "click": ["8.1.8"],
}


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def declared() -> dict[str, Requirement]:
    """The dependencies and the extras .ci/lowest-deps installs (local-embeddings pulls in
    torch and is left out)."""
    extras = project()["optional-dependencies"]
    texts = project()["dependencies"] + extras["test"] + extras["ray"]
    return {canonicalize_name(r.name): r for r in map(Requirement, texts)}


def floor(requirement: Requirement) -> Version | None:
    floors = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    return max(floors, default=None)


def test_every_declared_floor_is_the_verified_one():
    floors = {name: floor(r) for name, r in declared().items()}
    verified = {canonicalize_name(n): Version(v) for n, v in VERIFIED_FLOORS.items()}
    assert floors == verified, "run .ci/lowest-deps, then update VERIFIED_FLOORS"


def test_the_python_floor_is_the_verified_one():
    assert project()["requires-python"] == f">={VERIFIED_PYTHON}"


def test_known_broken_releases_are_not_allowed():
    requirements = declared()
    allowed = [(name, version) for name, versions in KNOWN_BROKEN.items() for version in versions
               if requirements[canonicalize_name(name)].specifier.contains(version)]
    assert allowed == []
    assert not SpecifierSet(project()["requires-python"]).contains("3.11.2")


def test_the_smoke_set_names_tests_that_exist():
    """The script lists test files by path; a move would silently shrink the smoke set."""
    script = (ROOT / ".ci" / "lowest-deps").read_text()
    listed = re.findall(r"^\s*(tests/\S+?\.py)(?:::(\w+))?\s*\\?$", script, re.MULTILINE)
    assert len(listed) >= 5
    missing = [(path, test) for path, test in listed if not (ROOT / path).is_file()
               or test and f"def {test}(" not in (ROOT / path).read_text()]
    assert missing == []
