"""A git patch cut into per-file sections, parsed strictly, and joined back byte for byte.

The input is `git diff --binary` output (text hunks, `GIT binary patch` data, renames, mode
changes, new and deleted files, symlinks, gitlinks, C-quoted paths). The patch may have been
written by code we do not trust (a sandbox can shape paths and contents), so a section is
`well_formed` only when every line is one git itself emits and the names on all its lines
agree: a section that parses here is read by `git apply` as the same change to the same
paths, and anything else (text `git apply` would skip, or read as a second, traditional
patch) makes the section malformed, for the caller to drop. `join(split(p).sections)` with
nothing left out is `p` minus the text before the first `diff --git` line.

`agent/patches.py` (unidiff, for the app's hunk review) does not keep `GIT binary patch`
data or reject ambiguous headers; this module is the one to decide on.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

SYMLINK = "120000"
GITLINK = "160000"
_MODE = re.compile(r"100[0-7]{3}|120000|160000")
_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_INDEX = re.compile(r"([0-9a-f]+)\.\.([0-9a-f]+)(?: ([0-7]+))?")
_SCORE = re.compile(r"\d+%")
_BINARY_SIZE = re.compile(r"(literal|delta) (\d+)")
_DIFFER = re.compile(r"(?:Binary files|Files) .* differ")
_MAX_LINK = 4096
"""Bytes of a symlink target worth decoding (PATH_MAX); a bigger one is not a link target."""

# Header lines git writes between `diff --git` and the changes, by the field they set.
_HEADER_KEYS = (
    ("old mode ", "old_mode"), ("new mode ", "new_mode"),
    ("deleted file mode ", "deleted"), ("new file mode ", "new_file"),
    ("copy from ", "copy_from"), ("copy to ", "copy_to"),
    ("rename old ", "rename_from"), ("rename new ", "rename_to"),
    ("rename from ", "rename_from"), ("rename to ", "rename_to"),
    ("similarity index ", "similarity"), ("dissimilarity index ", "similarity"),
    ("index ", "index"), ("--- ", "minus"), ("+++ ", "plus"),
)
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_C_QUOTES = {value: key for key, value in _C_ESCAPES.items()}


class Malformed(ValueError):
    """A section that is not exactly what git writes (the message says where)."""


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    lines: tuple[tuple[str, str, bool], ...]
    """(" " | "-" | "+", the line without its newline, whether it ends with a newline)."""


@dataclass(frozen=True)
class Section:
    """One file's part of a patch."""

    text: str
    """Exactly this section's text, its `diff --git` line included."""
    old_path: str | None = None
    """The path before (None: a new file). Paths are unquoted, without the a/ b/ prefix,
    non-UTF-8 bytes kept as surrogate escapes."""
    new_path: str | None = None
    """The path after (None: a deleted file)."""
    old_mode: str | None = None
    new_mode: str | None = None
    binary: bool = False
    hunks: tuple[Hunk, ...] = ()
    binary_data: tuple[str, int, bytes] | None = None
    """The forward binary hunk: ("literal" | "delta", inflated size, deflated bytes)."""
    copy: bool = False
    problem: str | None = None
    """Why the section is malformed (None: well formed). A malformed section's paths and
    modes are whatever could be read, possibly None."""

    @property
    def well_formed(self) -> bool:
        return self.problem is None

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the section names (both sides of a rename or copy), in order."""
        out: list[str] = []
        for path in (self.old_path, self.new_path):
            if path is not None and path not in out:
                out.append(path)
        return tuple(out)

    @property
    def display_path(self) -> str:
        if self.old_path and self.new_path and self.old_path != self.new_path:
            return f"{self.old_path} -> {self.new_path}"
        return self.new_path or self.old_path or ""

    @property
    def is_new(self) -> bool:
        return self.old_path is None and self.new_path is not None

    @property
    def is_deleted(self) -> bool:
        return self.new_path is None and self.old_path is not None

    @property
    def is_symlink(self) -> bool:
        """The file is a symlink after the change."""
        return self.new_path is not None and self.new_mode == SYMLINK

    @property
    def is_gitlink(self) -> bool:
        """Either side is a submodule commit (mode 160000)."""
        return GITLINK in (self.old_mode, self.new_mode)

    @property
    def link_target(self) -> str | None:
        """A symlink's target when the patch alone tells it (a new link, a hunk that rewrites
        the whole one-line target, a literal binary patch); None otherwise."""
        return self.new_text(None) if self.is_symlink else None

    def new_text(self, old: str | None) -> str | None:
        """The file's content after the change, given its content before (`old`, None when
        unknown); None when that cannot be known exactly (a deletion, a binary delta, hunks
        that do not match `old`). Bytes that are not UTF-8 come back as surrogate escapes."""
        if self.new_path is None or self.problem is not None:
            return None
        if self.binary_data is not None:
            return _inflate_literal(self.binary_data)
        if self.binary:
            return None
        if self.is_new:
            old = ""
        if not self.hunks:
            return old
        if old is None:
            return _whole_file(self.hunks)
        return apply_hunks(old, self.hunks)


@dataclass(frozen=True)
class ParsedPatch:
    preamble: str
    """Text before the first `diff --git` line (git would still read a traditional patch
    there, so a caller that filters leaves it out)."""
    sections: list[Section]


def split(patch: str) -> ParsedPatch:
    """The patch cut at every `diff --git` line, each section parsed (see `Section`)."""
    chunks: list[list[str]] = []
    preamble: list[str] = []
    for line in _lines(patch):
        if line.startswith("diff --git "):
            chunks.append([line])
        elif chunks:
            chunks[-1].append(line)
        else:
            preamble.append(line)
    return ParsedPatch("".join(preamble), [parse_section("".join(c)) for c in chunks])


def join(sections: Iterable[Section]) -> str:
    return "".join(section.text for section in sections)


def parse_section(text: str) -> Section:
    """One `diff --git` section; a malformed one comes back with `problem` set."""
    fields: dict[str, str] = {}
    try:
        return _parse(text, fields)
    except Malformed as exc:
        old = _maybe_name(fields.get("rename_from") or fields.get("copy_from"))
        new = _maybe_name(fields.get("rename_to") or fields.get("copy_to"))
        header = _header_def_name(_lines(text)[0][len("diff --git "):].rstrip("\n"))
        return Section(text, old or header, new or header, problem=str(exc))


def apply_hunks(old: str, hunks: Iterable[Hunk]) -> str | None:
    """`old` with the hunks applied at exactly their line numbers (a patch made from `old`
    applies there); None when a hunk does not match."""
    source = _lines(old)
    out: list[str] = []
    at = 0
    for hunk in hunks:
        start = hunk.old_start - 1 if hunk.old_len else hunk.old_start
        if start < at or start > len(source):
            return None
        out.extend(source[at:start])
        at = start
        for tag, body, newline in hunk.lines:
            line = body + ("\n" if newline else "")
            if tag in " -":
                if at >= len(source) or source[at] != line:
                    return None
                at += 1
            if tag in " +":
                out.append(line)
    out.extend(source[at:])
    return "".join(out)


def c_unquote(quoted: str) -> str:
    """A C-quoted git path ("...") → the path; Malformed when it is not exactly one."""
    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        raise Malformed("a quoted path without its closing quote")
    body, out, i = quoted[1:-1], bytearray(), 0
    while i < len(body):
        char = body[i]
        if char == '"':
            raise Malformed("an unescaped quote inside a quoted path")
        if char != "\\":
            out += char.encode("utf-8", "surrogateescape")
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt in _C_ESCAPES:
            out.append(_C_ESCAPES[nxt])
            i += 2
        elif re.fullmatch(r"[0-3][0-7]{2}", body[i + 1 : i + 4]):
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
        else:
            raise Malformed("an unknown escape in a quoted path")
    return out.decode("utf-8", "surrogateescape")


def c_quote(path: str, quote_high: bool = True) -> str:
    """The path as git writes it: bare, or C-quoted when it holds a control character, a
    quote, a backslash or (with core.quotePath, the default) a byte above 0x7f."""
    raw = path.encode("utf-8", "surrogateescape")
    if not any(_needs_quote(b, quote_high) for b in raw):
        return path
    out = []
    for byte in raw:
        if byte in _C_QUOTES:
            out.append("\\" + _C_QUOTES[byte])
        elif _needs_quote(byte, quote_high):
            out.append(f"\\{byte:03o}")
        else:
            out.append(chr(byte))
    return '"' + "".join(out) + '"'


# --- parsing ------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """Lines ending in "\\n" (the last may lack it). Only "\\n" ends a line, as for git:
    str.splitlines would also cut at \\r, \\f, \\x1c, U+2028 and others."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _parse(text: str, fields: dict[str, str]) -> Section:
    lines = _lines(text)
    header_rest = lines[0][len("diff --git "):]
    if not header_rest.endswith("\n"):
        raise Malformed("the diff --git line is cut short")
    i = 1
    while i < len(lines):
        key = _header_key(lines[i])
        if key is None:
            break
        prefix, name = key
        if not lines[i].endswith("\n"):
            raise Malformed(f"the {prefix.strip()} line is cut short")
        if name in fields:
            raise Malformed(f"two {prefix.strip()} lines")
        fields[name] = lines[i][len(prefix):-1]
        i += 1
    hunks: list[Hunk] = []
    binary_data = None
    binary = False
    if i < len(lines) and lines[i].startswith("@@ -"):
        i = _parse_hunks(lines, i, hunks)
    elif i < len(lines) and lines[i] == "GIT binary patch\n":
        i, binary_data = _parse_binary(lines, i + 1)
        binary = True
    elif i < len(lines) and _DIFFER.fullmatch(lines[i].rstrip("\n")):
        i, binary = i + 1, True
    if i != len(lines):
        raise Malformed("unexpected text after the file's changes")
    return _section(text, header_rest[:-1], fields, tuple(hunks), binary, binary_data)


def _header_key(line: str) -> tuple[str, str] | None:
    for prefix, name in _HEADER_KEYS:
        if line.startswith(prefix):
            return prefix, name
    return None


def _parse_hunks(lines: list[str], i: int, hunks: list[Hunk]) -> int:
    while i < len(lines) and lines[i].startswith("@@ -"):
        match = _HUNK.match(lines[i])
        if not match or not lines[i].endswith("\n"):
            raise Malformed("a hunk header git cannot read")
        old_start, old_len, new_start, new_len = (
            int(g) if g is not None else 1 for g in match.groups()
        )
        i += 1
        body: list[tuple[str, str, bool]] = []
        old_left, new_left, changed = old_len, new_len, False
        while old_left or new_left:
            if i >= len(lines) or not lines[i].endswith("\n"):
                raise Malformed("a hunk shorter than its header says")
            line = lines[i]
            tag = " " if line == "\n" else line[0]  # git reads an empty line as context
            if tag == "\\" and line.startswith("\\ ") and len(line) >= 12 and body:
                body[-1] = (body[-1][0], body[-1][1], False)
            elif tag == " " and old_left and new_left:
                old_left, new_left = old_left - 1, new_left - 1
                body.append((" ", line[1:-1], True))
            elif tag == "-" and old_left:
                old_left, changed = old_left - 1, True
                body.append(("-", line[1:-1], True))
            elif tag == "+" and new_left:
                new_left, changed = new_left - 1, True
                body.append(("+", line[1:-1], True))
            else:
                raise Malformed("a hunk line that does not fit its header")
            i += 1
        if i < len(lines) and lines[i].startswith("\\ ") and len(lines[i]) >= 12 and body:
            body[-1] = (body[-1][0], body[-1][1], False)
            i += 1
        if not changed:
            raise Malformed("a hunk that changes nothing")
        hunks.append(Hunk(old_start, old_len, new_start, new_len, tuple(body)))
    return i


def _parse_binary(lines: list[str], i: int) -> tuple[int, tuple[str, int, bytes]]:
    forward = None
    for _ in range(2):  # the forward hunk, then the optional reverse one
        if i >= len(lines):
            break
        match = _BINARY_SIZE.fullmatch(lines[i].rstrip("\n"))
        if not match or not lines[i].endswith("\n"):
            break
        data = bytearray()
        i += 1
        while True:
            if i >= len(lines) or not lines[i].endswith("\n"):
                raise Malformed("a binary patch without its closing blank line")
            line = lines[i][:-1]
            i += 1
            if not line:
                break
            data += _base85_line(line)
        if forward is None:
            forward = (match.group(1), int(match.group(2)), bytes(data))
    if forward is None:
        raise Malformed("a binary patch without literal or delta data")
    return i, forward


def _base85_line(line: str) -> bytes:
    """One line of git's binary patch: a length letter, then base85 (git's alphabet is
    RFC 1924's, the one base64.b85decode reads)."""
    letter, encoded = line[0], line[1:]
    if "A" <= letter <= "Z":
        size = ord(letter) - ord("A") + 1
    elif "a" <= letter <= "z":
        size = ord(letter) - ord("a") + 27
    else:
        raise Malformed("a binary patch line without its length letter")
    most = len(encoded) // 5 * 4
    if not encoded or len(encoded) % 5 or not most - 4 < size <= most:
        raise Malformed("a binary patch line of the wrong length")
    try:
        return base64.b85decode(encoded)[:size]
    except ValueError:
        raise Malformed("a binary patch line that is not base85") from None


def _inflate_literal(data: tuple[str, int, bytes]) -> str | None:
    method, size, deflated = data
    if method != "literal" or size > _MAX_LINK:
        return None
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(deflated, size + 1)
    except zlib.error:
        return None
    if len(raw) != size or not inflater.eof:
        return None
    return raw.decode("utf-8", "surrogateescape")


def _whole_file(hunks: tuple[Hunk, ...]) -> str | None:
    """The new content when one hunk spans the whole new file: it starts at line 1 and its
    last new line has no newline (nothing can follow it)."""
    if len(hunks) != 1 or hunks[0].new_start > 1:
        return None
    new = [(body, newline) for tag, body, newline in hunks[0].lines if tag in " +"]
    if not new or new[-1][1]:
        return None
    return "".join(body + ("\n" if newline else "") for body, newline in new)


def _section(
    text: str,
    header: str,
    fields: dict[str, str],
    hunks: tuple[Hunk, ...],
    binary: bool,
    binary_data: tuple[str, int, bytes] | None,
) -> Section:
    is_new, is_deleted = "new_file" in fields, "deleted" in fields
    rename = "rename_from" in fields or "rename_to" in fields
    copy = "copy_from" in fields or "copy_to" in fields
    if is_new + is_deleted + rename + copy > 1:
        raise Malformed("a section that is more than one of new, deleted, renamed, copied")
    if rename and not ("rename_from" in fields and "rename_to" in fields):
        raise Malformed("a rename without both of its names")
    if copy and not ("copy_from" in fields and "copy_to" in fields):
        raise Malformed("a copy without both of its names")

    old = new = None
    if rename or copy:
        kind = "rename" if rename else "copy"
        old = _plain_name(fields[f"{kind}_from"])
        new = _plain_name(fields[f"{kind}_to"])
    minus = _side_name(fields.get("minus"), "a/")
    plus = _side_name(fields.get("plus"), "b/")
    if hunks and ("minus" not in fields or "plus" not in fields):
        raise Malformed("hunks without their --- and +++ lines")
    if ("minus" in fields) != ("plus" in fields):
        raise Malformed("a --- line without its +++ line, or the reverse")
    if "minus" in fields:
        if (minus is None) != is_new or (plus is None) != is_deleted:
            raise Malformed("/dev/null where the file exists, or a name where it does not")
        old = _agree(old, minus, "old")
        new = _agree(new, plus, "new")
    if old is None and new is None:
        old = new = _header_def_name(header)
        if old is None:
            raise Malformed("no file name git can read from the diff --git line")
    old = old if old is not None else (None if is_new else new)
    new = new if new is not None else (None if is_deleted else old)
    shown_old, shown_new = old if old is not None else new, new if new is not None else old
    if header not in {
        f"{c_quote('a/' + shown_old, high)} {c_quote('b/' + shown_new, high)}"
        for high in (True, False)
    }:
        raise Malformed("the diff --git line names other files than the rest of the section")

    old_mode, new_mode = _modes(fields, is_new, is_deleted)
    if binary and hunks:
        raise Malformed("text hunks and binary data in one section")
    if not (hunks or binary or is_new or is_deleted or rename or copy or old_mode != new_mode):
        raise Malformed("a section that changes nothing")
    return Section(text, None if is_new else old, None if is_deleted else new, old_mode,
                   new_mode, binary, hunks, binary_data, copy)


def _modes(fields: dict[str, str], is_new: bool, is_deleted: bool) -> tuple[str | None, str | None]:
    """(old mode, new mode); both None for a pure rename or copy, where git writes no mode
    (the file keeps the one it has)."""

    def mode(value: str | None) -> str | None:
        if value is not None and not _MODE.fullmatch(value):
            raise Malformed(f"an unknown file mode {value[:12]!r}")
        return value

    index_mode = None
    if "index" in fields:
        match = _INDEX.fullmatch(fields["index"])
        if not match:
            raise Malformed("an index line git does not write")
        index_mode = mode(match.group(3))
    if "similarity" in fields and not _SCORE.fullmatch(fields["similarity"]):
        raise Malformed("a similarity line git does not write")
    if index_mode is not None and any(
        k in fields for k in ("old_mode", "new_mode", "new_file", "deleted")
    ):
        raise Malformed("a mode on the index line beside mode lines")
    if ("old_mode" in fields) != ("new_mode" in fields):
        raise Malformed("an old mode without a new mode, or the reverse")
    if index_mode is not None:
        return index_mode, index_mode
    if is_new:
        return None, mode(fields["new_file"])
    if is_deleted:
        return mode(fields["deleted"]), None
    return mode(fields.get("old_mode")), mode(fields.get("new_mode"))


def _agree(current: str | None, other: str | None, side: str) -> str | None:
    if current is not None and other is not None and current != other:
        raise Malformed(f"two different {side} names in one section")
    return current if current is not None else other


def _plain_name(raw: str) -> str:
    """A name on a rename/copy line: the whole rest of the line, C-quoted or bare."""
    name = c_unquote(raw) if raw.startswith('"') else raw
    if not name:
        raise Malformed("an empty file name")
    return name


def _side_name(raw: str | None, prefix: str) -> str | None:
    """The name on a ---/+++ line (None for /dev/null), its a/ or b/ prefix removed."""
    if raw is None or raw == "/dev/null":
        return None
    # git writes a tab after a name that holds a space (quoted or not); a bare name ends at
    # the first tab, and nothing may follow it.
    if raw.startswith('"'):
        end = _closing_quote(raw)
        if raw[end + 1 :] not in ("", "\t"):
            raise Malformed("text after the file name on a ---/+++ line")
        name = c_unquote(raw[: end + 1])
    else:
        name, _, rest = raw.partition("\t")
        if rest:
            raise Malformed("text after the file name on a ---/+++ line")
    if not name.startswith(prefix) or len(name) == len(prefix):
        raise Malformed(f"a file name without its {prefix} prefix")
    return name[len(prefix):]


def _header_def_name(rest: str) -> str | None:
    """The one name of `diff --git a/N b/N` (both sides the same, as git needs it when no
    other line names the file); None when the line does not have that form."""
    try:
        if rest.startswith('"'):
            end = _closing_quote(rest)
            first, second = c_unquote(rest[: end + 1]), rest[end + 2 :]
            if rest[end + 1 : end + 2] != " ":
                return None
            second = c_unquote(second) if second.startswith('"') else second
        elif '"' in rest:
            cut = rest.index(' "')
            first, second = rest[:cut], c_unquote(rest[cut + 1 :])
        else:
            if len(rest) % 2 == 0:
                return None
            half = len(rest) // 2
            first, second = rest[:half], rest[half + 1 :]
            if rest[half] != " ":
                return None
    except (Malformed, ValueError):
        return None
    if first.startswith("a/") and second.startswith("b/") and first[2:] == second[2:] != "":
        return first[2:]
    return None


def _closing_quote(text: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i
        i += 1
    raise Malformed("a quoted path without its closing quote")


def _maybe_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        return _plain_name(raw)
    except Malformed:
        return None


def _needs_quote(byte: int, quote_high: bool) -> bool:
    return byte < 0x20 or byte in (0x22, 0x5C, 0x7F) or (quote_high and byte >= 0x80)
