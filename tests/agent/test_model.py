"""Model over the scripted provider through real litellm; usage accounting and budgets."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys

import pytest
from evoagent.agent.errors import EXIT_BUDGET, EXIT_MODEL
from evoagent.agent.model import Model, ModelError, litellm_module, with_cache_control
from evoagent.agent.scripted_provider import (
    ScriptedReply,
    ScriptedToolCall,
    register_script,
    unregister_script,
)
from evoagent.agent.usage import Budget, BudgetExhausted, SessionUsage, Usage

_names = itertools.count()
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "edit",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "search": {"type": "string"}},
            },
        },
    }
]
USER = [
    {"role": "system", "content": "You are a coding agent."},
    {"role": "user", "content": "fix the bug"},
]


@pytest.fixture
def scripted():
    """scripted(steps, **config) -> (Model with recorded sleeps, Script)."""
    registered = []

    def make(steps, **config):
        name = f"m{next(_names)}"
        registered.append(name)
        handle = register_script(name, steps)
        sleeps: list[float] = []
        model = Model(name=f"scripted/{name}", sleep=sleeps.append, rng=random.Random(0), **config)
        model.sleeps = sleeps
        return model, handle

    yield make
    for name in registered:
        unregister_script(name)


def error(kind: str, **extra):
    litellm = litellm_module()
    return getattr(litellm, kind)(message=f"simulated {kind}", llm_provider="x", model="m", **extra)


@pytest.mark.parametrize("stream", [False, True])
def test_text_reply(scripted, stream):
    model, _ = scripted(["The bug is in parse()."], stream=stream)
    reply = model.query(USER)
    assert reply.text == "The bug is in parse()."
    assert reply.tool_calls == []
    assert reply.finish_reason == "stop"
    assert reply.assistant_message() == {"role": "assistant", "content": "The bug is in parse()."}


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_reply_with_parsed_arguments(scripted, stream):
    arguments = {"path": "pkg/mod.py", "search": "def parse(text):\n    return text"}
    model, handle = scripted(
        [ScriptedReply("Editing.", [ScriptedToolCall("edit", arguments, id="call_1")])],
        stream=stream,
    )
    reply = model.query(USER, TOOLS)
    [call] = reply.tool_calls
    assert (call.id, call.name, call.arguments, call.parse_error) == (
        "call_1",
        "edit",
        arguments,
        None,
    )
    assert json.loads(call.raw_arguments) == arguments
    assert reply.text == "Editing."
    assert reply.finish_reason == "tool_calls"
    assert handle.requests[0][1] == TOOLS
    assert reply.assistant_message()["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "edit", "arguments": call.raw_arguments},
        }
    ]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("raw", "expected_error"),
    [('{"path": "a.py"', "not valid JSON"), ('["a.py"]', "must be a JSON object, got list")],
)
def test_malformed_arguments_set_parse_error(scripted, stream, raw, expected_error):
    model, _ = scripted([{"tool_calls": [{"name": "edit", "arguments": raw}]}], stream=stream)
    [call] = model.query(USER, TOOLS).tool_calls
    assert call.arguments is None
    assert call.raw_arguments == raw
    assert expected_error in call.parse_error


def test_empty_arguments_mean_no_arguments(scripted):
    model, _ = scripted([{"tool_calls": [{"name": "finish", "arguments": ""}]}])
    [call] = model.query(USER, TOOLS).tool_calls
    assert (call.arguments, call.parse_error) == ({}, None)


def test_streaming_deltas_arrive_in_order_and_assemble(scripted):
    text = "First I will read the failing test, then the module it imports."
    arguments = {"path": "pkg/a_rather_long_module_name.py", "search": "x = 1"}
    model, _ = scripted([{"text": text, "tool_calls": [{"name": "edit", "arguments": arguments}]}])
    deltas: list[str] = []
    tool_deltas: list[tuple[int, str | None, str]] = []
    reply = model.query(
        USER, TOOLS, on_delta=deltas.append, on_tool_delta=lambda *d: tool_deltas.append(d)
    )
    assert len(deltas) > 3
    assert "".join(deltas) == text == reply.text
    assert tool_deltas[0][:2] == (0, "edit")
    assert all(name is None for _, name, _ in tool_deltas[1:])
    assert "".join(fragment for _, _, fragment in tool_deltas) == reply.tool_calls[0].raw_arguments
    assert reply.tool_calls[0].arguments == arguments


def test_without_streaming_on_delta_gets_the_whole_text(scripted):
    model, _ = scripted(["all at once"], stream=False)
    deltas: list[str] = []
    model.query(USER, on_delta=deltas.append)
    assert deltas == ["all at once"]


@pytest.mark.parametrize("stream", [False, True])
def test_usage_and_unknown_cost(scripted, stream):
    model, _ = scripted(["a" * 80, "b" * 40], stream=stream)
    first = model.query(USER)
    second = model.query(USER)
    assert first.usage.completion_tokens == 20
    assert second.usage.completion_tokens == 10
    assert first.usage.prompt_tokens == second.usage.prompt_tokens > 0
    assert first.cost_usd is None  # scripted has no price
    totals = model.session.totals()
    assert totals.calls == 2
    assert totals.completion_tokens == 30
    assert totals.prompt_tokens == 2 * first.usage.prompt_tokens
    assert totals.cost_usd is None
    assert totals.cost_label == "unknown"


def test_session_total_is_unknown_but_keeps_the_known_part():
    session = SessionUsage()
    session.record(Usage(10, 5), 0.25)
    assert session.totals().cost_usd == 0.25
    session.record(Usage(10, 5), None)
    session.record(Usage(10, 5), 0.5)
    totals = session.totals()
    assert (totals.cost_usd, totals.known_cost_usd, totals.unknown_cost_calls) == (None, 0.75, 1)
    assert totals.cost_label == "unknown (at least $0.7500)"
    assert (totals.prompt_tokens, totals.completion_tokens, totals.calls) == (30, 15, 3)


@pytest.mark.parametrize("stream", [False, True])
def test_rate_limit_is_retried_with_backoff(scripted, stream):
    model, handle = scripted(
        [error("RateLimitError"), error("RateLimitError"), "finally"], stream=stream
    )
    reply = model.query(USER)
    assert reply.text == "finally"
    assert reply.attempts == 3
    assert handle.position == 3  # three calls reached the provider
    assert len(model.sleeps) == 2
    first, second = model.sleeps
    assert 0.5 <= first <= 1.0  # base 1s, jitter in [50%, 100%]
    assert 1.0 <= second <= 2.0  # doubled
    assert model.session.totals().calls == 1  # only the successful call is accounted


@pytest.mark.parametrize(
    "kind", ["Timeout", "APIConnectionError", "InternalServerError", "ServiceUnavailableError"]
)
@pytest.mark.parametrize("stream", [False, True])
def test_transient_errors_are_retried(scripted, kind, stream):
    model, _ = scripted([error(kind), "ok"], stream=stream)
    assert model.query(USER).attempts == 2
    assert len(model.sleeps) == 1


@pytest.mark.parametrize(("status", "retried"), [(503, True), (500, True), (422, False)])
def test_other_errors_are_retried_by_status(scripted, status, retried):
    model, handle = scripted([error("APIError", status_code=status), "ok"], stream=False)
    if retried:
        assert model.query(USER).attempts == 2
    else:
        with pytest.raises(ModelError, match="APIError"):
            model.query(USER)
        assert handle.position == 1


@pytest.mark.parametrize(
    "kind",
    ["AuthenticationError", "BadRequestError", "NotFoundError", "ContextWindowExceededError"],
)
def test_non_retryable_error_is_raised_at_once(scripted, kind):
    model, handle = scripted([error(kind), "never reached"])
    with pytest.raises(ModelError) as raised:
        model.query(USER)
    assert raised.value.kind == kind
    assert raised.value.attempts == 1
    assert raised.value.code == EXIT_MODEL
    assert isinstance(raised.value.__cause__, getattr(litellm_module(), kind))
    assert raised.value.message == f"model {model.name}: {kind}: simulated {kind}"
    assert model.sleeps == []
    assert handle.position == 1


def test_retries_give_up_after_the_configured_count(scripted):
    model, handle = scripted([error("RateLimitError")] * 3 + ["late"], retries=2)
    with pytest.raises(ModelError) as raised:
        model.query(USER)
    assert (raised.value.kind, raised.value.attempts, handle.position) == ("RateLimitError", 3, 3)
    assert len(model.sleeps) == 2


def test_backoff_is_capped(scripted):
    model, _ = scripted([error("RateLimitError")] * 4 + ["ok"], backoff_max=1.5)
    model.query(USER)
    assert max(model.sleeps) <= 1.5
    assert min(model.sleeps[2:]) >= 0.75


def test_running_past_the_script_is_a_clear_error_not_retried(scripted):
    model, _ = scripted(["only"])
    model.query(USER)
    with pytest.raises(ModelError, match="exhausted: all 1 steps used") as raised:
        model.query(USER)
    assert raised.value.attempts == 1
    assert model.sleeps == []


def test_prompt_dependent_script(scripted):
    def answer(messages, tools):
        return "tests" if "test" in messages[-1]["content"] else "code"

    model, _ = scripted([answer, answer])
    assert model.query([{"role": "user", "content": "run the tests"}]).text == "tests"
    assert model.query([{"role": "user", "content": "read it"}]).text == "code"


def test_cache_control_marks_system_and_last_user_for_claude():
    messages = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "tool", "tool_call_id": "c", "content": "out"},
    ]
    original = json.loads(json.dumps(messages))
    marked = with_cache_control(messages, "anthropic/claude-sonnet-4-6")
    ephemeral = {"type": "ephemeral"}
    assert marked[0]["content"] == [{"type": "text", "text": "sys", "cache_control": ephemeral}]
    assert marked[1] == messages[1]
    assert marked[3]["content"] == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b", "cache_control": ephemeral},
    ]
    assert marked[4] == messages[4]
    assert messages == original  # the caller's history is not mutated


@pytest.mark.parametrize("name", ["openai/gpt-5.4", "gemini/gemini-2.5-pro", "ollama_chat/qwen3"])
def test_cache_control_leaves_other_models_alone(name):
    assert with_cache_control(USER, name) is USER


def test_importing_model_modules_does_not_import_litellm():
    code = (
        "import sys, evoagent.agent.model, evoagent.agent.usage, evoagent.agent.model_select; "
        "print('litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_budget_steps():
    session = SessionUsage()
    budget = Budget(max_steps=2)
    budget.check(session)
    session.record(Usage(), None)
    budget.check(session)
    session.record(Usage(), None)
    with pytest.raises(BudgetExhausted, match="2 of 2 steps used") as raised:
        budget.check(session)
    assert (raised.value.reason, raised.value.code) == ("steps", EXIT_BUDGET)


def test_budget_cost_counts_known_cost_only():
    session = SessionUsage()
    budget = Budget(max_cost_usd=1.0)
    session.record(Usage(), None)
    session.record(Usage(), 0.6)
    budget.check(session)
    session.record(Usage(), 0.4)
    with pytest.raises(BudgetExhausted, match=r"\$1.0000 spent of \$1.0000") as raised:
        budget.check(session)
    assert raised.value.reason == "cost"


def test_budget_time():
    clock = FakeClock()
    session = SessionUsage(clock=clock)
    budget = Budget(max_seconds=60)
    clock.now += 59.5
    budget.check(session)
    clock.now += 1
    with pytest.raises(BudgetExhausted, match="60s elapsed of 60s") as raised:
        budget.check(session)
    assert raised.value.reason == "time"


def test_model_checks_its_budget_before_calling(scripted):
    model, handle = scripted(["one", "two", "three"])
    model.budget = Budget(max_steps=2)
    model.query(USER)
    model.query(USER)
    with pytest.raises(BudgetExhausted):
        model.query(USER)
    assert handle.position == 2


def test_no_limits_never_exhaust():
    clock = FakeClock()
    session = SessionUsage(clock=clock)
    for _ in range(1000):
        session.record(Usage(100, 100), 10.0)
    clock.now += 1e6
    Budget().check(session)
