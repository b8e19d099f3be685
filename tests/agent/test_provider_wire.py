"""Real provider wire formats through litellm's real clients, against loopback servers
(tests/agent/fake_providers.py) that speak OpenAI chat completions and Anthropic messages:
streamed and whole replies, tool-call arguments split across chunks, usage and cost, rate
limits and server errors with retry-after, context-length refusals (compaction, then one
more try), streams cut off before and after text was shown, and provider errors as one line.
Then whole runs: `Session.ask` in process and `evoagent fix` in a subprocess.

Nothing leaves 127.0.0.1: an audit hook refuses (and records) any other connection or name
lookup, in this process and in the `fix` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import test_fix_e2e
from evoagent.agent.approval import ApprovalMode
from evoagent.agent.context_window import SUMMARY_HEADER
from evoagent.agent.events import ContextCompacted, Phase
from evoagent.agent.model import Model, ModelError
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.session import Session
from fake_providers import Failure, FakeProvider, Reply, prompt_tokens
from test_fix_e2e import BUGGY, CALC, ISSUE

project = test_fix_e2e.project
FIXED = "    if value > high:\n        return high\n"
MODELS = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4-5"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
TOOLS = [{"type": "function", "function": {
    "name": "edit", "description": "Replace text in a file.",
    "parameters": {"type": "object", "properties": {
        "path": {"type": "string"}, "search": {"type": "string"}, "replace": {"type": "string"}},
        "required": ["path", "search", "replace"]}}}]
ASK = [{"role": "system", "content": "You are a coding agent."},
       {"role": "user", "content": "clamp() returns the lower bound above the upper bound"}]
EDIT = {"path": "calc.py", "search": BUGGY, "replace": FIXED}


# -- no network beyond loopback ---------------------------------------------------------------

_violations: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _violations is None or event not in ("socket.getaddrinfo", "socket.connect"):
        return
    if event == "socket.getaddrinfo":
        host = args[0]
    else:
        host = args[1][0] if isinstance(args[1], tuple) else None  # AF_UNIX: a path
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host is not None and host not in LOOPBACK:
        _violations.append(f"{event} {host}")
        raise ConnectionRefusedError(f"test: no network beyond 127.0.0.1 ({host})")


sys.addaudithook(_audit)  # hooks cannot be removed: it acts only while a test arms it


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Arm the audit hook; no proxy may stand between litellm and the loopback servers."""
    global _violations
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    _violations = []
    try:
        yield
        assert _violations == []
    finally:
        _violations = None


def test_the_guard_refuses_a_lookup_beyond_loopback():
    import socket

    with pytest.raises(ConnectionRefusedError, match="no network beyond 127.0.0.1"):
        socket.getaddrinfo("api.openai.com", 443)
    assert _violations == ["socket.getaddrinfo api.openai.com"]
    _violations.clear()  # seen, and expected: the fixture checks the rest of the test


@pytest.fixture
def provider(monkeypatch):
    """provider(dialect, steps, **options) -> a started FakeProvider, litellm pointed at it."""
    started: list[FakeProvider] = []

    def start(dialect: str, steps: list, **options) -> FakeProvider:
        fake = FakeProvider(dialect, steps, **options).__enter__()
        started.append(fake)
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        return fake

    yield start
    for fake in started:
        fake.__exit__(None, None, None)


def model(dialect: str, **config) -> Model:
    built = Model(name=MODELS[dialect], sleep=lambda s: built.sleeps.append(s), **config)
    built.sleeps = []
    built.events = []
    built.on_event = built.events.append
    return built


both = pytest.mark.parametrize("dialect", ["openai", "anthropic"])
streamed = pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])


# -- replies -------------------------------------------------------------------------------


@both
@streamed
def test_text_and_a_tool_call_arrive_whole_with_usage_and_cost(provider, dialect, stream):
    fake = provider(dialect, [Reply("I will fix the upper bound.", [("edit", EDIT)])])
    llm = model(dialect, stream=stream)
    deltas, fragments = [], []

    reply = llm.query(list(ASK), TOOLS, on_delta=deltas.append,
                      on_tool_delta=lambda *d: fragments.append(d))

    assert reply.text == "I will fix the upper bound." == "".join(deltas)
    [call] = reply.tool_calls
    assert (call.name, call.arguments, call.parse_error) == ("edit", EDIT, None)
    if stream:  # the arguments came in pieces, split mid-token
        assert len(deltas) > 1 and len(fragments) > 5
        assert "".join(f for _, _, f in fragments) == call.raw_arguments
    [request] = fake.requests
    assert reply.usage.prompt_tokens == prompt_tokens(request.body)  # what the server counted
    assert reply.cost_usd is not None and reply.cost_usd > 0  # litellm knows these prices
    assert request.body.get("stream", False) == stream
    if dialect == "openai":
        assert request.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer sk-test-dummy"
        assert request.body["tools"][0]["function"]["name"] == "edit"
    else:
        assert request.path == "/v1/messages"
        assert request.headers["x-api-key"] == "sk-ant-test-dummy"
        assert request.body["tools"][0]["name"] == "edit"
        assert request.body["system"][0]["cache_control"] == {"type": "ephemeral"}


@both
def test_a_tool_result_goes_back_in_the_providers_own_shape(provider, dialect):
    fake = provider(dialect, [Reply(calls=[("edit", EDIT)]), Reply("done")])
    llm = model(dialect)
    messages = list(ASK)
    first = llm.query(messages, TOOLS)
    messages += [first.assistant_message(),
                 {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "applied"}]

    assert llm.query(messages, TOOLS).text == "done"
    assert [r.refused for r in fake.requests] == ["", ""]  # both passed the API's checks
    sent = fake.requests[1].body["messages"]
    call_id = first.tool_calls[0].id
    if dialect == "openai":
        assert sent[-1] == {"role": "tool", "tool_call_id": call_id, "content": "applied"}
    else:
        assert sent[-1]["content"][0]["type"] == "tool_result"
        assert sent[-1]["content"][0]["tool_use_id"] == call_id


# -- transient failures ------------------------------------------------------------------------


@both
@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limit"), (500, "server"),
                                              (529, "overloaded")])
def test_rate_limits_and_server_errors_are_retried_after_what_the_provider_asked(
        provider, dialect, status, kind):
    fake = provider(dialect, [Failure(status, kind, retry_after=7), Reply("ok")])
    llm = model(dialect, stream=True)

    reply = llm.query(list(ASK))

    assert (reply.text, reply.attempts) == ("ok", 2)
    assert len(fake.requests) == 2  # the provider SDK's own retries are off: each is ours
    assert llm.sleeps == [7.0]  # retry-after beats the 0.5-1 s backoff
    assert llm.session.totals().calls == 1


def test_a_retry_after_longer_than_the_cap_waits_the_cap(provider):
    provider("openai", [Failure(429, "rate_limit", retry_after=3600), Reply("ok")])
    llm = model("openai", backoff_max=30)
    llm.query(list(ASK))
    assert llm.sleeps == [30]


@both
def test_a_stream_cut_before_anything_was_shown_is_retried_quietly(provider, dialect):
    # OpenAI's first event is the role, Anthropic's the message start: nothing to show yet.
    fake = provider(dialect, [Reply("never seen", cut_after=1), Reply("the answer")])
    llm = model(dialect)
    deltas: list[str] = []

    reply = llm.query(list(ASK), on_delta=deltas.append)

    assert (reply.text, reply.attempts, "".join(deltas)) == ("the answer", 2, "the answer")
    assert llm.events == [] and len(fake.requests) == 2


@both
def test_a_stream_cut_after_text_was_shown_is_marked_void_and_asked_once_more(provider, dialect):
    cut = 4 if dialect == "openai" else 5  # a few text fragments in
    fake = provider(dialect, [Reply("The bug is in the upper bound branch.", cut_after=cut),
                              Reply("The bug is in clamp().")])
    llm = model(dialect)
    deltas: list[str] = []

    reply = llm.query(list(ASK), on_delta=deltas.append)

    assert reply.text == "The bug is in clamp()." and reply.attempts == 2
    shown = "".join(deltas).removesuffix("The bug is in clamp().")
    assert shown and "The bug is in the upper bound branch.".startswith(shown)
    [event] = llm.events
    assert isinstance(event, Phase) and event.name == "reply_cut"
    assert f"after {len(shown)} characters (APIConnectionError)" in event.detail
    assert len(fake.requests) == 2


def test_a_stream_cut_inside_tool_call_arguments_counts_as_shown(provider):
    fake = provider("openai", [Reply(calls=[("edit", EDIT)], cut_after=6),
                               Reply(calls=[("edit", EDIT)])])
    llm = model("openai")
    fragments: list = []
    reply = llm.query(list(ASK), TOOLS, on_tool_delta=lambda *d: fragments.append(d))
    assert reply.tool_calls[0].arguments == EDIT
    assert [e.name for e in llm.events] == ["reply_cut"] and len(fake.requests) == 2


def test_a_second_cut_after_text_was_shown_ends_the_call(provider):
    fake = provider("openai", [Reply("partial answer, cut", cut_after=3)] * 2 + [Reply("late")])
    llm = model("openai")
    with pytest.raises(ModelError) as raised:
        llm.query(list(ASK), on_delta=lambda text: None)
    assert (raised.value.kind, raised.value.attempts) == ("APIConnectionError", 2)
    assert len(fake.requests) == 2


# -- errors ------------------------------------------------------------------------------------


@both
def test_a_provider_error_is_one_line_and_keeps_its_kind(provider, dialect):
    text = "messages.1: bad request\n  second line\n\x1b[31mred\x1b[0m end"
    fake = provider(dialect, [Failure(400, "invalid", message=text), Reply("never")])
    llm = model(dialect)
    with pytest.raises(ModelError) as raised:
        llm.query(list(ASK))
    error = raised.value
    assert error.kind == "BadRequestError" and error.attempts == 1 and len(fake.requests) == 1
    assert "\n" not in error.message and "\x1b" not in error.message
    assert error.message.startswith(f"model {MODELS[dialect]}: BadRequestError: ")
    assert "messages.1: bad request second line red end" in error.message
    assert "{" not in error.message  # the provider's message, not its JSON body


@pytest.mark.parametrize(("text", "line"), [
    ("litellm.APIConnectionError: Ollama_chatException - [Errno 111] Connection refused\n"
     "Traceback (most recent call last):\n  File \"x.py\", line 1\n"
     "Received Model Group=ollama_chat/qwen3\nAvailable Model Group Fallbacks=None",
     "[Errno 111] Connection refused Traceback (most recent call last): File \"x.py\", line 1"),
    ("litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached",
     "Rate limit reached"),
    ("litellm.BadRequestError: AnthropicException - b'{\"type\": \"error\", \"error\": "
     "{\"type\": \"invalid_request_error\", \"message\": \"max_tokens: 99999 > 64000\"}}'",
     "max_tokens: 99999 > 64000"),
    ("", "APIConnectionError"),
])
def test_litellms_error_text_is_condensed_to_the_providers_line(text, line):
    from evoagent.agent.model import condense_error

    class APIConnectionError(Exception):
        """Prints as litellm's errors do: its text as it is."""

    assert condense_error(APIConnectionError(text)) == line


# -- context length --------------------------------------------------------------------------


def long_history(turns: int, reasoning: str) -> list[dict]:
    messages = list(ASK)
    for n in range(turns):
        messages.append({"role": "assistant", "content": f"{n}: {reasoning}", "tool_calls": [
            {"id": f"call_{n}", "type": "function",
             "function": {"name": "edit", "arguments": json.dumps(EDIT)}}]})
        messages.append({"role": "tool", "tool_call_id": f"call_{n}",
                         "content": f"{n}: " + "output line\n" * 120})
    return messages


@both
def test_a_context_length_refusal_compacts_and_asks_once_more(provider, dialect):
    messages = long_history(30, "checking the branches " * 30)
    fake = provider(dialect, [Reply("Tried thirty edits of calc.py; none passed."),
                              Reply("fixed now")], max_prompt_tokens=3_000)
    llm = model(dialect, context_limit=200_000)  # it believes a big window

    reply = llm.query(messages, TOOLS)

    assert reply.text == "fixed now"
    refused, summary_request, retried = fake.requests
    assert refused.refused.startswith("context_length: ")
    assert "<transcript>" in json.dumps(summary_request.body["messages"])
    assert not retried.refused  # within the window, and every tool result has its call
    kinds = [e.how if isinstance(e, ContextCompacted) else e.name for e in llm.events]
    assert kinds[-2:] == ["compacting", "summarized"]
    assert messages[2]["content"] == f"{SUMMARY_HEADER}\nTried thirty edits of calc.py; none passed."
    assert messages[:2] == ASK and len(messages) < 20  # compacted in place: it stays so
    assert llm.context.limit < 3_000


def test_a_refusal_that_compaction_cannot_help_is_an_error(provider):
    provider("anthropic", [Reply("never")], max_prompt_tokens=10)
    with pytest.raises(ModelError) as raised:
        model("anthropic").query(list(ASK))
    assert raised.value.kind == "ContextWindowExceededError"
    assert "prompt is too long" in raised.value.message


# -- whole runs --------------------------------------------------------------------------------


def test_session_ask_runs_a_request_against_the_openai_wire(project, provider):
    fake = provider("openai", [Reply("Fixing the upper bound.", [("edit", {"edits": [EDIT]})]),
                               Reply(calls=[("finish", {"summary": "return high"})])])
    session = Session.open(RepoContext.open(project.path), MODELS["openai"],
                           ApprovalMode.FULL_AUTO)

    outcome = session.ask(ISSUE)

    assert outcome.status == "fixed" and outcome.summary == "return high"
    assert "-        return low\n+        return high\n" in outcome.patch
    assert (project.path / "calc.py").read_text() == CALC  # proposed, not applied
    assert [r.refused for r in fake.requests] == ["", ""]
    assert all(r.body["stream"] for r in fake.requests)
    assert fake.requests[1].body["messages"][-1]["role"] == "tool"


LAUNCHER = """
import sys

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def audit(event, args):
    if event not in ("socket.getaddrinfo", "socket.connect"):
        return
    host = args[0] if event == "socket.getaddrinfo" else (
        args[1][0] if isinstance(args[1], tuple) else None)
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host is not None and host not in LOOPBACK:
        sys.stderr.write(f"NETWORK ATTEMPT: {event} {host}\\n")
        raise ConnectionRefusedError(host)


sys.addaudithook(audit)
sys.argv = ["evoagent", *sys.argv[1:]]
from evoagent.agent.cli import main
main()
"""


def test_fix_in_a_subprocess_against_the_anthropic_wire_exits_0(project, provider, tmp_path):
    fake = provider("anthropic", [Reply("Fixing the upper bound.", [("edit", {"edits": [EDIT]})]),
                                  Reply(calls=[("finish", {"summary": "return high"})])])
    launcher = tmp_path / "launch.py"
    launcher.write_text(textwrap.dedent(LAUNCHER))

    done = subprocess.run(
        [sys.executable, "-W", "ignore", str(launcher), "fix", "--model", MODELS["anthropic"],
         ISSUE],
        cwd=project.path, env=dict(os.environ), capture_output=True, text=True, timeout=300,
    )

    assert "NETWORK ATTEMPT" not in done.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("fixed: run ")
    [patch] = (project.path / ".evoagent" / "runs").glob("*/patch.diff")
    assert "-        return low\n+        return high\n" in patch.read_text()
    assert (project.path / "calc.py").read_text() == CALC
    assert [r.refused for r in fake.requests] == ["", ""]
    first, second = (r.body for r in fake.requests)
    assert first["stream"] and first["system"] and {t["name"] for t in first["tools"]} >= {
        "edit", "finish"}
    assert second["messages"][-1]["content"][0]["type"] == "tool_result"
