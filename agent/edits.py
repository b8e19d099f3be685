"""Search/replace edits: validate every block, then write all of them or none.

A block matches exactly, or else line by line ignoring trailing whitespace and a uniform
indentation difference (the replacement is then re-indented to the file's indentation).
A block that matches nowhere gets a "did you mean" with the closest lines of the file; a
block that matches more than once asks for more context. Paths never leave the root.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

CANDIDATE_MIN_RATIO = 0.5
"""Below this similarity a window is not worth suggesting."""


@dataclass(frozen=True)
class Edit:
    path: str
    search: str
    replace: str


@dataclass
class EditResult:
    ok: bool
    diffs: dict[str, str] = field(default_factory=dict)
    """Relative path -> unified diff of what changed (empty when nothing was written)."""
    created: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def message(self) -> str:
        """What the model reads back."""
        if not self.ok:
            head = "No edits were applied (all-or-nothing); fix the failing block(s) and resend all."
            return "\n\n".join([head, *self.errors])
        if not self.diffs:
            return "Edits matched but changed nothing."
        return "".join(self.diffs.values())


class PathError(ValueError):
    """A path outside the workspace root, or otherwise not allowed."""


def resolve_inside(root: Path, rel: str) -> Path:
    """`root/rel`, refusing absolute paths, `..`, the .git directory and symlink escapes."""
    if not rel or not rel.strip():
        raise PathError("empty path")
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or Path(rel).is_absolute():
        raise PathError(f"{rel}: absolute paths are not allowed; use a path relative to the repo root")
    if ".." in pure.parts:
        raise PathError(f"{rel}: '..' is not allowed; paths must stay inside the repo")
    if pure.parts and pure.parts[0] == ".git":
        raise PathError(f"{rel}: the .git directory is off limits")
    real_root = root.resolve()
    target = (real_root / pure).resolve()
    if not target.is_relative_to(real_root):
        raise PathError(f"{rel}: resolves outside the repo (symlink)")
    return real_root / pure


def unified_diff(rel: str, old: str | None, new: str) -> str:
    """A git-style unified diff; `old` None means the file is new."""
    a = _diff_lines(old or "")
    b = _diff_lines(new)
    fromfile = "/dev/null" if old is None else f"a/{rel}"
    return "".join(difflib.unified_diff(a, b, fromfile, f"b/{rel}"))


def _diff_lines(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def apply_edits(root: Path, edits: list[Edit]) -> EditResult:
    originals: dict[str, str | None] = {}
    contents: dict[str, str] = {}
    targets: dict[str, Path] = {}
    crlf: dict[str, bool] = {}
    errors: list[str] = []
    for number, edit in enumerate(edits, 1):
        label = f"Edit {number} ({edit.path})"
        try:
            target = resolve_inside(root, edit.path)
        except PathError as exc:
            errors.append(f"{label}: {exc}")
            continue
        key = target.relative_to(root.resolve()).as_posix()
        if key not in contents:
            loaded = _load(target)
            if isinstance(loaded, _Unreadable):
                errors.append(f"{label}: {loaded.reason}")
                continue
            originals[key] = loaded
            text = loaded or ""
            crlf[key] = "\r\n" in text
            contents[key] = text.replace("\r\n", "\n")
            targets[key] = target
        exists = originals[key] is not None or bool(contents[key])
        outcome = _apply_one(contents[key], edit, exists)
        if isinstance(outcome, str):
            contents[key] = outcome
        else:
            errors.append(f"{label}: {outcome.problem}")
    if errors:
        return EditResult(ok=False, errors=errors)

    result = EditResult(ok=True)
    for key, text in contents.items():
        old = originals[key]
        if crlf[key]:
            text = text.replace("\n", "\r\n")
        if old == text:
            continue
        _write(targets[key], text)
        if old is None:
            result.created.append(key)
        result.diffs[key] = unified_diff(key, old, text)
    return result


@dataclass
class _Unreadable:
    reason: str


@dataclass
class _Failure:
    problem: str


def _load(target: Path) -> str | None | _Unreadable:
    if not target.exists():
        return None
    if target.is_dir():
        return _Unreadable("is a directory")
    try:
        return target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return _Unreadable("not a UTF-8 text file; it cannot be edited with search/replace")


def _write(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.evoagent-tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    if target.exists():
        os.chmod(tmp, target.stat().st_mode)
    os.replace(tmp, target)


def _apply_one(content: str, edit: Edit, exists: bool) -> str | _Failure:
    search = edit.search.replace("\r\n", "\n")
    replace = edit.replace.replace("\r\n", "\n")
    if not search.strip():
        if content.strip():
            return _Failure(
                "search is empty but the file already has content; quote the lines to replace "
                "(or use the write tool with overwrite=true to replace the whole file)"
            )
        return replace
    count = content.count(search)
    if count == 1:
        return content.replace(search, replace, 1)
    if count > 1:
        lines = _match_lines(content, search)
        return _Failure(
            f"search text matches {count} times (at lines {', '.join(map(str, lines))}); "
            "include more surrounding lines so it matches exactly once"
        )
    return _tolerant(content, search, replace, exists)


def _match_lines(content: str, search: str) -> list[int]:
    lines, start = [], 0
    while (at := content.find(search, start)) != -1:
        lines.append(content.count("\n", 0, at) + 1)
        start = at + 1
    return lines


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _common_indent(lines: list[str]) -> str:
    indents = [_indent(line) for line in lines if line.strip()]
    return min(indents, key=len) if indents else ""


def _normalised(lines: list[str]) -> list[str] | None:
    """Lines without trailing whitespace and without their common indentation; None when the
    indentation is not uniform (a line that does not start with the common prefix)."""
    base = _common_indent(lines)
    out = []
    for line in lines:
        stripped = line.rstrip()
        if not stripped:
            out.append("")
        elif not stripped.startswith(base):
            return None
        else:
            out.append(stripped[len(base) :])
    return out


def _strip_blank_ends(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _tolerant(content: str, search: str, replace: str, exists: bool) -> str | _Failure:
    file_lines = content.split("\n")
    wanted_raw = _strip_blank_ends(search.split("\n"))
    wanted = _normalised(wanted_raw)
    size = len(wanted_raw)
    hits = []
    if wanted is not None:
        for start in range(len(file_lines) - size + 1):
            window = file_lines[start : start + size]
            if _normalised(window) == wanted:
                hits.append(start)
    if len(hits) > 1:
        where = ", ".join(str(h + 1) for h in hits)
        return _Failure(
            f"search text matches {len(hits)} places when whitespace is ignored (at lines "
            f"{where}); include more surrounding lines so it matches exactly once"
        )
    if hits:
        start = hits[0]
        window = file_lines[start : start + size]
        new_lines = _reindent(replace, _common_indent(wanted_raw), _common_indent(window))
        return "\n".join(file_lines[:start] + new_lines + file_lines[start + size :])
    if not exists:
        return _Failure("file does not exist; to create it use an empty search")
    return _Failure("search text not found." + _did_you_mean(file_lines, wanted_raw))


def _reindent(replace: str, old_base: str, new_base: str) -> list[str]:
    if not replace:
        return []
    lines = replace.split("\n")
    if replace.endswith("\n"):
        lines = lines[:-1]  # the window's own line break follows the replacement
    out = []
    for line in lines:
        if not line.strip():
            out.append("")
        elif line.startswith(old_base):
            out.append(new_base + line[len(old_base) :])
        else:
            # Less indented than the search block: remove the difference from the new base.
            own = _indent(line)
            keep = max(0, len(new_base) - (len(old_base) - len(own)))
            out.append(new_base[:keep] + line.lstrip())
    return out


def _did_you_mean(file_lines: list[str], wanted: list[str], shown: int = 2) -> str:
    size = max(1, len(wanted))
    target = "\n".join(line.strip() for line in wanted)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    scored = []
    for start in range(max(1, len(file_lines) - size + 1)):
        window = "\n".join(line.strip() for line in file_lines[start : start + size])
        matcher.set_seq1(window)
        if matcher.real_quick_ratio() < CANDIDATE_MIN_RATIO:
            continue
        if matcher.quick_ratio() < CANDIDATE_MIN_RATIO:
            continue
        ratio = matcher.ratio()
        if ratio >= CANDIDATE_MIN_RATIO:
            scored.append((ratio, start))
    if not scored:
        return " No similar lines in the file; read it again before editing."
    scored.sort(key=lambda item: (-item[0], item[1]))
    picked: list[tuple[float, int]] = []
    for ratio, start in scored:
        if all(abs(start - other) >= size for _, other in picked):
            picked.append((ratio, start))
        if len(picked) == shown:
            break
    parts = []
    for ratio, start in picked:
        end = min(len(file_lines), start + size)
        body = "\n".join(f"{n + 1:>6}| {file_lines[n]}" for n in range(start, end))
        parts.append(f"Did you mean lines {start + 1}-{end} ({ratio:.0%} similar)?\n{body}")
    return "\n" + "\n".join(parts)
