"""One hunk of a patch under review: a checkbox line and the hunk as a diff view.

The diff view shows the hunk as the patch has it (its own +/- lines, not a fresh diff of the
two sides) and numbers its lines from the hunk header, so line 7 of the file reads 7.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static
from textual_diff_view import DiffView

Opcode = tuple[str, int, int, int, int]
"""difflib's shape: (tag, i1, i2, j1, j2) over the before and after lines."""

HEADER = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")
INNER_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
"""Characters `str.splitlines` breaks on inside one diff line: the diff view splits the code
with it, so one of them would shift every line after it."""


@dataclass(frozen=True)
class HunkLines:
    """One hunk read from its text: each side's lines, the edits between them and where each
    side starts in its file (1-based)."""

    before: list[str]
    after: list[str]
    opcodes: list[Opcode]
    old_start: int
    new_start: int


def read_hunk(text: str) -> HunkLines:
    """`text` starts with its "@@ -a,b +c,d @@" header; a side with no lines (a new or a
    deleted file) stays empty rather than one blank line."""
    lines = text.split("\n")
    match = HEADER.match(lines[0])
    old_start, new_start = (int(match[1]), int(match[2])) if match else (1, 1)
    before: list[str] = []
    after: list[str] = []
    opcodes: list[Opcode] = []
    removed = added = 0  # the pending run of - and + lines since the last context line

    def flush() -> None:
        nonlocal removed, added
        i, j = len(before), len(after)
        if removed and added:
            opcodes.append(("replace", i - removed, i, j - added, j))
        elif removed:
            opcodes.append(("delete", i - removed, i, j, j))
        elif added:
            opcodes.append(("insert", i, i, j - added, j))
        removed = added = 0

    body = lines[1:-1] if lines[-1] == "" else lines[1:]
    for line in body:
        tag, code = line[:1], INNER_BREAKS.sub(" ", line[1:].removesuffix("\r"))
        if tag == "-":
            before.append(code)
            removed += 1
        elif tag == "+":
            after.append(code)
            added += 1
        elif tag in (" ", ""):  # an empty line is a blank context line some tools write
            flush()
            i, j = len(before), len(after)
            if opcodes and opcodes[-1][0] == "equal":  # extend the context run
                _tag, i1, _i2, j1, _j2 = opcodes[-1]
                opcodes[-1] = ("equal", i1, i + 1, j1, j + 1)
            else:
                opcodes.append(("equal", i, i + 1, j, j + 1))
            before.append(code)
            after.append(code)
        # "\ No newline at end of file" and anything else: not a line of either side
    flush()
    # A side with no lines has a start of 0 in its header ("-0,0"): nothing is numbered.
    return HunkLines(before, after, opcodes, max(old_start, 1), max(new_start, 1))


def _code(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


class HunkDiff(DiffView):
    """A DiffView of one hunk: the hunk's own edits, numbered from the header's starts.

    DiffView numbers line i of its code as i + 1. The code stays the hunk's lines (only
    they are highlighted); what the view indexes is offset by the starts, with blank lines
    in front that no edit reaches.
    """

    def __init__(self, path: str, hunk: HunkLines, split: bool):
        super().__init__(path, path, _code(hunk.before), _code(hunk.after), split=split,
                         annotations=True)
        self.hunk = hunk
        self._hunk_local = False
        """While DiffView highlights the hunk's own lines, the edits are in their indexes."""
        a, b = hunk.old_start - 1, hunk.new_start - 1
        self._numbered = [[(tag, i1 + a, i2 + a, j1 + b, j2 + b)
                           for tag, i1, i2, j1, j2 in hunk.opcodes]] if hunk.opcodes else []

    @property
    def grouped_opcodes(self) -> list[list[Opcode]]:
        if self._hunk_local:
            return [self.hunk.opcodes] if self.hunk.opcodes else []
        return self._numbered

    @property
    def highlighted_code_lines(self) -> tuple[list[Content], list[Content]]:
        self._hunk_local = True
        try:
            lines_a, lines_b = super().highlighted_code_lines  # cached by DiffView
        finally:
            self._hunk_local = False
        blank = Content("")
        return ([blank] * (self.hunk.old_start - 1) + lines_a,
                [blank] * (self.hunk.new_start - 1) + lines_b)


class HunkView(Vertical, can_focus=True):
    """Focusable; space toggles it. `unit` is the id `accept` takes (hunk or file id).
    `read_only`: no checkbox (nothing is decided)."""

    DEFAULT_CSS = """
    HunkView { height: auto; margin: 0 0 1 2; }
    HunkView > .hunk-head { color: $text-muted; }
    HunkView:focus > .hunk-head { background: $accent 30%; color: $text; text-style: bold; }
    HunkView.-rejected DiffView { opacity: 50%; }
    HunkView DiffView > .title { display: none; }
    """

    accepted: reactive[bool] = reactive(True)
    split: reactive[bool] = reactive(False)

    @dataclass
    class Toggled(Message):
        hunk: HunkView

    def __init__(self, unit: str, path: str, header: str, text: str, split: bool = False,
                 read_only: bool = False):
        super().__init__()
        self.unit = unit
        self.path = path
        self.header = header
        self.text = text
        self.read_only = read_only
        self.set_reactive(HunkView.split, split)

    def compose(self) -> ComposeResult:
        yield Static(self._head(), classes="hunk-head")
        yield HunkDiff(self.path, read_hunk(self.text), split=self.split)

    def _head(self) -> Text:
        if self.read_only:
            return Text(self.header)
        mark = "[x]" if self.accepted else "[ ]"
        return Text.assemble((mark, "bold green" if self.accepted else "bold red"), " ",
                             self.header)

    def watch_accepted(self) -> None:
        if self.is_mounted:
            self.query_one(".hunk-head", Static).update(self._head())
        self.set_class(not self.accepted, "-rejected")

    def watch_split(self, split: bool) -> None:
        if self.is_mounted:
            self.query_one(DiffView).split = split

    def toggle(self) -> None:
        if self.read_only:
            return
        self.accepted = not self.accepted
        self.post_message(self.Toggled(self))

    def on_click(self) -> None:
        self.focus()
