"""The status bar: model, approval mode, sandbox, tokens and cost, memory size."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ..state import StatusInfo

MODE_LABELS = {"ask": "ask", "auto_edits": "auto-edits", "full_auto": "full-auto"}


def compact(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def render_status(info: StatusInfo) -> Text:
    sep = (" │ ", "dim")
    if info.model:
        model = (info.model, "bold")
    elif info.starting:
        model = ("starting…", "dim")
    else:
        model = ("no model", "bold red")
    if info.isolated is None:
        sandbox = ("sandbox ?", "dim")
    elif info.isolated:
        sandbox = ("isolated", "green")
    else:
        sandbox = ("unisolated", "bold yellow")
    memory = "memory …" if info.memories is None else f"{info.memories} commits"
    parts: list[tuple[str, str] | str] = [
        model, sep,
        (f"mode {MODE_LABELS.get(info.mode, info.mode)}", "bold cyan"), sep,
        sandbox, sep,
        f"{compact(info.tokens)} tok {info.cost_label}", sep,
        memory,
    ]
    if info.busy:
        parts += [sep, ("working", "bold magenta")]
    return Text.assemble(" ", *parts)


class StatusBar(Static):
    """Renders `info`; the screen sets it (attributes down)."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; }
    """

    info: reactive[StatusInfo] = reactive(StatusInfo, layout=False)

    def render(self) -> Text:
        return render_status(self.info)
