"""Mining progress, shown while the repository's history is being mined."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, ProgressBar


class MiningBar(Horizontal):
    """"mining history 40/120 ━━━━╸━━━━  33%": the bar itself takes what the label and the
    percentage leave, so the percentage is never cut off."""

    DEFAULT_CSS = """
    MiningBar { height: 1; display: none; padding: 0 1; background: $boost; }
    MiningBar.-active { display: block; }
    MiningBar Label { width: auto; margin-right: 1; }
    MiningBar ProgressBar { width: 1fr; }
    MiningBar ProgressBar Bar { width: 1fr; min-width: 4; }
    """

    def compose(self) -> ComposeResult:
        yield Label("mining history", id="mining-label")
        yield ProgressBar(show_eta=False, id="mining-progress")

    def show_progress(self, done: int, total: int) -> None:
        self.set_class(total > 0 and done < total, "-active")
        self.query_one("#mining-label", Label).update(f"mining history {done}/{total}")
        self.query_one(ProgressBar).update(total=max(total, 1), progress=done)

    def finish(self) -> None:
        self.remove_class("-active")
