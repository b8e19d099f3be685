"""The memory record: one commit seen as intent -> code.

These dataclasses are the seam between mining (which produces them), the store (which
persists them in LanceDB) and search/locate (which read them back).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Bounds chosen so one memory stays small enough to show a model: a huge vendored diff
# must not blow up the store or a prompt.
DIFF_EXCERPT_CHARS = 4000
MESSAGE_CHARS = 8000


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
MAX_CHANGED_IDENTIFIERS = 120
# An added or removed line, not a `+++ b/path` / `--- a/path` file header.
_CHANGED_LINE = re.compile(r"^[+-](?!\+\+ |-- ).*$", re.M)


def changed_identifiers(diff: str) -> list[str]:
    """Names on the added and removed lines of a diff: the code a commit touched, so a
    search for `bulk_create` finds the commits that changed it even when the message
    does not say so."""
    if not diff:
        return []
    changed = "\n".join(_CHANGED_LINE.findall(diff))
    return list(dict.fromkeys(_IDENTIFIER.findall(changed)))[:MAX_CHANGED_IDENTIFIERS]


@dataclass
class FileChange:
    path: str
    old_path: str = ""
    change: str = "M"  # A added, M modified, D deleted, R renamed
    added: int = 0
    removed: int = 0
    binary: bool = False


@dataclass
class Memory:
    sha: str
    parents: list[str]
    author: str
    author_email: str
    authored_at: int  # unix seconds
    committed_at: int  # unix seconds
    subject: str
    message: str
    issue_refs: list[str] = field(default_factory=list)
    files: list[FileChange] = field(default_factory=list)
    # "path::Symbol" for each hunk's enclosing function/class, deduplicated, in diff order.
    symbols: list[str] = field(default_factory=list)
    tests_touched: list[str] = field(default_factory=list)
    diff_excerpt: str = ""
    is_merge: bool = False
    # Derived fields: filled lazily by a model (a later issue); mining leaves them empty.
    keywords: list[str] = field(default_factory=list)
    problem: str = ""
    root_cause: str = ""
    solution: str = ""

    @property
    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    def search_text(self) -> str:
        """The document the full-text index sees: intent first, then where it landed."""
        parts = [self.subject, self.message, " ".join(self.issue_refs)]
        parts += [" ".join(self.paths), " ".join(s.split("::", 1)[-1] for s in self.symbols)]
        parts += [" ".join(self.keywords), self.problem, self.root_cause, self.solution]
        parts.append(" ".join(changed_identifiers(self.diff_excerpt)))
        return "\n".join(p for p in parts if p)

    def to_row(self) -> dict:
        # By hand: dataclasses.asdict deep-copies every value and was most of a batch's cost.
        return {
            "sha": self.sha,
            "parents": self.parents,
            "author": self.author,
            "author_email": self.author_email,
            "authored_at": self.authored_at,
            "committed_at": self.committed_at,
            "subject": self.subject,
            "message": self.message,
            "issue_refs": self.issue_refs,
            "files": [
                {
                    "path": f.path,
                    "old_path": f.old_path,
                    "change": f.change,
                    "added": f.added,
                    "removed": f.removed,
                    "binary": f.binary,
                }
                for f in self.files
            ],
            "symbols": self.symbols,
            "tests_touched": self.tests_touched,
            "diff_excerpt": self.diff_excerpt,
            "is_merge": self.is_merge,
            "keywords": self.keywords,
            "problem": self.problem,
            "root_cause": self.root_cause,
            "solution": self.solution,
            "text": self.search_text(),
        }

    @classmethod
    def from_row(cls, row: dict) -> Memory:
        data = {k: row[k] for k in cls.__dataclass_fields__ if k in row}
        data["files"] = [FileChange(**f) for f in (row.get("files") or [])]
        for key in ("parents", "issue_refs", "symbols", "tests_touched", "keywords"):
            data[key] = list(data.get(key) or [])
        return cls(**data)
