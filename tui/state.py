"""What the status bar shows: one immutable value the app replaces as things change."""

from __future__ import annotations

from dataclasses import dataclass, replace


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

    def with_(self, **changes) -> StatusInfo:
        return replace(self, **changes)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_label(self) -> str:
        return "cost unknown" if self.cost_usd is None else f"${self.cost_usd:.4f}"
