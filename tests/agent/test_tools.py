"""Tools: registry, schemas, text protocol, and each tool against a real workspace."""

from __future__ import annotations

import json

import pytest
from evoagent.agent.genome import Genome, template_dir
from evoagent.agent.tools import (
    TOOLS,
    ToolContext,
    ToolFormatError,
    UnknownToolError,
    call_tool,
    format_text_tool_call,
    get_tool,
    parse_text_tool_calls,
    text_protocol_help,
    tool_schemas,
)
from evoagent.agent.tools.base import bound


@pytest.fixture
def ctx(tmp_path):
    (tmp_path / "lines.txt").write_text("".join(f"line {n}\n" for n in range(1, 101)))
    return ToolContext(workspace=tmp_path, output_limit=4000)


def test_unknown_tool_lists_the_choices(ctx):
    with pytest.raises(UnknownToolError) as err:
        get_tool("telepathy")
    assert err.value.message == f"unknown tool 'telepathy' (known: {', '.join(sorted(TOOLS))})"
    out = call_tool("telepathy", {}, ctx)
    assert not out.ok and "known: edit, finish" in out.text


def test_every_registered_tool_has_a_valid_openai_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schemas = tool_schemas(list(TOOLS))
    assert [s["function"]["name"] for s in schemas] == list(TOOLS)
    for schema in schemas:
        assert schema["type"] == "function"
        fn = schema["function"]
        assert fn["description"]
        params = fn["parameters"]
        jsonschema.Draft202012Validator.check_schema(params)
        assert params["type"] == "object"
        assert set(params.get("required", [])) <= set(params["properties"])
        assert all(p.get("description") for p in params["properties"].values())
        assert json.loads(json.dumps(schema)) == schema


def test_bad_arguments_are_reported_not_raised(ctx):
    assert call_tool("read", {}, ctx).text == "read: bad arguments: arguments: missing required 'path'"
    assert "start_line must be an integer" in call_tool("read", {"path": "x", "start_line": "1"}, ctx).text
    out = call_tool("edit", {"edits": [{"path": "a"}]}, ctx)
    assert out.text == "edit: bad arguments: edits[0]: missing required 'search'"
    assert "unknown 'colour'" in call_tool("read", {"path": "x", "colour": 1}, ctx).text


def test_text_protocol_round_trip():
    args = {"edits": [{"path": "a.py", "search": "x = 1\n```\n", "replace": "x = 2\n"}]}
    text = "Let me fix it.\n\n" + format_text_tool_call("edit", args) + "\nthen\n"
    text += format_text_tool_call("finish", {"summary": "done"})
    assert parse_text_tool_calls(text) == [("edit", args), ("finish", {"summary": "done"})]
    assert parse_text_tool_calls("no tools here\n```python\nprint(1)\n```") == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("```tool read\n{\"path\": \n```", "not valid JSON"),
        ("```tool read\n[1, 2]\n```", "must be a JSON object"),
        ("```tool read\n{\"path\": \"a\"}\n", "not closed"),
    ],
)
def test_text_protocol_malformed_blocks(text, problem):
    with pytest.raises(ToolFormatError, match=problem):
        parse_text_tool_calls(text)


def test_text_protocol_help_describes_each_tool():
    help_text = text_protocol_help(["read", "finish"])
    assert "```tool read" in help_text
    assert "### finish" in help_text and "- summary (string, required)" in help_text
    assert "### edit" not in help_text


def test_read_range_is_numbered(ctx):
    out = call_tool("read", {"path": "lines.txt", "start_line": 3, "end_line": 5}, ctx)
    assert out.ok
    assert out.text == "lines.txt (lines 3-5 of 100)\n     3\tline 3\n     4\tline 4\n     5\tline 5"


def test_read_truncates_with_a_note_where_to_continue(ctx):
    ctx.output_limit = 600
    out = call_tool("read", {"path": "lines.txt"}, ctx)
    assert len(out.text) <= 600
    assert out.text.startswith("lines.txt (lines 1-")
    last = int(out.text.split("lines 1-")[1].split(" ")[0])
    assert 10 < last < 100
    assert f"read again with start_line={last + 1} to continue" in out.text


def test_read_errors_and_directories(ctx):
    assert not call_tool("read", {"path": "missing.txt"}, ctx).ok
    assert not call_tool("read", {"path": "../etc/passwd"}, ctx).ok
    (ctx.workspace / "pkg").mkdir()
    assert call_tool("read", {"path": "."}, ctx).text.endswith("lines.txt\npkg/")
    (ctx.workspace / "blob.bin").write_bytes(b"\0\1\2")
    assert "binary file" in call_tool("read", {"path": "blob.bin"}, ctx).text


def test_search_uses_git_grep_in_a_real_repo(git_repo):
    git_repo.commit(
        "init",
        files={"src/app.py": "def handler():\n    return 42\n", "docs/notes.md": "handler docs\n"},
    )
    git_repo.write("src/new.py", "handler = None\n")  # untracked files are searched too
    ctx = ToolContext(workspace=git_repo.path)
    out = call_tool("search", {"pattern": "handler"}, ctx)
    assert out.ok
    assert out.text.splitlines() == [
        "docs/notes.md:1:handler docs",
        "src/app.py:1:def handler():",
        "src/new.py:1:handler = None",
    ]
    out = call_tool("search", {"pattern": "def \\w+\\(", "path": "src/**/*.py"}, ctx)
    assert out.text == "src/app.py:1:def handler():"
    assert call_tool("search", {"pattern": "nothing_like_this"}, ctx).text.startswith("no matches")
    assert not call_tool("search", {"pattern": "("}, ctx).ok


def test_search_bounds_the_number_of_matches(git_repo):
    git_repo.commit("many", files={"big.txt": "hit\n" * 500})
    out = call_tool("search", {"pattern": "hit"}, ToolContext(workspace=git_repo.path))
    assert out.text.endswith("[300 more matches not shown; narrow the pattern or path]")
    assert out.data == {"matches": 500}


def test_write_refuses_to_overwrite_unless_asked(ctx):
    out = call_tool("write", {"path": "lines.txt", "content": "new\n"}, ctx)
    assert not out.ok and "already exists" in out.text
    assert (ctx.workspace / "lines.txt").read_text().startswith("line 1\n")
    out = call_tool("write", {"path": "lines.txt", "content": "new\n", "overwrite": True}, ctx)
    assert out.ok and (ctx.workspace / "lines.txt").read_text() == "new\n"
    out = call_tool("write", {"path": "tests/test_new.py", "content": "def test():\n    pass\n"}, ctx)
    assert out.text == "created tests/test_new.py (2 lines)"
    assert out.data["diffs"]["tests/test_new.py"].startswith("--- /dev/null")


def test_write_and_edit_respect_the_policy(ctx):
    ctx.writable = lambda path: not path.startswith("tests/")
    assert not call_tool("write", {"path": "tests/t.py", "content": "x"}, ctx).ok
    out = call_tool("edit", {"edits": [{"path": "tests/t.py", "search": "", "replace": "x"}]}, ctx)
    assert not out.ok and "policy" in out.text
    assert not (ctx.workspace / "tests").exists()


def test_edit_tool_applies_blocks_and_returns_diffs(ctx):
    edits = [{"path": "lines.txt", "search": "line 7\n", "replace": "line seven\n"}]
    out = call_tool("edit", {"edits": edits}, ctx)
    assert out.ok
    assert "-line 7\n+line seven\n" in out.text
    assert "lines.txt" in out.data["diffs"]
    failed = call_tool("edit", {"edits": [{"path": "lines.txt", "search": "line  sevenn\n", "replace": ""}]}, ctx)
    assert not failed.ok and "Did you mean lines 7-7" in failed.text


def test_finish_is_the_stop_signal(ctx):
    out = call_tool("finish", {"summary": "Fixed the off-by-one."}, ctx)
    assert out.is_finish
    assert out.data == {"finish": True, "summary": "Fixed the off-by-one."}
    assert not call_tool("read", {"path": "lines.txt"}, ctx).is_finish


@pytest.mark.parametrize(
    ("name", "args", "said"),
    [
        ("run", {"command": "ls"}, "running commands is not available"),
        ("run_tests", {}, "run_tests (no test command detected) is not available"),
        ("locate", {"query": "x"}, "locate is not available"),
        ("recall", {"query": "x"}, "recall (repository memory) is not available"),
        ("repo_map", {}, "repo_map (code index) is not available"),
    ],
)
def test_tools_say_when_their_backend_is_unavailable(ctx, name, args, said):
    out = call_tool(name, args, ctx)
    assert not out.ok
    assert out.text.startswith(said)


def test_tools_call_the_context_backends(ctx):
    calls = []
    ctx.run_command = lambda cmd, timeout: (calls.append((cmd, timeout)) or (1, "boom\n"))
    ctx.run_tests = lambda selection: f"ran {selection}"
    ctx.locate = lambda text, k: {
        "files": [{"path": "a.py", "score": 1.0, "why": ["named in trace"]}],
        "symbols": [{"path": "a.py", "name": "f", "line": 3, "score": 0.5}],
    }
    ctx.recall = lambda q, k: [{"sha": "0123456789abcdef", "subject": "Fix f", "files": ["a.py"]}]
    ctx.repo_map = lambda budget, focus: f"map {budget} {focus}"
    ctx.command_timeout = 30
    out = call_tool("run", {"command": "make", "timeout": 999}, ctx)
    assert (out.ok, out.text, out.data) == (False, "exit code 1\nboom\n", {"exit_code": 1})
    assert calls == [("make", 30.0)]
    assert call_tool("run_tests", {"selection": ["t::x"]}, ctx).text == "ran ['t::x']"
    assert call_tool("run_tests", {}, ctx).text == "ran None"
    assert call_tool("locate", {"query": "q"}, ctx).text == (
        "Files:\n- a.py  (named in trace)\nSymbols:\n- a.py:3 f"
    )
    assert call_tool("recall", {"query": "q"}, ctx).text == "0123456789  Fix f\n    files: a.py"
    assert call_tool("repo_map", {"focus": ["a.py"]}, ctx).text == "map 2000 ['a.py']"


def test_load_skill_from_the_genome(ctx):
    ctx.skills = Genome.load(template_dir()).skills
    out = call_tool("load_skill", {"name": "reproduce-first"}, ctx)
    assert out.ok and out.text.startswith("# Reproduce first")
    out = call_tool("load_skill", {"name": "nope"}, ctx)
    assert not out.ok and "available: debug-failing-test" in out.text


def test_every_result_is_bounded_with_head_and_tail(ctx):
    ctx.output_limit = 500
    ctx.run_command = lambda cmd, timeout: (0, "HEAD" + "x" * 5000 + "TAIL")
    out = call_tool("run", {"command": "noisy"}, ctx)
    assert len(out.text) <= 500
    assert out.text.startswith("exit code 0\nHEAD")
    assert out.text.endswith("TAIL")
    assert "characters elided" in out.text


@pytest.mark.parametrize("limit", [0, 10, 100, 1000])
def test_bound_never_exceeds_the_limit_for_reasonable_limits(limit):
    text = "a" * 5000
    result = bound(text, limit)
    assert len(result) <= max(limit, len("\n[... 5000 characters elided ...]\n"))
    assert bound("short", limit if limit >= 5 else 5) == "short"
