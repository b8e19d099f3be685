"""Saved conversations, for `evoagent --continue`, `--resume [ID]` and `/sessions`.

`.evoagent/sessions/<id>/`:
    conversation.json   id, title, created/updated (unix time), model, the turns (run id,
                        request, status, answer or summary) and the model's messages
    pending.diff        the pending change (not accepted yet) when the conversation was saved

Both are replaced atomically after every turn, so a crash or Ctrl-C loses at most the turn
in flight. The files are the person's own (never committed: state.py refuses a repository
that commits `.evoagent/`), but they are read defensively: a damaged one is skipped in a
listing and a clear error when asked for by id.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import EvoError

MAX_MESSAGES_BYTES = 64 << 20
"""A conversation file larger than this is not loaded (a runaway, or not ours)."""


@dataclass
class Turn:
    run_id: str
    request: str
    status: str
    reply: str = ""
    """The answer of an `answered` turn, else the agent's summary."""
    read_only: bool = False


@dataclass
class SavedConversation:
    id: str
    title: str
    created: float
    updated: float
    model: str
    turns: list[Turn] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    pending: str = ""
    """The pending change (pending.diff), "" when there is none."""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("pending")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], pending: str = "") -> SavedConversation:
        turns = [Turn(**{k: v for k, v in t.items() if k in Turn.__dataclass_fields__})
                 for t in data.get("turns") or [] if isinstance(t, dict)]
        messages = [m for m in data.get("messages") or [] if isinstance(m, dict)]
        return cls(str(data["id"]), str(data.get("title") or ""), float(data.get("created") or 0),
                   float(data.get("updated") or 0), str(data.get("model") or ""), turns,
                   messages, pending)


class ConversationStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def save(self, conversation: SavedConversation) -> None:
        folder = self.root / conversation.id
        folder.mkdir(parents=True, exist_ok=True)
        conversation.updated = time.time()
        _write_atomic(folder / "pending.diff", conversation.pending)
        _write_atomic(folder / "conversation.json",
                      json.dumps(conversation.to_json(), default=str))

    def list(self) -> list[SavedConversation]:
        """Every readable saved conversation, most recently updated first."""
        found = []
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            try:
                found.append(self._load(folder))
            except EvoError:
                continue  # damaged or half-written: not offered
        return sorted(found, key=lambda c: (c.updated, c.id), reverse=True)

    def last(self) -> SavedConversation:
        saved = self.list()
        if not saved:
            raise EvoError("no saved conversation in this repository yet: start one with `evoagent`")
        return saved[0]

    def get(self, prefix: str) -> SavedConversation:
        """The conversation whose id is or starts with `prefix` (exactly one)."""
        if not prefix or "/" in prefix or prefix.startswith("."):
            raise EvoError(f"not a conversation id: {prefix!r}")
        matches = [p for p in self.root.glob(f"{prefix}*") if p.is_dir()] \
            if self.root.is_dir() else []
        exact = [p for p in matches if p.name == prefix]
        if exact:
            matches = exact
        if len(matches) != 1:
            known = ", ".join(c.id for c in self.list()[:5]) or "none"
            what = "matches several" if matches else "matches none"
            raise EvoError(f"conversation {prefix!r} {what} (recent: {known})")
        return self._load(matches[0])

    def _load(self, folder: Path) -> SavedConversation:
        path = folder / "conversation.json"
        try:
            if path.is_symlink() or path.stat().st_size > MAX_MESSAGES_BYTES:
                raise EvoError(f"{path}: not a conversation file")
            data = json.loads(path.read_text(encoding="utf-8"))
            pending_path = folder / "pending.diff"
            pending = (pending_path.read_text(encoding="utf-8", errors="replace")
                       if pending_path.is_file() and not pending_path.is_symlink() else "")
            return SavedConversation.from_json(data, pending)
        except EvoError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EvoError(f"{path}: cannot read this saved conversation ({exc})") from exc


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
