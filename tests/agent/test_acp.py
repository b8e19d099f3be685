"""`evoagent acp` driven by the ACP SDK's own client side over stdio: the real command in a
subprocess, a real git repository with a failing test, the real sandbox and kernel, and the
scripted model. Every `session/update` the agent sends is validated against the SDK's
pydantic models (`SessionNotification`), beside the SDK's own parsing. The client's file
system, memory commands, auth and MCP servers are in test_acp_client.py."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

import acp
import pytest
from acp.connection import StreamDirection
from acp.schema import AllowedOutcome, RequestPermissionResponse, SessionNotification
from clamp_project import CALC, FILES

FIXED = CALC.replace("        return low\n    return value", "        return high\n    return value")
REQUEST = "clamp(15, 0, 10) gives 0, it should give 10"
FIX_EDIT = {"edits": [{"path": "calc.py", "search": "        return low\n    return value",
                       "replace": "        return high\n    return value"}]}

# `evoagent acp` through the console entry point; registers the command itself when the CLI
# does not (yet), so the test runs the same `main()` either way.
LAUNCHER = """
from evoagent.agent.cli import cli, main
from evoagent.agent.cli.acp_cmds import COMMANDS
for command in COMMANDS:
    if command.name not in cli.commands:
        cli.add_command(command)
main()
"""
pytestmark = pytest.mark.slow  # each test starts `evoagent acp` (litellm's import included)
GUARD = 90  # seconds: a hung agent fails the test instead of hanging the suite


@pytest.fixture
def project(git_repo):
    git_repo.commit("Add clamp with tests", FILES)
    return git_repo


def call(name: str, call_id: str, text: str = "", **arguments) -> dict[str, Any]:
    return {"text": text, "tool_calls": [{"name": name, "arguments": arguments, "id": call_id}]}


def scripted(tmp_path: Path, steps: list[Any]) -> str:
    path = tmp_path / f"script-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(steps))
    return f"scripted/{path}"


async def until(predicate, what: str, limit: float = 30.0) -> None:
    """Wait for `predicate()`; fail naming `what` after `limit` seconds (a guard, not a
    timing assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not predicate():
        assert loop.time() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


class Recorder:
    """An ACP client that records updates and answers permission requests in order."""

    capabilities: Any = None
    """What it says in initialize (None: the SDK's default, no file system)."""

    def __init__(self, answers: list[str] = ()):
        self.updates: list[Any] = []
        self.permissions: list[tuple[Any, list[Any]]] = []
        self.answers = list(answers)
        self.raw: list[dict[str, Any]] = []
        self.initialized: Any = None

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        self.updates.append(update)

    async def request_permission(self, session_id: str, tool_call: Any, options: list[Any],
                                 **kwargs: Any) -> RequestPermissionResponse:
        self.permissions.append((tool_call, options))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=self.answers.pop(0)))

    def observe(self, event: Any) -> None:
        if (event.direction == StreamDirection.INCOMING
                and event.message.get("method") == "session/update"):
            self.raw.append(event.message["params"])

    async def take(self) -> list[Any]:
        """The updates so far (then forgotten), after checking every one parsed. SDKs
        before 0.12 answer a prompt before their handlers have seen its last updates."""
        await until(lambda: len(self.updates) >= len(self.raw),
                    "every update parsed by the SDK's client side", limit=10)
        for params in self.raw:
            SessionNotification.model_validate(params)
        taken, self.updates, self.raw = self.updates, [], []
        return taken


def drive(repo: Path, tmp_path: Path, client: Recorder, body, *args: str,
          env: dict[str, str] | None = None):
    """Run `body(conn)` against `evoagent acp ARGS` started in `repo`; its result. The
    initialize response is kept in `client.initialized`."""
    stderr = (tmp_path / "agent.stderr").open("ab")

    async def main():
        async with acp.spawn_agent_process(
            client, sys.executable, "-c", LAUNCHER, "acp", *args, cwd=repo,
            env=dict(os.environ) if env is None else env, transport_kwargs={"stderr": stderr},
            observers=[client.observe],
        ) as (conn, _process):
            client.initialized = await conn.initialize(
                protocol_version=acp.PROTOCOL_VERSION, client_capabilities=client.capabilities)
            return await body(conn)

    try:
        return asyncio.run(asyncio.wait_for(main(), GUARD))
    except BaseException:
        print((tmp_path / "agent.stderr").read_text(errors="replace")[-4000:])
        raise
    finally:
        stderr.close()


async def prompt(conn, session_id: str, text: str) -> str:
    response = await conn.prompt(session_id=session_id, prompt=[acp.text_block(text)])
    return response.stop_reason


def messages(updates: list[Any]) -> str:
    return "".join(u.content.text for u in updates if u.session_update == "agent_message_chunk")


def of_kind(updates: list[Any], kind: str) -> list[Any]:
    return [u for u in updates if u.session_update == kind]


def the_change(updates: list[Any]) -> Any:
    [change] = [u for u in of_kind(updates, "tool_call") if u.tool_call_id.endswith(":change")]
    return change


def test_a_turn_streams_tool_calls_and_shows_the_change_that_accept_applies(project, tmp_path):
    model = scripted(tmp_path, [
        call("read", "c1", text="Reading the code.", path="calc.py"),
        call("edit", "c2", **FIX_EDIT),
        call("finish", "c3", summary="clamp returns high above the range"),
        # In the read-only mode: an edit is refused, the turn ends with an answer.
        call("edit", "c4", **FIX_EDIT),
        call("finish", "c5", summary="The upper branch returns low."),
    ])
    client = Recorder()
    seen: dict[str, Any] = {}

    async def body(conn):
        session = await conn.new_session(cwd=str(project.path), mcp_servers=[])
        seen["modes"] = session.modes
        await conn.set_session_mode(session_id=session.session_id, mode_id="full_auto")
        seen["stop"] = await prompt(conn, session.session_id, REQUEST)
        seen["turn"] = await client.take()
        seen["file after turn"] = (project.path / "calc.py").read_text()
        seen["accept"] = await prompt(conn, session.session_id, "/accept")
        seen["accepted"] = messages(await client.take())
        seen["file after accept"] = (project.path / "calc.py").read_text()
        await prompt(conn, session.session_id, "/undo")
        seen["undone"] = messages(await client.take())
        await conn.set_session_mode(session_id=session.session_id, mode_id="read_only")
        seen["read-only stop"] = await prompt(conn, session.session_id, "why is it wrong?")
        seen["read-only turn"] = await client.take()

    drive(project.path, tmp_path, client, body, "--model", model)

    # A model is there (the scripted one): nothing to authenticate; HTTP MCP servers taken.
    capabilities = client.initialized.agent_capabilities
    assert client.initialized.auth_methods == []
    assert (capabilities.mcp_capabilities.http, capabilities.mcp_capabilities.sse) == (True, False)
    assert seen["modes"].current_mode_id == "ask"
    assert [m.id for m in seen["modes"].available_modes] == ["ask", "auto_edits", "full_auto",
                                                             "read_only"]
    turn = seen["turn"]
    assert seen["stop"] == "end_turn"
    commands = {c.name: c for c in of_kind(turn, "available_commands_update")[0].available_commands}
    assert set(commands) == {"accept", "reject", "undo", "compact", "ask", "recall", "locate",
                             "mine"}
    assert commands["recall"].input.root.hint and commands["mine"].input is None
    assert "Reading the code." in messages(turn)
    calls = {u.tool_call_id.split(":")[-1]: u for u in of_kind(turn, "tool_call")}
    calc = str(project.path / "calc.py")
    assert (calls["c1"].kind, calls["c1"].status) == ("read", "in_progress")
    assert [loc.path for loc in calls["c1"].locations] == [calc]
    assert (calls["c2"].kind, calls["c3"].kind) == ("edit", "think")
    done = {u.tool_call_id.split(":")[-1]: u.status for u in of_kind(turn, "tool_call_update")}
    assert done == {"c1": "completed", "c2": "completed", "c3": "completed"}
    [diff] = the_change(turn).content
    assert (diff.type, diff.path, diff.old_text, diff.new_text) == ("diff", calc, CALC, FIXED)
    assert "/accept" in messages(turn)
    # The kernel's steps as a plan, the whole list each time, in the order they happened.
    plans = [[(e.content, e.status) for e in u.entries] for u in of_kind(turn, "plan")]
    assert plans[0] == [("Locate the code and history the request concerns", "in_progress")]
    assert plans[-1] == [
        ("Locate the code and history the request concerns", "completed"),
        ("Attempt 1: work on the request", "completed"),
        ("Baseline tests, without the change: 1 passed, 1 failed", "completed"),
        ("Tests of attempt 1: 2 passed, 0 failed, 0 errors", "completed"),
    ]
    assert ("Tests of attempt 1", "in_progress") in plans[-2]
    assert all(len(a) <= len(b) for a, b in pairwise(plans))  # steps are never dropped
    first_plan = turn.index(of_kind(turn, "plan")[0])
    assert first_plan < turn.index(calls["c1"]) < turn.index(of_kind(turn, "plan")[-1])
    # Nothing reached the person's file until they accepted; /undo takes it back.
    assert seen["file after turn"] == CALC
    assert seen["accept"] == "end_turn"
    assert "Applied to your files: calc.py" in seen["accepted"]
    assert seen["file after accept"] == FIXED
    assert "Put back calc.py" in seen["undone"]
    assert (project.path / "calc.py").read_text() == CALC
    # The read-only mode: every prompt is an /ask turn; the edit never ran, nothing pending.
    asked = seen["read-only turn"]
    assert seen["read-only stop"] == "end_turn"
    assert "The upper branch returns low." in messages(asked)
    refused = [u for u in of_kind(asked, "tool_call_update") if u.tool_call_id.endswith(":c4")]
    assert refused and refused[-1].status == "failed"
    assert not [u for u in of_kind(asked, "tool_call") if u.tool_call_id.endswith(":change")]
    assert (project.path / "calc.py").read_text() == CALC


def test_permission_requests_carry_the_answer_back_granted_and_refused(project, tmp_path):
    model = scripted(tmp_path, [
        call("edit", "c1", **FIX_EDIT),
        call("run", "c2", command="echo refused-command-ran"),
        call("finish", "c3", summary="fixed"),
    ])
    client = Recorder(answers=["allow_always", "reject_once"])
    seen: dict[str, Any] = {}

    async def body(conn):
        session = await conn.new_session(cwd=str(project.path), mcp_servers=[])
        seen["stop"] = await prompt(conn, session.session_id, REQUEST)
        seen["turn"] = await client.take()

    drive(project.path, tmp_path, client, body, "--model", model)  # mode ask by default

    (edit, edit_options), (command, command_options) = client.permissions
    assert edit.tool_call_id.endswith(":c1") and edit.kind == "edit"
    assert [o.kind for o in edit_options] == ["allow_once", "allow_always", "reject_once"]
    assert command.tool_call_id.endswith(":c2") and command.kind == "execute"
    assert "echo refused-command-ran" in command.title
    updates = {u.tool_call_id.split(":")[-1]: u for u in of_kind(seen["turn"], "tool_call_update")}
    assert updates["c1"].status == "completed"  # allowed: the edit was made in the sandbox
    assert updates["c2"].status == "failed"
    assert "declined" in updates["c2"].content[0].content.text
    assert seen["stop"] == "end_turn"
    [diff] = the_change(seen["turn"]).content
    assert diff.new_text == FIXED
    # "allow always" is remembered for this repository (the approver's rule file).
    rules = json.loads((project.path / ".evoagent" / "approvals.json").read_text())
    assert "edit" in json.dumps(rules)


def own_processes(marker: str) -> list[int]:
    """Pids whose command line carries this test's unique marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_cancel_mid_turn_stops_the_command_and_ends_the_turn_cancelled(project, tmp_path):
    marker = f"evoagent-acp-test-{uuid.uuid4().hex[:12]}"
    model = scripted(tmp_path, [call("run", "c1", command=f"exec -a {marker} sleep 60",
                                     timeout=120)])
    client = Recorder()
    seen: dict[str, Any] = {}

    async def body(conn):
        session = await conn.new_session(cwd=str(project.path), mcp_servers=[])
        turn = asyncio.create_task(prompt(conn, session.session_id, "wait for a minute"))
        await until(lambda: own_processes(marker) or turn.done(), "the command started")
        seen["running"] = bool(own_processes(marker))
        await conn.cancel(session_id=session.session_id)
        seen["stop"] = await turn
        await until(lambda: not own_processes(marker), "the command was killed")
        seen["turn"] = await client.take()

    drive(project.path, tmp_path, client, body, "--model", model, "--mode", "full_auto")

    assert seen["running"]
    assert seen["stop"] == "cancelled"
    [started] = of_kind(seen["turn"], "tool_call")
    assert (started.kind, started.title) == ("execute", f"run: exec -a {marker} sleep 60")


def test_a_saved_session_loads_in_a_new_process_with_its_pending_change(project, tmp_path):
    model = scripted(tmp_path, [
        call("edit", "c1", **FIX_EDIT),
        call("finish", "c2", summary="clamp returns high above the range"),
    ])
    first, second = Recorder(), Recorder()
    seen: dict[str, Any] = {}

    async def turn(conn):
        session = await conn.new_session(cwd=str(project.path), mcp_servers=[])
        seen["id"] = session.session_id
        seen["stop"] = await prompt(conn, session.session_id, REQUEST)

    async def load(conn):
        loaded = await conn.load_session(cwd=str(project.path), session_id=seen["id"],
                                         mcp_servers=[])
        seen["modes"] = loaded.modes
        seen["replay"] = await second.take()
        await prompt(conn, seen["id"], "/accept")
        seen["accepted"] = messages(await second.take())

    drive(project.path, tmp_path, first, turn, "--model", model, "--mode", "full_auto")
    assert seen["stop"] == "end_turn"
    assert (project.path / ".evoagent" / "sessions" / seen["id"] / "conversation.json").is_file()
    assert (project.path / "calc.py").read_text() == CALC

    drive(project.path, tmp_path, second, load, "--model", model)

    replay = seen["replay"]
    assert [u.content.text for u in of_kind(replay, "user_message_chunk")] == [REQUEST]
    assert "clamp returns high above the range" in messages(replay)
    [diff] = the_change(replay).content
    assert (diff.old_text, diff.new_text) == (CALC, FIXED)
    assert seen["modes"].current_mode_id == "ask"
    assert "Applied to your files: calc.py" in seen["accepted"]
    assert (project.path / "calc.py").read_text() == FIXED


def test_change_diffs_are_whole_texts_made_in_memory_or_the_hunks_when_the_file_moved_on(
        git_repo):
    from evoagent.agent.acp_diffs import file_changes

    git_repo.commit("files", {"a.txt": "1\n2\n3\n4\n5\n6\n7\n8\n", "b.txt": "x\ny",
                              "gone.txt": "bye\n", "moved.txt": "old\n"})
    git_repo.commit("the change", {"a.txt": "0\n1\n2\n3\n4\nfive\n6\n7\n8\n9\n",
                                   "b.txt": "x\nY\nz", "gone.txt": None, "new.txt": "hi\n",
                                   "moved.txt": "new\n"})
    patch = git_repo.git("diff", "-U1", "HEAD~1", "HEAD") + "\n"
    git_repo.git("reset", "-q", "--hard", "HEAD~1")
    git_repo.write("moved.txt", "the person edited this since\n")
    before = {p.name: p.read_bytes() for p in git_repo.path.glob("*.txt")}

    changes = {c.path: c for c in file_changes(git_repo.path, patch)}

    assert (changes["a.txt"].old_text, changes["a.txt"].new_text) == (
        "1\n2\n3\n4\n5\n6\n7\n8\n", "0\n1\n2\n3\n4\nfive\n6\n7\n8\n9\n")
    assert changes["b.txt"].new_text == "x\nY\nz"  # "\ No newline at end of file" kept
    assert (changes["gone.txt"].old_text, changes["gone.txt"].new_text) == ("bye\n", "")
    assert (changes["new.txt"].old_text, changes["new.txt"].new_text) == (None, "hi\n")
    assert not changes["moved.txt"].whole and "+new" in changes["moved.txt"].hunks_text
    assert {p.name: p.read_bytes() for p in git_repo.path.glob("*.txt")} == before
