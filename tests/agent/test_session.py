"""The app's Session and the approval seam, end to end: a real git repo, the real sandbox,
the scripted model through real litellm. Nothing under test is patched."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest
import test_fix_e2e
from evoagent.agent.approval import ApprovalMode, Approver
from evoagent.agent.events import ApprovalNeeded, DiffProposed, Finished, ToolCall
from evoagent.agent.model_select import NoModelAvailable
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.session import Session
from evoagent.agent.tools import call_tool
from evoagent.agent.tools.base import ToolContext
from genome_settings import configure_genome
from test_fix_e2e import (
    BUGGY,
    CALC,
    call,
    edit,
    finish,
    make_user_edits,
    snapshot,
)

# Shared fixture: the calc project (one failing test); `script` comes from tests/conftest.py.
project = test_fix_e2e.project

FIXED = "    if value > high:\n        return high\n"
REQUEST = "clamp() returns the lower bound above the upper bound"


class Recorder:
    """An emit that keeps every event and answers approvals with `answer`."""

    def __init__(self, answer: bool = True):
        self.events: list = []
        self.answer = answer

    def __call__(self, event) -> None:
        self.events.append(event)
        if isinstance(event, ApprovalNeeded):
            event.answer(self.answer)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def open_session(project, model: str | None, mode=ApprovalMode.FULL_AUTO, emit=None) -> Session:
    return Session.open(RepoContext.open(project.path), model, mode, emit or Recorder())


# -- the approval seam, on the tools themselves ----------------------------------------


def tool_ctx(tmp_path: Path, approver: Approver, ran: list[str]) -> ToolContext:
    (tmp_path / "a.py").write_text("x = 1\n")

    def run_command(command: str, timeout: float) -> tuple[int, str]:
        ran.append(command)
        return 0, "ok"

    return ToolContext(workspace=tmp_path, run_command=run_command, approve=approver.approve)


@pytest.mark.parametrize(("mode", "asked"), [
    (ApprovalMode.ASK, ["edit", "write", "command"]),
    (ApprovalMode.AUTO_EDITS, ["command"]),
    (ApprovalMode.FULL_AUTO, []),
])
def test_each_mode_asks_for_exactly_its_actions(tmp_path, mode, asked):
    emit, ran = Recorder(answer=True), []
    ctx = tool_ctx(tmp_path, Approver(mode, emit), ran)
    assert call_tool("edit", {"edits": [{"path": "a.py", "search": "x = 1", "replace": "x = 2"}]}, ctx).ok
    assert call_tool("write", {"path": "b.py", "content": "y = 1\n"}, ctx).ok
    assert call_tool("run", {"command": "echo hi"}, ctx).ok
    assert [e.action for e in emit.of(ApprovalNeeded)] == asked
    assert (tmp_path / "a.py").read_text() == "x = 2\n" and ran == ["echo hi"]


def test_a_refusal_applies_and_runs_nothing(tmp_path):
    emit, ran = Recorder(answer=False), []
    ctx = tool_ctx(tmp_path, Approver(ApprovalMode.ASK, emit), ran)
    edited = call_tool("edit", {"edits": [
        {"path": "a.py", "search": "x = 1", "replace": "x = 2"},
        {"path": "new/dir/c.py", "search": "", "replace": "z = 3\n"},
    ]}, ctx)
    written = call_tool("write", {"path": "b.py", "content": "y = 1\n"}, ctx)
    run = call_tool("run", {"command": "echo hi"}, ctx)
    assert [o.ok for o in (edited, written, run)] == [False, False, False]
    assert all("declined" in o.text for o in (edited, written, run))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]
    assert (tmp_path / "a.py").read_text() == "x = 1\n" and ran == []
    edit_event = emit.of(ApprovalNeeded)[0]
    assert "-x = 1\n+x = 2\n" in edit_event.detail and "+z = 3" in edit_event.detail


def test_an_unanswered_approval_times_out_as_a_refusal_and_the_mode_switches_live(tmp_path):
    events: list = []
    approver = Approver(ApprovalMode.ASK, events.append, timeout=0.05)
    assert approver.approve("command", "rm -rf build") is False
    approver.set_mode("full_auto")
    assert approver.approve("command", "rm -rf build") is True
    assert len(events) == 1


# -- Session ------------------------------------------------------------------------------


def test_ask_proposes_a_patch_without_touching_the_tree_then_accept_and_undo(project, script):
    make_user_edits(project)
    before = snapshot(project.path)
    emit = Recorder()
    session = open_session(project, script([edit(BUGGY, FIXED), finish("return high")]), emit=emit)

    outcome = session.ask(REQUEST)

    assert outcome.status == "fixed" and outcome.summary == "return high"
    assert "-        return low\n+        return high\n" in outcome.patch
    assert [f.path for f in outcome.files] == ["calc.py"]
    assert sorted(outcome.tests["after"]["passed"])[0].startswith("tests/test_calc.py::")
    assert emit.of(DiffProposed) and emit.of(Finished)[-1].status == "fixed"
    assert snapshot(project.path) == before  # proposed, never applied
    assert (outcome.run_dir / "report.json").is_file()
    status = session.status()
    assert (status.model, status.mode, status.running) == (session.model, ApprovalMode.FULL_AUTO, False)
    assert status.prompt_tokens > 0 and status.cost_label == "unknown" and not status.can_undo

    [run] = session.list_runs()
    assert (run.run_id, run.status, run.patch_path) == (outcome.run_id, "fixed", outcome.run_dir / "patch.diff")
    resumed = session.resume(outcome.run_id[:20])
    assert (resumed.request, resumed.patch) == (REQUEST, outcome.patch)

    accepted = session.accept(outcome.run_id)
    assert accepted.paths == ["calc.py"] and session.status().can_undo
    assert (project.path / "calc.py").read_text() == CALC.replace(BUGGY, FIXED)
    assert (project.path / "README.md").read_text() == "# calc\n\nWork in progress, not committed.\n"

    assert session.undo() == ["calc.py"]
    assert snapshot(project.path) == before
    with pytest.raises(Exception, match="nothing to undo"):
        session.undo()


def test_ask_mode_puts_the_edit_to_the_person_and_a_refusal_leaves_no_patch(project, script):
    configure_genome(project.path, refine_attempts=0)
    emit = Recorder(answer=False)
    session = open_session(project, script([edit(BUGGY, FIXED), finish("gave up")]),
                           ApprovalMode.ASK, emit)
    outcome = session.ask(REQUEST)
    [asked] = emit.of(ApprovalNeeded)
    assert asked.action == "edit" and "+        return high" in asked.detail
    # Nothing changed, so the turn is the model's reply, not a change to review.
    assert outcome.patch == "" and outcome.status == "answered"


def test_cancel_stops_a_running_command_promptly_and_leaves_no_sandbox(project, script):
    emit = Recorder()
    started = threading.Event()

    def on_event(event) -> None:
        emit(event)
        if isinstance(event, ToolCall) and event.name == "run":
            started.set()

    marker = f"evoagent-cancel-{uuid.uuid4().hex}"  # observe only the command this test ran
    session = open_session(project, script([
        call("run", command=f"exec -a {marker} sleep 60", timeout=120), edit(BUGGY, FIXED),
        finish(),
    ]), emit=on_event)
    result: list = []
    worker = threading.Thread(target=lambda: result.append(session.ask(REQUEST)))
    worker.start()
    assert started.wait(60)
    time.sleep(0.5)  # the command is running now
    clock = time.monotonic()
    session.cancel()
    worker.join(30)
    assert not worker.is_alive() and time.monotonic() - clock < 10
    [outcome] = result
    assert outcome.status == "cancelled" and outcome.patch == ""
    assert emit.of(Finished)[-1].status == "cancelled"
    session.close()  # the conversation's workspace lives until the session ends
    sandboxes = project.path / ".evoagent" / "sandboxes"
    assert [p.name for p in sandboxes.iterdir()] == [".gitignore"]
    assert not session.status().running
    assert not sleeping(marker), "the sandboxed command outlived the cancel"
    assert [r.status for r in session.list_runs()] == ["cancelled"]


def sleeping(marker: str) -> list[str]:
    """Pids of live processes whose argv[0] is `marker` (only the test's own command)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(
                marker.encode() + b"\x00"
            ):
                pids.append(entry.name)
        except OSError:
            continue
    return pids


def test_without_a_model_the_session_opens_and_ask_says_how_to_configure_one(project, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")  # nothing listens there
    session = open_session(project, None)
    status = session.status()
    assert status.model is None and "no model configured" in status.model_hint
    with pytest.raises(NoModelAvailable, match="no model configured"):
        session.ask(REQUEST)
