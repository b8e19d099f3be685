"""Search the repository's memories (mined commits) and knowledge (approved fixes); open
one to read it; retract a knowledge record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.syntax import Syntax
from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from ..controller import one_line
from .keys import quiet_app_bindings

RETRACT_REASON = "retracted in the app"


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def memory_detail(memory: Any) -> Group:
    head = Text.assemble((memory.subject, "bold"), "\n",
                         (f"{memory.sha[:12]} · {memory.author} · {_date(memory.committed_at)}",
                          "dim"))
    parts: list[Any] = [head]
    body = memory.message.split("\n", 1)[1].strip() if "\n" in memory.message else ""
    if body:
        parts.append(Text("\n" + body))
    if memory.issue_refs:
        parts.append(Text("\nissues: " + ", ".join(memory.issue_refs)))
    if memory.files:
        files = "\n".join(f"  {f.change} {f.path}  +{f.added} -{f.removed}" for f in memory.files)
        parts.append(Text("\nfiles\n" + files))
    if memory.symbols:
        parts.append(Text("\nsymbols\n" + "\n".join(f"  {s}" for s in memory.symbols[:20])))
    if memory.diff_excerpt:
        parts.append(Text("\ndiff excerpt", style="bold"))
        parts.append(Syntax(memory.diff_excerpt, "diff", theme="ansi_dark", word_wrap=True))
    return Group(*parts)


def knowledge_detail(record: Any) -> Group:
    head = Text.assemble(("knowledge ", "bold magenta"), (record.intent, "bold"), "\n",
                         (f"{record.id} · {record.status} · approved {record.approved_date} "
                          f"by {record.approved_by} · used {record.uses}×", "dim"))
    parts: list[Any] = [head]
    for label, value in (("root cause", record.root_cause), ("solution", record.solution),
                         ("note", record.note)):
        if value:
            parts.append(Text(f"\n{label}: {value}"))
    if record.files:
        parts.append(Text("\nfiles\n" + "\n".join(f"  {f}" for f in record.files)))
    if record.diff:
        parts.append(Text("\ndiff", style="bold"))
        parts.append(Syntax(record.diff, "diff", theme="ansi_dark", word_wrap=True))
    if record.active:
        parts.append(Text("\nx retracts this record", style="dim"))
    return Group(*parts)


class MemoryScreen(Screen):
    CSS_PATH = "memory.tcss"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("x", "retract", "Retract", tooltip="Retract the selected knowledge record"),
        Binding("slash", "focus_search", "Search", show=False),
        *quiet_app_bindings("f2"),
    ]

    search_input = getters.query_one("#memory-search", Input)
    hits = getters.query_one("#memory-hits", OptionList)
    detail = getters.query_one("#memory-detail", Static)

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, Any] = {}
        self.selected: Any = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="search memories and knowledge…", id="memory-search")
        with Horizontal(id="memory-body"):
            yield OptionList(id="memory-hits")
            with VerticalScroll(id="memory-detail-scroll"):
                yield Static(Text("Type a query and press Enter.", style="dim"),
                             id="memory-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.search_input.focus()

    def action_focus_search(self) -> None:
        self.search_input.focus()

    def search(self, query: str) -> None:
        """Run a search (also used by /recall)."""
        self.search_input.value = query
        self.run_search(query)

    @on(Input.Submitted, "#memory-search")
    def _submitted(self, event: Input.Submitted) -> None:
        self.run_search(event.value)

    @work(thread=True, exclusive=True, group="recall")
    def run_search(self, query: str) -> None:
        controller = self.app.controller  # type: ignore[attr-defined]
        try:
            memories, knowledge = controller.recall(query)
        except Exception as exc:
            self.app.call_from_thread(self._show_error, one_line(exc))
            return
        self.app.call_from_thread(self._show_hits, query, memories, knowledge)

    def _show_error(self, error: str) -> None:
        self.detail.update(Text(error, style="red"))

    def _show_hits(self, query: str, memories: list[Any], knowledge: list[Any]) -> None:
        self.items.clear()
        options: list[Option] = []
        for hit in knowledge:
            record = hit.knowledge
            key = f"k:{record.id}"
            self.items[key] = record
            options.append(Option(Text.assemble(("★ ", "magenta"), record.intent), id=key))
        for hit in memories:
            memory = hit.memory
            key = f"m:{memory.sha}"
            self.items[key] = memory
            options.append(Option(Text.assemble((memory.sha[:7], "yellow"), " ", memory.subject),
                                  id=key))
        self.hits.clear_options()
        self.hits.add_options(options)
        if options:
            self.hits.highlighted = 0
            self.hits.focus()
        else:
            self.selected = None
            self.detail.update(Text(f"Nothing found for {query!r}.", style="dim"))

    @on(OptionList.OptionHighlighted, "#memory-hits")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.open(event.option.id or "")

    def open(self, key: str) -> None:
        item = self.items.get(key)
        self.selected = item
        if item is None:
            return
        renderable = knowledge_detail(item) if key.startswith("k:") else memory_detail(item)
        self.detail.update(renderable)

    @work
    async def action_retract(self) -> None:
        from .confirm import ConfirmScreen

        record = self.selected
        if record is None or not hasattr(record, "retracted_reason"):
            self.notify("Select a knowledge record (★) to retract.", severity="warning")
            return
        if not record.active:
            self.notify(f"{record.id} is already {record.status}.", severity="warning")
            return
        if not await self.app.push_screen_wait(
            ConfirmScreen(f"Retract knowledge {record.id}?\n{record.intent}")
        ):
            return
        self.retract(record.id)

    @work(thread=True, group="retract")
    def retract(self, knowledge_id: str) -> None:
        controller = self.app.controller  # type: ignore[attr-defined]
        try:
            controller.retract(knowledge_id, RETRACT_REASON)
        except Exception as exc:
            self.app.call_from_thread(self.notify, one_line(exc), severity="error")
            return
        self.app.call_from_thread(self.notify, f"Retracted {knowledge_id}.")
        self.run_search(self.search_input.value)
