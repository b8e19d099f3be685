"""Pick a tracked file with a fuzzy finder. Dismisses with its path or None."""

from __future__ import annotations

import subprocess
from pathlib import Path

from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from ..fuzzy import rank


def tracked_files(root: Path) -> list[str]:
    proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True,
                          check=False)
    return [p for p in proc.stdout.decode("utf-8", "replace").split("\0") if p]


class FileFinderScreen(ModalScreen[str | None]):
    CSS_PATH = "file_finder.tcss"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", show=False),
        Binding("up", "move(-1)", show=False),
    ]

    query_input = getters.query_one("#finder-input", Input)
    options = getters.query_one("#finder-options", OptionList)

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.paths: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="finder-dialog"):
            yield Input(placeholder="file…", id="finder-input")
            yield OptionList(id="finder-options")

    def on_mount(self) -> None:
        self.load()

    @work(thread=True)
    def load(self) -> None:
        paths = tracked_files(self.root)
        self.app.call_from_thread(self._loaded, paths)

    def _loaded(self, paths: list[str]) -> None:
        self.paths = paths
        self._refresh(self.query_input.value)

    @on(Input.Changed, "#finder-input")
    def _changed(self, event: Input.Changed) -> None:
        self._refresh(event.value)

    def _refresh(self, query: str) -> None:
        self.options.clear_options()
        # Content, not markup: a file may be named `[/b]` or `[@click=app.quit]`.
        self.options.add_options([Option(Content(p), id=p) for p in rank(query, self.paths, 50)])
        if self.options.option_count:
            self.options.highlighted = 0

    def action_move(self, step: int) -> None:
        if self.options.option_count:
            current = self.options.highlighted or 0
            self.options.highlighted = max(0, min(self.options.option_count - 1, current + step))

    @on(Input.Submitted, "#finder-input")
    def _submitted(self) -> None:
        index = self.options.highlighted
        if index is None:
            self.dismiss(None)
            return
        self.dismiss(self.options.get_option_at_index(index).id)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
