"""The agent loop on the scripted model through real litellm, with the real tools on real files.

Each test scripts the model's replies; steps that need to see what the model was sent are
callables that record the messages (a deep copy: the loop keeps appending to its list).
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
from evoagent.agent.events import Event, ToolResult
from evoagent.agent.loop import AgentLoop, LoopConfig
from evoagent.agent.model import Model
from evoagent.agent.scripted_provider import (
    ScriptedReply,
    ScriptedToolCall,
    register_script,
    unregister_script,
)
from evoagent.agent.tools.base import ToolContext

TOOLS = ["read", "edit", "finish"]
SOURCE = "def area(w, h):\n    return w + h\n\n\ndef perimeter(w, h):\n    return w * h\n"
_names = itertools.count()


def call(name: str, arguments: dict | str, id: str | None = None) -> ScriptedToolCall:
    return ScriptedToolCall(name, arguments, id)


def reply(*calls: ScriptedToolCall, text: str = "") -> ScriptedReply:
    return ScriptedReply(text=text, tool_calls=list(calls))


def edit_block(search: str, replace: str, path: str = "shapes.py") -> dict:
    return {"path": path, "search": search, "replace": replace}


FINISH = reply(call("finish", {"summary": "done"}))


class Recorder:
    """A script step that records the messages it was sent, then replies."""

    def __init__(self):
        self.seen: list[list[dict]] = []

    def then(self, answer: ScriptedReply):
        def step(messages, tools):
            self.seen.append(copy.deepcopy(messages))
            return answer

        return step

    @property
    def last(self) -> dict:
        return self.seen[-1][-1]


@pytest.fixture
def workspace(tmp_path) -> Path:
    (tmp_path / "shapes.py").write_text(SOURCE)
    return tmp_path


@pytest.fixture
def make_loop(workspace):
    """Build an AgentLoop on a freshly registered script; yields (loop, events)."""
    registered: list[str] = []

    def make(steps, max_steps: int = 10) -> tuple[AgentLoop, list[Event]]:
        name = f"loop-{next(_names)}"
        registered.append(name)
        register_script(name, steps)
        events: list[Event] = []
        loop = AgentLoop(
            Model(name=f"scripted/{name}"),
            ToolContext(workspace=workspace),
            LoopConfig(TOOLS, max_steps=max_steps),
            events.append,
            [{"role": "system", "content": "You fix bugs."}, {"role": "user", "content": "Fix area()."}],
        )
        return loop, events

    yield make
    for name in registered:
        unregister_script(name)


def tool_messages(messages: list[dict]) -> list[str]:
    """Contents of the tool messages after the last assistant message."""
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return [m["content"] for m in messages[last + 1 :] if m["role"] == "tool"]


def test_finish_ends_the_attempt_with_the_summary_and_counts_applied_edits(make_loop, workspace):
    loop, events = make_loop([
        reply(call("read", {"path": "shapes.py"})),
        reply(call("edit", {"edits": [edit_block("return w + h", "return w * h")]})),
        reply(call("finish", {"summary": "area multiplies now"})),
    ])
    outcome = loop.run()
    assert (outcome.finished, outcome.summary, outcome.steps, outcome.edits_applied) == (
        True, "area multiplies now", 3, 1,
    )
    assert "return w * h\n\n\ndef perimeter" in (workspace / "shapes.py").read_text()
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [(r.name, r.ok) for r in results] == [("read", True), ("edit", True), ("finish", True)]


def test_malformed_tool_call_json_is_reported_back_and_does_nothing(make_loop, workspace):
    rec = Recorder()
    loop, events = make_loop([
        reply(call("edit", '{"edits": [{"path": "shapes.py", "search": "w + h",')),
        rec.then(FINISH),
    ])
    outcome = loop.run()
    assert outcome.finished and outcome.edits_applied == 0
    [answer] = tool_messages(rec.seen[0])
    assert answer.startswith("Arguments for edit are not a JSON object: arguments are not valid JSON")
    assert "Nothing was done; send the call again with valid JSON." in answer
    assert (workspace / "shapes.py").read_text() == SOURCE
    failed = [e for e in events if isinstance(e, ToolResult) and not e.ok]
    assert [e.name for e in failed] == ["edit"]


def test_arguments_that_are_not_an_object_are_reported_back(make_loop, workspace):
    rec = Recorder()
    loop, _ = make_loop([reply(call("read", '["shapes.py"]')), rec.then(FINISH)])
    loop.run()
    [answer] = tool_messages(rec.seen[0])
    assert "arguments must be a JSON object, got list" in answer


def test_edit_whose_search_does_not_match_is_reported_with_the_closest_lines(make_loop, workspace):
    rec = Recorder()
    loop, _ = make_loop([
        reply(call("edit", {"edits": [edit_block("    return width + height\n", "    return w * h\n")]})),
        rec.then(FINISH),
    ])
    outcome = loop.run()
    [answer] = tool_messages(rec.seen[0])
    assert answer.startswith("No edits were applied (all-or-nothing)")
    assert "return w + h" in answer  # the "did you mean" lines from the file
    assert outcome.edits_applied == 0
    assert (workspace / "shapes.py").read_text() == SOURCE


def test_several_edit_calls_in_one_response_apply_all_or_none(make_loop, workspace):
    rec = Recorder()
    good = call("edit", {"edits": [edit_block("return w + h", "return w * h")]})
    bad = call("edit", {"edits": [edit_block("return nothing_like_this", "return 0")]})
    other = call("edit", {"edits": [edit_block("return w * h\n", "return 2 * (w + h)\n")]})
    loop, events = make_loop([reply(good, bad, other), rec.then(FINISH)])
    outcome = loop.run()
    assert (workspace / "shapes.py").read_text() == SOURCE
    assert outcome.edits_applied == 0
    answers = tool_messages(rec.seen[0])
    assert len(answers) == 3
    assert all(a.startswith("No edits were applied (all-or-nothing)") for a in answers)
    assert [e.ok for e in events if isinstance(e, ToolResult)][:3] == [False, False, False]


def test_several_good_edit_calls_in_one_response_all_apply(make_loop, workspace):
    first = call("edit", {"edits": [edit_block("return w + h", "return w * h")]})
    second = call("edit", {"edits": [edit_block(
        "def perimeter(w, h):\n    return w * h\n", "def perimeter(w, h):\n    return 2 * (w + h)\n")]})
    loop, _ = make_loop([reply(first, second), FINISH])
    outcome = loop.run()
    assert outcome.edits_applied == 2
    assert (workspace / "shapes.py").read_text() == (
        "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n"
    )


def test_a_malformed_edit_call_in_a_batch_blocks_the_other_edits(make_loop, workspace):
    rec = Recorder()
    good = call("edit", {"edits": [edit_block("return w + h", "return w * h")]})
    broken = call("edit", '{"edits": [')
    loop, _ = make_loop([reply(good, broken), rec.then(FINISH)])
    outcome = loop.run()
    assert (workspace / "shapes.py").read_text() == SOURCE
    assert outcome.edits_applied == 0
    good_answer, broken_answer = tool_messages(rec.seen[0])
    assert good_answer.startswith("No edits were applied (all-or-nothing)")
    assert broken_answer.startswith("Arguments for edit are not a JSON object")


def test_the_step_limit_ends_an_attempt_unfinished(make_loop):
    loop, _ = make_loop([reply(call("read", {"path": "shapes.py"}))] * 2, max_steps=2)
    outcome = loop.run()
    assert (outcome.finished, outcome.steps) == (False, 2)


def test_prose_without_tool_calls_is_nudged_then_the_attempt_ends(make_loop):
    rec = Recorder()
    loop, _ = make_loop(["I think it is fine.", rec.then(ScriptedReply("Still fine.")), "Done."])
    outcome = loop.run()
    assert (outcome.finished, outcome.steps) == (False, 3)
    assert rec.last["role"] == "user"
    assert "call finish with a summary" in rec.last["content"]
