"""Which commits of the first-parent history are worth validating as tasks.

A candidate is a commit C with a parent P (merges included: their diff against the first
parent, which is how a project that merges pull requests lands each one) whose diff touches
both source and tests. Everything else is decided here, cheaply, by paths and line counts:
a commit that mostly bumps dependencies (more than half its changed lines in dependency
manifests or lock files), one that only touches docs or lint/format config or only changes
whitespace, and one that touches tests only or source only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from evoagent.memory.commit_names import is_code, is_test_path
from evoagent.sandbox.workspace import git

from .patch_split import SplitPatch, split_patch

# Rejection reasons (stable strings: `tasks mine --json` counts by them).
ROOT_COMMIT = "root commit"
DEPENDENCY_BUMP = "dependency bump"
DOCS_FORMAT_ONLY = "docs/format only"
NO_TEST_CHANGE = "no test change"
NO_SOURCE_CHANGE = "no source change"
NO_RUNNABLE_TEST = "no runnable test file"

_DEP_FILE = re.compile(
    r"^(?:requirements[\w.-]*\.(?:txt|in)|constraints[\w.-]*\.txt|Pipfile(?:\.lock)?|poetry\.lock"
    r"|uv\.lock|pdm\.lock|pyproject\.toml|setup\.cfg|setup\.py|package(?:-lock)?\.json"
    r"|yarn\.lock|pnpm-lock\.yaml|go\.(?:mod|sum)|Cargo\.(?:toml|lock)|Gemfile(?:\.lock)?"
    r"|composer\.(?:json|lock)|[\w.-]+\.lock)$"
)
_LINT_FILE = re.compile(
    r"^(?:\.pre-commit-config\.yaml|\.flake8|\.pylintrc|pylintrc|\.?ruff\.toml|\.editorconfig"
    r"|\.prettierrc.*|\.prettierignore|\.eslintrc.*|\.isort\.cfg|mypy\.ini|\.clang-format"
    r"|\.rubocop\.yml|\.golangci\.ya?ml|\.gitignore|\.gitattributes|\.mailmap|\.git-blame-ignore-revs)$"
)
_DOC_EXT = frozenset({"md", "rst", "txt", "adoc", "rdoc", "textile"})
_DOC_NAME = re.compile(
    r"^(?:README|CHANGES|CHANGELOG|HISTORY|NEWS|AUTHORS|CONTRIBUTORS|LICENSE|COPYING)"
)
_DOC_DIRS = frozenset({"doc", "docs", "documentation", "examples", "example"})


def is_dependency_file(path: str) -> bool:
    return bool(_DEP_FILE.match(path.rsplit("/", 1)[-1]))


def is_docs_or_lint(path: str) -> bool:
    *dirs, name = path.split("/")
    if dirs and dirs[0].lower() in _DOC_DIRS and not is_test_path(path):
        return True
    ext = name.rpartition(".")[2].lower() if "." in name else ""
    return (
        ext in _DOC_EXT
        and not is_dependency_file(path)
        or bool(_DOC_NAME.match(name) or _LINT_FILE.match(name) or path.startswith(".github/"))
    )


def is_source(path: str) -> bool:
    return is_code(path) and not is_test_path(path) and not is_docs_or_lint(path)


@dataclass
class Commit:
    sha: str
    parents: list[str]
    date: str
    """Committer date, ISO 8601."""
    message: str

    @property
    def parent(self) -> str | None:
        return self.parents[0] if self.parents else None

    @property
    def subject(self) -> str:
        return self.message.strip().splitlines()[0] if self.message.strip() else ""


@dataclass
class Candidate:
    commit: Commit
    patch: str
    """`git diff --binary --full-index --no-renames P C`."""
    split: SplitPatch
    knowledge_id: str = ""
    """Set for an approved fix (from_knowledge): C is not a commit but P plus `patch`, and
    `commit` is a stand-in (sha `knowledge:<id>`, parent P, the issue text as message)."""
    statement_source: str = "commit message"
    """What `commit.message` is: the commit message, or a knowledge record's issue text."""


@dataclass
class NotCandidate:
    commit: Commit
    reason: str
    detail: str = ""


def first_parent_history(repo: Path, last: int | None, since: str | None) -> list[Commit]:
    """First-parent commits from HEAD, newest first."""
    args = ["log", "--first-parent", "--format=%H%x00%P%x00%cI%x00%B%x1e"]
    if last:
        args.append(f"--max-count={last}")
    if since:
        args.append(f"--since={since}")
    try:
        out = git(repo, *args, "HEAD")
    except Exception:  # an empty repository: no history
        return []
    commits = []
    for record in out.split("\x1e"):
        record = record.lstrip("\n")
        if not record:
            continue
        sha, parents, date, message = record.split("\x00", 3)
        commits.append(Commit(sha, parents.split(), date, message.strip("\n")))
    return commits


def _numstat(repo: Path, parent: str, sha: str, *extra: str) -> dict[str, int]:
    out = git(repo, "diff", "--numstat", "--no-renames", *extra, parent, sha)
    lines: dict[str, int] = {}
    for row in out.splitlines():
        added, deleted, path = row.split("\t", 2)
        count = (int(added) if added != "-" else 1) + (int(deleted) if deleted != "-" else 1)
        lines[path] = count
    return lines


def classify(repo: Path, commit: Commit) -> Candidate | NotCandidate:
    """A candidate with its split gold patch, or why this commit is not one."""
    if commit.parent is None:
        return NotCandidate(commit, ROOT_COMMIT)
    lines = _numstat(repo, commit.parent, commit.sha)
    total = sum(lines.values()) or 1
    deps = [p for p in lines if is_dependency_file(p)]
    dep_lines = sum(lines[p] for p in deps)
    if deps and dep_lines * 2 > total:
        return NotCandidate(
            commit, DEPENDENCY_BUMP, f"{dep_lines}/{total} changed lines in {', '.join(deps[:5])}"
        )
    tests = [p for p in lines if is_test_path(p)]
    source = [p for p in lines if is_source(p)]
    if all(is_docs_or_lint(p) for p in lines):
        return NotCandidate(commit, DOCS_FORMAT_ONLY)
    if not tests:
        return NotCandidate(commit, NO_TEST_CHANGE)
    if not source:
        return NotCandidate(commit, NO_SOURCE_CHANGE)
    meaningful = _numstat(repo, commit.parent, commit.sha, "-w", "--ignore-blank-lines")
    if not any(meaningful.get(p, 0) for p in source):
        return NotCandidate(commit, DOCS_FORMAT_ONLY, "source changes are whitespace only")
    patch = git(
        repo,
        "diff",
        "--binary",
        "--full-index",
        "--no-renames",
        "--no-color",
        "--no-ext-diff",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        commit.parent,
        commit.sha,
    )
    split = split_patch(patch)
    if not split.runnable_test_files():
        return NotCandidate(commit, NO_RUNNABLE_TEST, ", ".join(split.test_files[:5]))
    return Candidate(commit, patch, split)


def walk(
    repo: Path, commits: list[Commit], decided: set[str]
) -> Iterator[Candidate | NotCandidate]:
    """Classify each undecided commit, lazily, in the order given."""
    for commit in commits:
        if commit.sha not in decided:
            yield classify(repo, commit)
