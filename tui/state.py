"""What the status bar shows: one immutable value the app replaces as things change."""

from __future__ import annotations

from dataclasses import dataclass, replace

from evoagent.agent.terminal_text import one_line

PHASE_LABELS = {
    "baseline_tests": "baseline tests",
    "compacting": "compacting context",
    "model_check": "checking the model",
    "model_call": "asking the model",
    "workspace": "sandbox",
    "restore": "restoring the saved change",
}
"""How a `Phase` event's name reads; other names read with spaces for underscores."""
MODEL_NAMED = frozenset({"model_call"})
"""Phases whose detail is the model's name, which the status bar already shows."""
PHASE_MAX = 120
"""Characters of a phase line at most (the bar cuts it further to fit)."""


@dataclass(frozen=True)
class StatusInfo:
    model: str | None = None
    """The model's name; None means none configured (yet)."""
    mode: str = "ask"
    """The approval mode: ask | auto_edits | full_auto."""
    isolated: bool | None = None
    """Whether sandbox commands run under bubblewrap; None until known."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    """None: the model has no known price."""
    memories: int | None = None
    """Commits in the memory store; None until counted."""
    busy: bool = False
    """A request is running."""
    starting: bool = True
    """The session is still being opened."""
    phase: str = ""
    """The step a running request is in ("baseline tests: 12 passed", "locating"), from the
    agent's `Phase` events; "" once the model answers or the request ends."""

    def with_(self, **changes) -> StatusInfo:
        return replace(self, **changes)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_label(self) -> str:
        return "cost unknown" if self.cost_usd is None else f"${self.cost_usd:.4f}"


def phase_line(name: str, detail: str = "") -> str:
    """A `Phase` event as one terminal-safe line: "baseline tests: 12 passed", "locating"."""
    label = PHASE_LABELS.get(name, name.replace("_", " "))
    if name in MODEL_NAMED:
        detail = ""
    return one_line(f"{label}: {detail}" if detail else label, PHASE_MAX)
