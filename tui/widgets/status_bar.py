"""The status bar: model, approval mode, sandbox, tokens and cost, memory size, the current
phase of a run.

The model's name is always shown whole: when the bar is narrow the other parts are
shortened, then dropped, and the phase line is cut to what is left. Only a model name wider
than the whole bar loses its middle.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from ..state import StatusInfo

MODE_LABELS = {"ask": "ask", "auto_edits": "auto-edits", "full_auto": "full-auto"}
SEPARATOR = " │ "
MIN_PHASE = 12
"""A phase cut shorter than this many cells says nothing: it is dropped instead."""
SHRINK_STEPS = ("usage", "memory", "mode", "usage", "sandbox", "phase", "phase")
"""Which part gives way next when the line is too wide (each step: its next shorter form;
the phase, what a run is doing now, is cut to fit only after the counters and an isolated
sandbox are gone, then dropped). The model never gives way."""


@dataclass
class Part:
    name: str
    forms: list[str]
    """Longest first; "" means the part is left out."""
    style: str = ""
    level: int = 0

    @property
    def text(self) -> str:
        return self.forms[min(self.level, len(self.forms) - 1)]


def compact(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def status_parts(info: StatusInfo) -> list[Part]:
    """The bar's parts in display order, each with its shorter forms."""
    if info.model:
        model = Part("model", [info.model], "bold")
    elif info.starting:
        model = Part("model", ["starting…"], "dim")
    else:
        model = Part("model", ["no model"], "bold red")
    mode = MODE_LABELS.get(info.mode, info.mode)
    if info.isolated is None:
        sandbox = Part("sandbox", ["sandbox ?", ""], "dim")
    elif info.isolated:
        sandbox = Part("sandbox", ["isolated", ""], "green")
    else:  # a warning: never dropped
        sandbox = Part("sandbox", ["unisolated"], "bold yellow")
    cost = "cost ?" if info.cost_usd is None else f"${info.cost_usd:.4f}"
    memory = "memory …" if info.memories is None else f"{info.memories} commits"
    parts = [
        model,
        Part("mode", [f"mode {mode}", mode], "bold cyan"),
        sandbox,
        Part("usage", [f"{compact(info.tokens)} tok {info.cost_label}", cost, ""]),
        Part("memory", [memory, ""]),
    ]
    if info.phase:  # what the work is: it stands in for "working", which is its last form
        parts.append(Part("phase", [info.phase, "working" if info.busy else ""],
                          "bold magenta" if info.busy else "italic"))
    elif info.busy:
        parts.append(Part("busy", ["working"], "bold magenta"))
    return parts


def _assemble(parts: list[Part]) -> Text:
    text = Text(" ", no_wrap=True, overflow="ellipsis", end="")
    shown = [p for p in parts if p.text]
    for index, part in enumerate(shown):
        if index:
            text.append(SEPARATOR, "dim")
        text.append(part.text, part.style)
    return text


def render_status(info: StatusInfo, width: int | None = None) -> Text:
    """The status line, fitted into `width` cells when given (see the module docstring)."""
    parts = status_parts(info)
    text = _assemble(parts)
    by_name = {p.name: p for p in parts}
    for step in SHRINK_STEPS:
        if width is None or text.cell_len <= width:
            return text
        part = by_name.get(step)
        if part is None:
            continue
        if step == "phase" and part.level == 0:
            _cut_phase(parts, part, width)
        else:
            part.level += 1
        text = _assemble(parts)
    if width is None or text.cell_len <= width:
        return text
    # Not even the shortest line fits: the model alone, and when the model itself is wider
    # than the bar, both ends of its name (provider and variant) with the middle cut out.
    model = parts[0]
    return Text.assemble(" ", (middle_cut(model.text, width - 1), model.style),
                         no_wrap=True, end="")


def middle_cut(text: str, width: int) -> str:
    """`text` within `width` cells, an ellipsis replacing its middle when too long."""
    if len(text) <= width or width < 3:
        return text[: max(width, 0)]
    head = (width - 1) // 2
    tail = width - 1 - head
    return f"{text[:head]}…{text[-tail:]}"


def _cut_phase(parts: list[Part], phase: Part, width: int) -> None:
    """Cut the phase line to the cells left after the other parts (or give it up for its
    last form)."""
    full, last = phase.forms[0], phase.forms[-1]
    phase.forms = [full, "", last]
    phase.level = 1
    room = width - _assemble(parts).cell_len - len(SEPARATOR)
    if room >= MIN_PHASE:
        phase.forms[1] = full[: room - 1] + "…"
    else:
        phase.level = 2


class StatusBar(Static):
    """Renders `info`; the screen sets it (attributes down)."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; }
    """

    info: reactive[StatusInfo] = reactive(StatusInfo, layout=False)

    def render(self) -> Text:
        return render_status(self.info, self.size.width or None)
