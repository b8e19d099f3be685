"""One hunk of a patch under review: a checkbox line and the hunk as a diff view."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static
from textual_diff_view import DiffView


def hunk_sides(text: str) -> tuple[str, str]:
    """The code before and after one hunk (`text` starts with its @@ header)."""
    before: list[str] = []
    after: list[str] = []
    for line in text.splitlines()[1:]:
        tag, body = line[:1], line[1:]
        if tag == " " or line == "":
            before.append(body)
            after.append(body)
        elif tag == "-":
            before.append(body)
        elif tag == "+":
            after.append(body)
    return "\n".join(before) + "\n", "\n".join(after) + "\n"


class HunkView(Vertical, can_focus=True):
    """Focusable; space toggles it. `unit` is the id `accept` takes (hunk or file id)."""

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

    def __init__(self, unit: str, path: str, header: str, text: str, split: bool = False):
        super().__init__()
        self.unit = unit
        self.path = path
        self.header = header
        self.text = text
        self.set_reactive(HunkView.split, split)

    def compose(self) -> ComposeResult:
        yield Static(self._head(), classes="hunk-head")
        before, after = hunk_sides(self.text)
        yield DiffView(self.path, self.path, before, after, split=self.split, annotations=True)

    def _head(self) -> Text:
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
        self.accepted = not self.accepted
        self.post_message(self.Toggled(self))

    def on_click(self) -> None:
        self.focus()
