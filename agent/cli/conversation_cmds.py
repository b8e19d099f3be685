"""`evoagent --resume` without an id: the saved conversations, newest first; and the lookup
`--continue` / `--resume ID` do before the app opens (so a bad id is one line, not a screen)."""

from __future__ import annotations

import time

from ..conversation_store import ConversationStore, SavedConversation
from ..state import RepoState
from ..terminal_text import one_line
from .output import echo


def _store(state: RepoState) -> ConversationStore:
    return ConversationStore(state.dir / "sessions")


def saved_conversation(state: RepoState, conversation_id: str | None) -> SavedConversation:
    """The conversation to reopen: `conversation_id` (a unique prefix works) or the last."""
    store = _store(state)
    return store.get(conversation_id) if conversation_id else store.last()


def list_conversations(state: RepoState) -> None:
    saved = _store(state).list()
    if not saved:
        echo("No saved conversations in this repository yet: start one with `evoagent`.")
        return
    for conversation in saved:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.updated))
        turns = len(conversation.turns)
        pending = " · change pending" if conversation.pending.strip() else ""
        echo(f"{conversation.id}  {when}  {turns} turn{'s' * (turns != 1)}{pending}  "
             f"{one_line(conversation.title, 70)}")
    echo("\nReopen one with `evoagent --resume ID` (a unique prefix is enough), "
         "or the last with `evoagent --continue`.")
