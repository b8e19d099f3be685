"""Approvals people can live with: "allow always" rules kept per repository, read-only
commands never asked, and neither ever reaching past the policy or a compound command.

The real approver, the real tools and the real rules file in a tmp dir; the person is an
emit that answers each question and keeps it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evoagent.agent.approval import ApprovalMode, Approver
from evoagent.agent.approval_rules import (
    ApprovalRules,
    Rule,
    is_read_only,
    rule_for,
    simple_words,
)
from evoagent.agent.events import ApprovalNeeded, ToolResult
from evoagent.agent.genome import Policy
from evoagent.agent.loop import AgentLoop, LoopConfig
from evoagent.agent.model import Model
from evoagent.agent.scripted_provider import (
    ScriptedReply,
    ScriptedToolCall,
    register_script,
    unregister_script,
)
from evoagent.agent.tools import call_tool
from evoagent.agent.tools.base import ToolContext


class Person:
    """An emit that answers every question (`allowed`, `always`) and keeps it."""

    def __init__(self, allowed: bool = True, always: bool = False):
        self.asked: list[ApprovalNeeded] = []
        self.allowed, self.always = allowed, always

    def __call__(self, event) -> None:
        if isinstance(event, ApprovalNeeded):
            self.asked.append(event)
            event.answer(self.allowed, always=self.always)

    @property
    def details(self) -> list[str]:
        return [e.detail for e in self.asked]


def tools_ctx(workspace: Path, approver: Approver, ran: list[str], policy: Policy | None = None) -> ToolContext:
    def run_command(command: str, timeout: float) -> tuple[int, str]:
        ran.append(command)
        return 0, "ok"

    return ToolContext(workspace=workspace, run_command=run_command, approve=approver.approve,
                       writable=policy.allows_write if policy else None)


# -- the rules file -------------------------------------------------------------------------


def test_rules_round_trip_through_the_repositorys_file(tmp_path):
    rules = ApprovalRules.for_repo(tmp_path)
    assert rules.rules == [] and rules.warning is None
    for rule in (Rule("edit"), Rule("command", ("pytest",)), Rule("command", ("python", "-m", "pytest")),
                 Rule("command", ("pytest",))):
        rules.add(rule)
    saved = json.loads((tmp_path / "approvals.json").read_text())
    assert saved == {"version": 1, "tools": ["edit"],
                     "commands": [["pytest"], ["python", "-m", "pytest"]]}
    assert [p.name for p in tmp_path.iterdir()] == ["approvals.json"]  # no temporary left

    again = ApprovalRules.for_repo(tmp_path)
    assert again.rules == rules.rules and again.warning is None
    assert again.allows("edit", "any diff") and not again.allows("write", "any diff")
    assert again.allows("command", "python -m pytest -x tests/test_a.py")
    assert not again.allows("command", "python -m pip install x")


def test_two_sessions_adding_rules_keep_both(tmp_path):
    first, second = ApprovalRules.for_repo(tmp_path), ApprovalRules.for_repo(tmp_path)
    first.add(Rule("command", ("make", "test")))
    second.add(Rule("write"))
    assert set(ApprovalRules.for_repo(tmp_path).rules) == {Rule("command", ("make", "test")), Rule("write")}


@pytest.mark.parametrize(("content", "reason"), [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b'["pytest"]', "not a version 1"),
    (b'{"version": 2, "commands": [["pytest"]]}', "not a version 1"),
    (b'{"version": 1, "tools": ["run"]}', "'tools' must list only edit, write"),
    (b'{"version": 1, "commands": "pytest"}', "'commands' must list"),
    # hand-written prefixes no question could have offered: they would allow anything
    (b'{"version": 1, "commands": [["env"]]}', "'commands' must list"),
    (b'{"version": 1, "commands": [[]]}', "'commands' must list"),
    (b'{"version": 1, "commands": [["bash"]]}', "'commands' must list"),
    (b'{"version": 1, "commands": [["py*"]]}', "'commands' must list"),
    # an MCP rule names one tool: never a whole server, all of them, or something else
    (b'{"version": 1, "mcp": ["demo"]}', "'mcp' must list"),
    (b'{"version": 1, "mcp": ["*"]}', "'mcp' must list"),
    (b'{"version": 1, "mcp": [""]}', "'mcp' must list"),
    (b'{"version": 1, "mcp": "demo__add"}', "'mcp' must list"),
    (b'{"version": 1, "mcp": [["demo__add"]]}', "'mcp' must list"),
])
def test_a_damaged_file_is_one_warning_no_rules_and_kept_aside(tmp_path, content, reason):
    (tmp_path / "approvals.json").write_bytes(content)
    person = Person()
    approver = Approver(ApprovalMode.ASK, person, rules=ApprovalRules.for_repo(tmp_path))
    assert approver.rules.rules == []
    assert approver.approve("command", "pytest -q") and approver.approve("command", "pytest -x")
    first, second = person.asked
    assert reason in first.notice and "approvals.json" in first.notice
    assert second.notice == ""  # one warning, not one per question
    assert content.decode("utf-8", "replace") not in first.notice  # never the file's bytes

    approver.rules.add(Rule("command", ("pytest",)))  # saving moves the damaged file aside
    [kept] = tmp_path.glob("approvals.json.damaged-*")
    assert kept.read_bytes() == content
    assert ApprovalRules.for_repo(tmp_path).rules == [Rule("command", ("pytest",))]


def test_a_directory_where_the_file_should_be_is_damage_not_a_crash(tmp_path):
    (tmp_path / "approvals.json").mkdir()
    rules = ApprovalRules.for_repo(tmp_path)
    assert rules.rules == [] and "not a regular file" in rules.take_warning()
    assert rules.take_warning() is None


# -- "allow always" -------------------------------------------------------------------------


def test_allow_always_is_not_asked_again_in_this_session_or_the_next(tmp_path):
    person = Person(always=True)
    approver = Approver(ApprovalMode.ASK, person, rules=ApprovalRules.for_repo(tmp_path))
    assert approver.approve("command", "pytest -q tests/test_a.py")
    assert approver.approve("command", "pytest -x")
    assert approver.approve("command", "pytest tests/test_*.py")
    assert approver.approve("edit", "--- a\n+++ b\n")
    assert approver.approve("edit", "another diff")
    assert [(e.action, e.remember) for e in person.asked] == [("command", "pytest"), ("edit", "edit")]

    later = Person(allowed=False)  # the next session, on the same repository
    approver = Approver(ApprovalMode.ASK, later, rules=ApprovalRules.for_repo(tmp_path))
    assert approver.approve("command", "pytest --lf") and approver.approve("edit", "a diff")
    assert not approver.approve("write", "a new file")  # never allowed always
    assert not approver.approve("command", "make test")
    assert later.details == ["a new file", "make test"]


def test_allow_once_and_deny_store_nothing(tmp_path):
    for person in (Person(), Person(allowed=False, always=True)):
        approver = Approver(ApprovalMode.ASK, person, rules=ApprovalRules.for_repo(tmp_path))
        approver.approve("command", "pytest -q")
        approver.approve("command", "pytest -q")
        assert len(person.asked) == 2
    assert not (tmp_path / "approvals.json").exists()


def test_an_always_arriving_after_a_cancel_stores_nothing(tmp_path):
    approvers: list[Approver] = []

    def emit(event):
        approvers[0].refuse_pending()  # the request is cancelled while the question is up
        event.answer(True, always=True)  # and the person's click lands just after

    approvers.append(Approver(ApprovalMode.ASK, emit, rules=ApprovalRules.for_repo(tmp_path)))
    assert approvers[0].approve("command", "pytest -q") is False
    assert approvers[0].rules.rules == [] and not (tmp_path / "approvals.json").exists()


@pytest.mark.parametrize(("command", "remembered"), [
    ("pytest -q tests/test_a.py", "pytest"),
    ("python -m pytest -x", "python -m pytest"),
    ("python3.12 -m pytest", "python3.12 -m pytest"),
    ("make test", "make test"),
    ("uv run pytest -q", "uv run pytest"),
    ("npm run lint -- --fix", "npm run lint"),
    ("python tools/check.py --all", "python tools/check.py"),
    ("'my tool' --flag", "'my tool'"),
    # nothing narrow to remember: a rule would allow any program or any code
    ("python -c 'print(1)'", ""), ("bash -c 'make test'", ""), ("python", ""),
    ("make", ""), ("npm run", ""), ("git -c core.pager=sh commit", ""),
    ("env pytest", ""), ("timeout 60 pytest", ""), ("xargs rm", ""), ("time pytest", ""),
    ("sudo pytest", ""), ("exec pytest", ""), ("eval pytest", ""), ("uv run bash -c x", ""),
    ("find . -delete", ""), ("rg --pre sh x", ""), ("git log --output=x", ""),
    ("py* -q", ""), ("python 'a*.py'", ""), ("enable -f ./x.so y", ""), ("perl -e x", ""),
    ("sed -n p calc.py", ""), ("awk '{print $1}' calc.py", "awk '{print $1}'"),
    # compound or expanded: never remembered
    ("pytest; rm -rf x", ""), ("pytest $(rm -rf x)", ""),
    ('genome tool tools/lint.py {"path": "a.py"}', ""),
    # an MCP tool call: that one tool
    ('mcp demo__add {"a": 2, "b": 3}', "mcp demo__add"), ("mcp demo__peek {}", "mcp demo__peek"),
    ('mcp demo__add {"a": "$(rm -rf x)"}', ""), ('mcp demo__add {"a":2}', ""),
    ('mcp demo__add {"a": 2}; rm -rf x', ""), ("mcp demo {}", ""),
])
def test_what_allow_always_offers_to_remember(command, remembered):
    rule = rule_for("command", command)
    assert (rule.label if rule else "") == remembered


class NoServer:
    """The `McpClients` of a run whose servers are closed: a call past the approval answers
    "off" without reaching any process."""

    call_timeout = 1.0

    def __init__(self, server):
        from evoagent.agent.mcp_connection import Connection
        from evoagent.agent.mcp_tools import McpClients

        self.clients = McpClients([], runner=None, workspace=Path("."))
        self.connection = Connection(server, lambda: None, None)

    def tool(self, name: str):
        from evoagent.agent.mcp_tool import McpTool

        return McpTool(self.clients, self.connection, {"name": name, "inputSchema": {"type": "object"}})


def mcp_tools(origin: str = "project") -> dict[str, object]:
    """Real `McpTool`s of two servers (no process behind them): what the conversation offers."""
    from evoagent.agent.mcp_config import ServerDef

    tools = {}
    for server in ("demo", "other"):
        clients = NoServer(ServerDef(server, origin, Path(".mcp.json"), command="srv"))
        for name in ("add", "sub"):
            tool = clients.tool(name)
            tools[tool.name] = tool
    return tools


def test_allow_always_for_an_mcp_tool_remembers_that_tool_not_its_server(tmp_path):
    person = Person(always=True)
    approver = Approver(ApprovalMode.ASK, person, rules=ApprovalRules.for_repo(tmp_path))
    ctx = ToolContext(workspace=tmp_path, approve=approver.approve, extra_tools=mcp_tools())
    for args in ({"a": 2, "b": 3}, {"a": 1, "b": 1}, {"a": "text, with {braces}"}):
        out = call_tool("demo__add", args, ctx)
        assert not out.ok and "is off for this session" in out.text  # allowed, then no server
    call_tool("demo__sub", {"a": 1}, ctx)
    assert [(e.detail, e.remember) for e in person.asked] == [
        ('mcp demo__add {"a": 2, "b": 3}', "mcp demo__add"), ('mcp demo__sub {"a": 1}', "mcp demo__sub")]
    saved = json.loads((tmp_path / "approvals.json").read_text())
    assert saved == {"version": 1, "tools": [], "commands": [], "mcp": ["demo__add", "demo__sub"]}

    later = Person(allowed=False)  # the next session: the same tools go through, no other
    approver = Approver(ApprovalMode.AUTO_EDITS, later, rules=ApprovalRules.for_repo(tmp_path))
    ctx = ToolContext(workspace=tmp_path, approve=approver.approve, extra_tools=mcp_tools())
    assert "is off for this session" in call_tool("demo__add", {"a": 5}, ctx).text
    assert "is off for this session" in call_tool("demo__sub", {}, ctx).text
    for name in ("other__add", "other__sub"):
        assert call_tool(name, {"a": 5}, ctx).text.startswith("The user declined")
    assert later.details == ['mcp other__add {"a": 5}', 'mcp other__sub {"a": 5}']
    # an argument bash would expand, were the same text run as a command, is asked
    assert call_tool("demo__add", {"a": "$(id)"}, ctx).text.startswith("The user declined")
    assert later.details[-1] == 'mcp demo__add {"a": "$(id)"}'


MCP_LOOKALIKES = [
    'mcp demo__add {"a": "$(rm -rf x)"}', 'mcp demo__add {"a": "`rm -rf x`"}',
    'mcp demo__add {"a": "${IFS}"}', 'mcp demo__add {"a": 1}; rm -rf x', 'mcp demo__add {"a": 1} && rm x',
    'mcp demo__add {"a": 1}\nrm -rf x', 'mcp demo__add {"a":1}', 'mcp demo__add {"a": 1, "a": 2}',
    'mcp demo__add {"a": 1} > calc.py', "mcp demo__add [1]", "mcp demo__add", "mcp demo__addx {}",
    "mcp demo {}", "mcp  demo__add {}", "env mcp demo__add {}", "./mcp demo__add {}",
    'mcp demo__add {"a": "\x1b[2K"}',
]


@pytest.mark.parametrize("command", MCP_LOOKALIKES)
def test_an_mcp_rule_allows_no_shell_command_but_its_own_form(tmp_path, command):
    """The run tool is asked with the same action: text that is not exactly the MCP call's
    form, or that bash would expand, is asked whatever MCP tool is allowed always."""
    rules = ApprovalRules.for_repo(tmp_path)
    rules.add(Rule("mcp", ("demo__add",)))
    person, ran = Person(allowed=False), []
    ctx = tools_ctx(tmp_path, Approver(ApprovalMode.AUTO_EDITS, person, rules=rules), ran)
    assert not call_tool("run", {"command": command}, ctx).ok
    assert person.details == [command] and ran == []


def test_a_command_rule_never_covers_an_mcp_call(tmp_path):
    rules = ApprovalRules.for_repo(tmp_path)
    rules.add(Rule("command", ("mcp",)))  # a program of that name, allowed always
    person = Person(allowed=False)
    ctx = ToolContext(workspace=tmp_path, extra_tools=mcp_tools(),
                      approve=Approver(ApprovalMode.ASK, person, rules=rules).approve)
    assert call_tool("demo__add", {"a": 1}, ctx).text.startswith("The user declined")
    assert person.details == ['mcp demo__add {"a": 1}']


# -- read-only: never asked in ask mode ---------------------------------------------------------

READ_ONLY = [
    "git status", "git status --porcelain", "git log --oneline -5", "git log HEAD~3..HEAD",
    "git diff", "git diff HEAD~1 -- calc.py", "git show HEAD:calc.py", "ls", "ls -la src",
    "cat calc.py", "head -n 20 calc.py", "tail -5 calc.py", "wc -l calc.py", "pwd",
    "grep -rn 'def clamp' .", 'grep -r "foo|bar" .', "grep '^x$' calc.py", "grep -n x *.py",
    "rg clamp", "rg -n 'a;b' src", "find . -name '*.py'", "find src -type f -newer calc.py",
    "ls 'a && b'", "ls a#b",
]


@pytest.mark.parametrize("command", READ_ONLY)
def test_read_only_commands_run_without_a_question(tmp_path, command):
    person, ran = Person(allowed=False), []
    ctx = tools_ctx(tmp_path, Approver(ApprovalMode.ASK, person), ran)
    assert call_tool("run", {"command": command}, ctx).ok
    assert ran == [command] and person.asked == []


def test_read_only_tools_never_ask(tmp_path):
    """read, search, locate, recall and repo_map do not call the approver at all."""
    (tmp_path / "calc.py").write_text("def clamp(): pass\n")
    person = Person(allowed=False)
    ctx = ToolContext(workspace=tmp_path, approve=Approver(ApprovalMode.ASK, person).approve,
                      locate=lambda text, k: {"files": [], "symbols": []},
                      recall=lambda query, k: [], repo_map=lambda budget, focus: "calc.py")
    for name, args in [("read", {"path": "calc.py"}), ("search", {"pattern": "clamp"}),
                       ("locate", {"query": "clamp"}), ("recall", {"query": "clamp"}),
                       ("repo_map", {})]:
        assert call_tool(name, args, ctx).ok, name
    assert person.asked == []


# -- what a hostile model would try ------------------------------------------------------------

HOSTILE = [
    # chained, piped, backgrounded, redirected
    "pytest; rm -rf x", "pytest && rm -rf x", "pytest || rm -rf x", "pytest | sh",
    "pytest & rm -rf x", "pytest > calc.py", "pytest < /dev/zero", "pytest 2>&1",
    "pytest\nrm -rf x", "pytest\r\nrm -rf x", "pytest\x00rm", "pytest ;rm", "(pytest)",
    "{ pytest; }", "! pytest",
    # expansions
    "pytest $(rm -rf x)", "pytest `rm -rf x`", 'pytest "$(rm -rf x)"', 'pytest "`rm`"',
    "pytest $HOME", "pytest ${IFS}", "pytest $'\\x3b'", "pytest ~/x", "pytest --rootdir=~",
    'pytest "\\$(rm)"', "pytest {a,b}",
    # escapes, comments, assignments, quoting
    "pytest \\; rm -rf x", "PYTHONPATH=. pytest", "FOO=bar pytest -q", "'pytest", 'pytest "x',
    "pytest #; rm",
    # look-alikes and wrappers of allowed prefixes
    "pytest-evil", "./pytest", "/tmp/pytest", "python -m pytest_evil", "python -c 'import os'",
    "env pytest", "timeout 5 pytest", "time pytest", "command pytest", "xargs -a f pytest",
    "make testx", "make -f evil.mk test", "pytes? -q", "py* -q",
    # display tricks: the person would be shown something other than what runs
    "pytest \x1b[2K", "pytest \u202erm",
    # read-only programs doing more than reading
    "find . -delete", "find . -exec rm {} +", "find . -execdir sh -c x ;", "find . -fprint out",
    "find . -name x -ok rm {} ;", "find *", "rg --pre sh x", "rg --pre=sh x", "rg x *",
    "rg --hostname-bin=sh x", "git log --output=x", "git diff --outp=x", "git diff --ext-diff",
    "git -c core.pager=sh log", "git -C .. status", "git --no-pager log", "git commit -am x",
    "git status; rm -rf x", "ls && rm -rf x", "cat calc.py > x", "grep x $(rm)",
    "ls {a,b}", "cat ~/.ssh/id_rsa", "tail -f x | sh", "ls\t;rm",
    # a genome tool call is asked as a command
    'genome tool tools/lint.py {"path": "a.py"}',
]


@pytest.mark.parametrize("command", HOSTILE)
def test_hostile_commands_are_asked_even_with_broad_rules(tmp_path, command):
    rules = ApprovalRules.for_repo(tmp_path)
    for words in (("pytest",), ("python", "-m", "pytest"), ("make", "test")):
        rules.add(Rule("command", words))
    person, ran = Person(allowed=False), []
    ctx = tools_ctx(tmp_path, Approver(ApprovalMode.AUTO_EDITS, person, rules=rules), ran)
    out = call_tool("run", {"command": command}, ctx)
    assert person.details == [command]
    assert not out.ok and ran == []
    assert not is_read_only(command)


@pytest.mark.parametrize("command", ["pytest; rm -rf x", "pytest && make test", "pytest | tee log"])
def test_a_compound_command_never_offers_allow_always(command):
    approver = Approver(ApprovalMode.ASK, person := Person(always=True))
    assert approver.approve("command", command)
    assert approver.approve("command", command)
    assert [e.remember for e in person.asked] == ["", ""] and approver.rules.rules == []


def test_simple_words_agree_with_bash_on_quotes():
    assert simple_words("""grep -n "a \\"b\\" \\\\c" 'd;e' f""") == ["grep", "-n", 'a "b" \\c', "d;e", "f"]
    assert simple_words("pytest tests/*.py") is None
    assert simple_words("pytest tests/*.py", globs=True) == ["pytest", "tests/*.py"]


# -- rules never loosen the policy --------------------------------------------------------------

TEMPLATE_POLICY = Policy(tools=["read", "edit", "write", "finish"], writable=["src/**", "tests/**"],
                         protected=[".git/**", ".evoagent/**", "src/secret/**"])


@pytest.fixture
def allow_everything(tmp_path) -> ApprovalRules:
    rules = ApprovalRules(tmp_path / "state" / "approvals.json")
    for rule in (Rule("edit"), Rule("write"), Rule("command", ("pytest",))):
        rules.add(rule)
    return rules


@pytest.mark.parametrize("path", [".evoagent/agent/policy.toml", ".git/config", "src/secret/key.py",
                                  "setup.py", "../outside.py"])
def test_a_rule_cannot_edit_or_write_what_the_policy_protects(tmp_path, allow_everything, path):
    workspace = tmp_path / "ws"
    (workspace / "src" / "secret").mkdir(parents=True)
    for rel in (".evoagent/agent/policy.toml", ".git/config", "src/secret/key.py", "setup.py"):
        (workspace / rel).parent.mkdir(parents=True, exist_ok=True)
        (workspace / rel).write_text("old\n")
    person, ran = Person(), []
    ctx = tools_ctx(workspace, Approver(ApprovalMode.ASK, person, rules=allow_everything), ran,
                    TEMPLATE_POLICY)
    edited = call_tool("edit", {"edits": [{"path": path, "search": "old", "replace": "new"}]}, ctx)
    written = call_tool("write", {"path": path, "content": "new\n", "overwrite": True}, ctx)
    assert not edited.ok and not written.ok
    assert person.asked == []  # refused by the policy, without a question
    assert all(p.read_text() == "old\n" for p in workspace.rglob("*") if p.is_file())
    assert not (tmp_path / "outside.py").exists()
    # what the policy allows goes through on the rule, unasked
    assert call_tool("write", {"path": "src/new.py", "content": "x = 1\n"}, ctx).ok
    assert person.asked == []


def test_a_rule_cannot_run_a_command_when_the_policy_disables_run(tmp_path, allow_everything):
    """`run` is not in the policy's tools: the loop refuses the call before any approval."""
    register_script("approval-policy", [
        ScriptedReply(tool_calls=[ScriptedToolCall("run", {"command": "pytest -q"})]),
        ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": "done"})]),
    ])
    try:
        person, ran, events = Person(), [], []
        ctx = tools_ctx(tmp_path, Approver(ApprovalMode.ASK, person, rules=allow_everything), ran,
                        TEMPLATE_POLICY)
        loop = AgentLoop(Model(name="scripted/approval-policy"), ctx,
                         LoopConfig(list(TEMPLATE_POLICY.tools)), events.append,
                         [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}])
        assert loop.run().finished
    finally:
        unregister_script("approval-policy")
    results = [e for e in events if isinstance(e, ToolResult) and e.name == "run"]
    assert [r.ok for r in results] == [False] and "not available" in results[0].output
    assert ran == [] and person.asked == []
