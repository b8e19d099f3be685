"""A commit's gold patch split into its code part and its test part, and what it tells
about files and tests.

The patch is `git diff --binary --full-index --no-renames P C` (a rename is a deletion plus
an addition, so each side lands in the part its path belongs to). A file section is in the
test part when `is_test_path` says so (test directories, test_*.py, conftest.py, ...); test
data under a test directory goes with the tests, as in SWE-bench. Which test functions the
diff added or changed is read off the test part: names defined on changed lines and the
enclosing definition git prints in each hunk header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from evoagent.memory.commit_names import (
    is_runnable_test,
    is_test_path,
    path_from_diff_header,
    symbol_name,
)

_DEFINED = re.compile(r"^[+-]\s*(?:async\s+)?(?:def|class|func)\s+(?:\([^)]*\)\s*)?(\w+)")


@dataclass
class FilePatch:
    path: str
    """The file's path (the new path; the old one for a deletion)."""
    text: str
    """This file's section of the patch, `diff --git` line included."""
    deleted: bool = False

    @property
    def is_test(self) -> bool:
        return is_test_path(self.path)


@dataclass
class SplitPatch:
    code: str
    """The code part: every file section that is not a test path (the "gold" fix)."""
    tests: str
    """The test part: every file section under a test path (what the kernel applies)."""
    code_files: list[str] = field(default_factory=list)
    test_files: list[str] = field(default_factory=list)
    deleted_test_files: list[str] = field(default_factory=list)

    def runnable_test_files(self) -> list[str]:
        """Touched test files that a test runner can be pointed at (not deleted, not
        conftest or helpers or data)."""
        return [p for p in self.test_files if is_runnable_test(p)]


def file_sections(patch: str) -> list[FilePatch]:
    """The patch cut at each `diff --git` line, with the path each section is about."""
    sections: list[FilePatch] = []
    current: list[str] = []

    def close() -> None:
        if not current:
            return
        header = current[0]
        path = path_from_diff_header(header[len("diff --git ") :].rstrip("\n").encode())
        deleted = any(line.startswith("deleted file mode") for line in current[1:6])
        for line in current[1:6]:
            if line.startswith("+++ b/"):
                path = line[len("+++ b/") :].rstrip("\n")
            elif line.startswith("--- a/") and deleted:
                path = line[len("--- a/") :].rstrip("\n")
        sections.append(FilePatch(path, "".join(current), deleted))

    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git "):
            close()
            current = [line]
        elif current:
            current.append(line)
    close()
    return sections


def split_patch(patch: str) -> SplitPatch:
    code: list[str] = []
    tests: list[str] = []
    result = SplitPatch("", "")
    for section in file_sections(patch):
        if section.is_test:
            tests.append(section.text)
            if section.deleted:
                result.deleted_test_files.append(section.path)
            else:
                result.test_files.append(section.path)
        else:
            code.append(section.text)
            result.code_files.append(section.path)
    result.code = "".join(code)
    result.tests = "".join(tests)
    return result


def changed_test_names(test_patch: str) -> dict[str, set[str]]:
    """Per test file, the functions/classes the patch changed: for each changed line, the
    nearest definition above it (in the hunk, else git's hunk-header context). That is what
    "a test the diff added or changed" means here."""
    names: dict[str, set[str]] = {}
    for section in file_sections(test_patch):
        found = names.setdefault(section.path, set())
        current = ""
        for line in section.text.splitlines():
            if line.startswith("@@"):
                context = line.split("@@", 2)[-1].strip()
                current = symbol_name(context) if context else ""
                continue
            if line.startswith(("+++", "---")) or line[:1] not in ("+", "-", " "):
                continue
            match = _DEFINED.match("+" + line[1:])
            if match and line[:1] != "-":
                current = match.group(1)
            if line[:1] in ("+", "-") and line[1:].strip() and current:
                found.add(current)
    return names


def touched_by_diff(test_id: str, names: dict[str, set[str]]) -> bool:
    """Does this test id (`file::Class::name[param]`) name a function or class the diff
    changed in that file?"""
    file, _, rest = test_id.partition("::")
    changed = names.get(file)
    if not changed:
        return False
    parts = [part.split("[", 1)[0] for part in rest.split("::") if part]
    return any(part in changed for part in parts)
