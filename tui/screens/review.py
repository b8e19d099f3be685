"""Review a patch file by file and hunk by hunk; the screen returns what was accepted.

Generic on purpose: it takes a diff, a title, metadata and test lines, and dismisses with a
`ReviewResult`, or None when closed without a decision (Escape: the change stays pending).
The caller acts on it — the app applies the hunks to the working tree. A read-only review
(the hyperagent's genome diffs) offers no deciding keys and always dismisses with None.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evoagent.agent.patches import FilePatch, parse
from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..widgets.hunk_view import HunkView

WHOLE_FILE = ("added", "deleted")
"""Statuses whose file is one unit (its file id), not hunk by hunk."""
DECIDING = frozenset({"accept", "reject", "keep", "toggle_hunk", "toggle_file", "toggle_commit"})
"""The actions a read-only review leaves out (and out of its footer)."""


@dataclass
class ReviewRequest:
    diff: str
    title: str = "Review"
    metadata: dict[str, str] = field(default_factory=dict)
    tests: list[str] = field(default_factory=list)
    key: str = ""
    """Passed back untouched (e.g. the run id)."""
    read_only: bool = False
    """Show the diff only: no accept, reject, keep, commit or hunk toggles."""


@dataclass
class ReviewResult:
    accepted: bool
    """False: the whole patch was rejected."""
    selected: list[str] = field(default_factory=list)
    """Ids of the accepted units: hunk ids ("0:1") and file ids ("2") for whole files."""
    rejected: list[str] = field(default_factory=list)
    commit: bool = False
    note: str | None = None
    """Set (maybe "") when the person asked to keep the fix as knowledge."""
    key: str = ""

    @property
    def everything(self) -> bool:
        return self.accepted and not self.rejected


def units(files: list[FilePatch]) -> list[tuple[str, FilePatch, list[tuple[str, str, str]]]]:
    """(unit id, file, [(hunk unit id, header, text)]) for every file: whole-file units use
    the file id for all their hunks."""
    out = []
    for index, file in enumerate(files):
        whole = file.status in WHOLE_FILE or file.binary or not file.hunks
        file_id = str(index)
        hunks = [(file_id if whole else h.id, h.header, h.text) for h in file.hunks]
        out.append((file_id, file, hunks))
    return out


class FileHeader(Static):
    DEFAULT_CSS = """
    FileHeader { margin: 1 0 0 0; text-style: bold; background: $boost; padding: 0 1; }
    """


class ReviewScreen(Screen[ReviewResult | None]):
    CSS_PATH = "review.tcss"
    BINDINGS = [
        Binding("a", "accept", "Accept", tooltip="Apply the selected hunks"),
        Binding("r", "reject", "Reject", tooltip="Apply nothing"),
        Binding("escape", "close", "Close",
                tooltip="Close without deciding: the change stays pending"),
        Binding("k", "keep", "Keep", tooltip="Accept and keep the fix as knowledge (asks a note)"),
        Binding("space", "toggle_hunk", "Hunk", tooltip="Accept or reject the focused hunk"),
        Binding("f", "toggle_file", "File", tooltip="Accept or reject the focused file"),
        Binding("c", "toggle_commit", "Commit", tooltip="Also commit the accepted hunks"),
        Binding("v", "toggle_split", "Split", tooltip="Split or unified view"),
        Binding("down,j", "move(1)", "Next", show=False, priority=True),
        Binding("up", "move(-1)", "Previous", show=False, priority=True),
    ]

    split: reactive[bool] = reactive(False)
    commit: reactive[bool] = reactive(False)

    summary = getters.query_one("#review-summary", Static)

    def __init__(self, request: ReviewRequest):
        super().__init__()
        self.request = request
        self.files = parse(request.diff)
        self.units = units(self.files)

    def compose(self) -> ComposeResult:
        with Vertical(id="review-head"):
            yield Static(Text(self.request.title, style="bold"), id="review-title")
            meta = "  ".join(f"{k}: {v}" for k, v in self.request.metadata.items() if v)
            if meta:
                yield Static(Text(meta), id="review-meta")
            if self.request.tests:
                yield Static(Text("tests  " + " · ".join(self.request.tests)), id="review-tests")
            yield Static(id="review-summary")
        with VerticalScroll(id="review-body"):
            if not self.units:
                yield Static("(empty patch)")
            for file_id, file, hunks in self.units:
                yield FileHeader(self._file_label(file), id=f"file-{file_id}")
                for unit, header, text in hunks:
                    yield HunkView(unit, file.path, header, text, split=self.split,
                                   read_only=self.request.read_only)
        yield Footer()

    @staticmethod
    def _file_label(file: FilePatch) -> Text:
        added = sum(h.added for h in file.hunks)
        removed = sum(h.removed for h in file.hunks)
        name = f"{file.old_path} → {file.path}" if file.old_path else file.path
        return Text.assemble(name, (f"  {file.status}", "italic"),
                             (f"  +{added}", "green"), (f" -{removed}", "red"))

    def on_mount(self) -> None:
        self._update_summary()
        first = self.query(HunkView).first() if self.query(HunkView) else None
        if first is not None:
            first.focus()

    def hunks(self) -> list[HunkView]:
        return list(self.query(HunkView))

    def decisions(self) -> dict[str, bool]:
        """unit id -> accepted (a whole-file unit is accepted when all its hunks are)."""
        out: dict[str, bool] = {}
        for hunk in self.hunks():
            out[hunk.unit] = out.get(hunk.unit, True) and hunk.accepted
        for file_id, _file, hunks in self.units:
            if not hunks:
                out.setdefault(file_id, True)
        return out

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # False hides the binding from the footer too: a read-only review decides nothing.
        return not (self.request.read_only and action in DECIDING)

    def _update_summary(self) -> None:
        view = "split" if self.split else "unified"
        if self.request.read_only:
            self.summary.update(Text.assemble(("read-only", "bold"),
                                              f": nothing is applied  ·  {view}"))
            return
        decisions = self.decisions()
        kept = sum(decisions.values())
        commit = "on" if self.commit else "off"
        self.summary.update(Text.assemble(
            (f"{kept}/{len(decisions)} accepted", "bold"), f"  ·  commit {commit}  ·  {view}"
        ))

    @on(HunkView.Toggled)
    def _toggled(self, event: HunkView.Toggled) -> None:
        # A whole-file unit toggles together.
        for hunk in self.hunks():
            if hunk.unit == event.hunk.unit and hunk is not event.hunk:
                hunk.accepted = event.hunk.accepted
        self._update_summary()

    def _focused_hunk(self) -> HunkView | None:
        focused = self.focused
        while focused is not None and not isinstance(focused, HunkView):
            focused = focused.parent if isinstance(focused.parent, HunkView) else None
        return focused

    def action_move(self, step: int) -> None:
        """Focus the next or previous hunk and bring it into view."""
        hunks = self.hunks()
        if not hunks:
            return
        current = self._focused_hunk()
        index = hunks.index(current) + step if current in hunks else 0
        target = hunks[max(0, min(len(hunks) - 1, index))]
        target.focus()
        target.scroll_visible(animate=False)

    def action_toggle_hunk(self) -> None:
        hunk = self._focused_hunk()
        if hunk is not None:
            hunk.toggle()

    def action_toggle_file(self) -> None:
        hunk = self._focused_hunk()
        if hunk is None:
            return
        siblings = [h for h in self.hunks() if h.path == hunk.path]
        value = not all(h.accepted for h in siblings)
        for sibling in siblings:
            sibling.accepted = value
        self._update_summary()

    def action_toggle_split(self) -> None:
        self.split = not self.split

    def watch_split(self, split: bool) -> None:
        for hunk in self.hunks():
            hunk.split = split
        if self.is_mounted:
            self._update_summary()

    def action_toggle_commit(self) -> None:
        self.commit = not self.commit
        self._update_summary()

    def result(self, note: str | None = None) -> ReviewResult:
        decisions = self.decisions()
        selected = [u for u, ok in decisions.items() if ok]
        rejected = [u for u, ok in decisions.items() if not ok]
        return ReviewResult(bool(selected), selected, rejected, self.commit, note,
                            self.request.key)

    def action_accept(self) -> None:
        result = self.result()
        if not result.accepted:
            self.notify("Nothing is selected: toggle a hunk, or press r to reject.",
                        severity="warning")
            return
        self.dismiss(result)

    @work
    async def action_keep(self) -> None:
        from .note import NoteScreen

        if not self.result().accepted:
            self.notify("Nothing is selected.", severity="warning")
            return
        note = await self.app.push_screen_wait(
            NoteScreen("Keep this fix as knowledge — a one-line note (optional):")
        )
        if note is not None:
            self.dismiss(self.result(note=note))

    def action_reject(self) -> None:
        decisions = self.decisions()
        self.dismiss(ReviewResult(False, [], list(decisions), False, None, self.request.key))

    def action_close(self) -> None:
        """No decision: the caller leaves the change as it was before the review."""
        self.dismiss(None)
