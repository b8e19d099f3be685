"""Past runs: status, cost, patch. Enter opens a run's patch in the review; r resumes it
in the conversation."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import getters, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ..controller import one_line
from .keys import quiet_app_bindings

STATUS_STYLES = {"fixed": "green", "not_fixed": "red", "error": "red", "cancelled": "yellow",
                 "tests_did_not_run": "yellow", "not_verified": "yellow",
                 "budget_exhausted": "yellow"}
"""Red: judged and failed, or broke; yellow: no verdict (the tests could not run, no test
command, cut short)."""


class RunsScreen(Screen):
    CSS_PATH = "runs.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("enter", "open_run", "Review", tooltip="Review the run's patch", priority=True),
        Binding("r", "resume_run", "Resume", tooltip="Resume the run in the conversation"),
        Binding("g", "reload", "Reload", show=False),
        *quiet_app_bindings("f3"),
    ]

    table = getters.query_one("#runs-table", DataTable)
    empty = getters.query_one("#runs-empty", Static)

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static(Text("Runs", style="bold"), id="runs-title")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static(Text("No runs yet.", style="dim"), id="runs-empty")
        yield Footer()

    def on_mount(self) -> None:
        self.table.add_columns("request", "status", "cost", "patch", "run")
        self.action_reload()

    def on_screen_resume(self) -> None:
        if self.is_mounted:
            self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="runs")
    def load(self) -> None:
        controller = self.app.controller  # type: ignore[attr-defined]
        try:
            runs = controller.list_runs()
        except Exception as exc:
            self.app.call_from_thread(self.notify, one_line(exc), severity="error")
            return
        self.app.call_from_thread(self._show, runs)

    def _show(self, runs: list[Any]) -> None:
        self.runs = runs
        self.table.clear()
        for run in runs:
            title = run.title if len(run.title) <= 36 else run.title[:35] + "…"
            self.table.add_row(
                Text(title),  # the words, not markup
                Text(run.status, style=STATUS_STYLES.get(run.status, "")),
                run.cost_label,
                "yes" if run.patch_path else "-",
                run.run_id,
                key=run.run_id,
            )
        self.empty.display = not runs
        self.table.display = bool(runs)
        if runs:
            self.table.focus()

    def _current(self) -> Any:
        if not self.runs or self.table.cursor_row is None:
            return None
        return self.runs[self.table.cursor_row]

    def action_open_run(self) -> None:
        run = self._current()
        if run is not None:
            self.resume(run.run_id, back_to_main=False)

    def action_resume_run(self) -> None:
        run = self._current()
        if run is not None:
            self.resume(run.run_id, back_to_main=True)

    @work(thread=True, group="resume")
    def resume(self, run_id: str, back_to_main: bool) -> None:
        controller = self.app.controller  # type: ignore[attr-defined]
        try:
            resumed = controller.resume(run_id)
        except Exception as exc:
            self.app.call_from_thread(self.notify, one_line(exc), severity="error")
            return
        self.app.call_from_thread(self._opened, resumed, back_to_main)

    def _opened(self, resumed: Any, back_to_main: bool) -> None:
        app = self.app
        if back_to_main:
            app.pop_screen()
            app.show_resumed(resumed)  # type: ignore[attr-defined]
            return
        if not resumed.patch.strip():
            self.notify("This run proposed no change.", severity="warning")
            return
        app.review(app.review_request(resumed))  # type: ignore[attr-defined]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_run()
