"""App-wide messages. The controller posts them (from worker threads: `post_message` is
thread-safe); the app and its screens handle them. Widget-local messages live in their widget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evoagent.agent.events import Event
from textual.message import Message


@dataclass
class AgentEvent(Message):
    """One event of the agent's stream, as the session emitted it."""

    event: Event


@dataclass
class SessionReady(Message):
    """A session is open: requests can be sent."""

    model: str
    mode: str
    isolated: bool


@dataclass
class SessionUnavailable(Message):
    """No session: no model (or the repository cannot be used). `hint` says what to do."""

    hint: str
    no_model: bool = True


@dataclass
class RequestDone(Message):
    """`ask` returned: the proposed patch (maybe empty), test results and the run id."""

    outcome: Any


@dataclass
class ConversationResumed(Message):
    """A saved conversation is open again (`saved`: conversation_store.SavedConversation):
    its turns are shown, and the next request continues it."""

    saved: Any


@dataclass
class RequestFailed(Message):
    error: str


@dataclass
class MiningProgress(Message):
    done: int
    total: int


@dataclass
class MiningDone(Message):
    stored: int
    memories: int
    error: str = ""


@dataclass
class MemoryCount(Message):
    memories: int


@dataclass
class Notice(Message):
    """A one-line notice for the person (shown as a toast and in the conversation)."""

    text: str
    severity: str = "information"  # information | warning | error
