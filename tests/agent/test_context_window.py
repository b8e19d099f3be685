"""Context limits: `fit` and `compact` on real conversation shapes (pairs stay valid, the
limit holds, the first request and the latest turns survive), the limits a model has, and a
scripted model with a small declared context compacting a real `fix` run that still ends."""

from __future__ import annotations

import copy
import json
import random

import pytest
import test_fix_e2e
from evoagent.agent.context_window import (
    CUT_MARK,
    DEFAULT_LIMIT,
    DROPPED_HEADER,
    HARD_TRIM_TO,
    SUMMARY_HEADER,
    ContextWindow,
    compact,
    compact_prompt,
    estimate_tokens,
    fit,
    input_limit,
    refusal_ratio,
)
from evoagent.agent.events import ContextCompacted
from evoagent.agent.fix import FixOptions, run_fix
from evoagent.agent.model import Model, ModelError
from evoagent.agent.repo_context import RepoContext
from evoagent.agent.scripted_provider import (
    declared_context_limit,
    get_script,
    register_script,
    unregister_script,
)
from fake_providers import _openai_problem
from small_context import BIG_MODULE, READ_BIG, small_context_model
from test_fix_e2e import BUGGY, CALC, ISSUE

project = test_fix_e2e.project
FIXED = "    if value > high:\n        return high\n"
SYSTEM = {"role": "system", "content": "You are a coding agent. " * 20}
REQUEST = {"role": "user", "content": "clamp() returns the lower bound above the upper bound"}


def turn(n: int, result: str, calls: int = 1, text: str = "") -> list[dict]:
    """One assistant turn with `calls` tool calls and their results."""
    ids = [f"call_{n}_{i}" for i in range(calls)]
    assistant = {"role": "assistant", "content": text or None, "tool_calls": [
        {"id": i, "type": "function",
         "function": {"name": "read", "arguments": json.dumps({"path": f"f{n}.py"})}}
        for i in ids]}
    return [assistant, *({"role": "tool", "tool_call_id": i, "content": result} for i in ids)]


def conversation(turns: int, result: str, text: str = "") -> list[dict]:
    messages = [copy.deepcopy(SYSTEM), copy.deepcopy(REQUEST)]
    for n in range(turns):
        messages += turn(n, f"{n}:" + result, text=text and f"{n}:{text}")
    return messages


def assert_valid(messages: list[dict]) -> None:
    """Valid for both APIs: every tool result answers a call of the assistant message just
    before it, every call is answered, and the system prompt and request lead."""
    assert _openai_problem({"messages": messages}) == ""
    assert messages[:2] == [SYSTEM, REQUEST]


def summary_of(seen: list[str]):
    def summarize(transcript: str) -> str:
        seen.append(transcript)
        return "The agent read files; nothing is fixed yet."

    return summarize


# -- fit ----------------------------------------------------------------------------------


def test_a_conversation_within_the_limit_is_left_alone():
    messages = conversation(5, "x = 1\n" * 20)
    before = copy.deepcopy(messages)
    assert fit(messages, 10_000) == []
    assert messages == before


def test_old_tool_results_are_trimmed_first_keeping_head_tail_and_saying_how_much():
    result = "".join(f"line {i}\n" for i in range(400))  # ~3,500 characters each
    messages = conversation(20, result)
    latest = copy.deepcopy(messages[-8:])
    seen: list[str] = []
    limit = int(estimate_tokens(messages) * 0.9)

    events = fit(messages, limit, summarize=summary_of(seen))

    assert [e.how for e in events] == ["trimmed"]
    assert events[0].tokens_before > 0.85 * limit >= 0.6 * limit >= events[0].tokens_after
    assert estimate_tokens(messages) == events[0].tokens_after
    assert seen == []  # no summary was needed
    assert_valid(messages)
    trimmed = messages[3]["content"]
    cut = len("0:" + result) - len(trimmed.split("\n[...")[0]) - len(trimmed.split("...]\n")[1])
    assert CUT_MARK.format(n=cut) in trimmed
    assert trimmed.startswith("0:line 0\nline 1\n") and trimmed.endswith("line 399\n")
    assert messages[-8:] == latest  # the latest turns are untouched


def test_older_turns_are_summarized_when_trimming_is_not_enough():
    # Long assistant reasoning, short results: trimming results cannot get it under.
    messages = conversation(20, "ok", text="thinking about the clamp bug " * 40)
    latest = copy.deepcopy(messages[-8:])
    seen: list[str] = []
    limit = int(estimate_tokens(messages) * 0.8)

    events = fit(messages, limit, summarize=summary_of(seen))

    assert [e.how for e in events] == ["summarized"]
    [event] = events
    assert event.messages_dropped == 40 - 8 and event.limit == limit
    assert estimate_tokens(messages) == event.tokens_after <= 0.6 * limit
    assert_valid(messages)
    assert messages[2] == {"role": "user", "content":
                           f"{SUMMARY_HEADER}\nThe agent read files; nothing is fixed yet."}
    assert messages[3:] == latest
    [transcript] = seen
    assert "[assistant] 0:thinking about the clamp bug" in transcript
    assert '[assistant calls read] {"path": "f0.py"}' in transcript
    assert transcript.endswith("[tool result] 15:ok")  # turns 16-19 stay as they are
    assert "characters cut to fit the context window" in transcript  # bounded: about 2 x limit
    assert len(transcript) < 2 * limit + 200


def test_summaries_replace_each_other_instead_of_piling_up():
    messages = conversation(20, "ok", text="reasoning " * 150)
    limit = int(estimate_tokens(messages) * 0.8)
    seen: list[str] = []
    fit(messages, limit, summarize=summary_of(seen))
    for n in range(20, 40):
        messages += turn(n, "ok", text="reasoning " * 150)
    fit(messages, limit, summarize=summary_of(seen))
    assert len(seen) == 2 and SUMMARY_HEADER in seen[1]  # the old summary was summarized
    assert sum(str(m.get("content")).startswith(SUMMARY_HEADER) for m in messages) == 1
    assert_valid(messages)


def test_without_a_summary_older_turns_are_dropped_with_a_note_saying_so():
    def failing(transcript: str) -> str:
        raise ModelError("m", RuntimeError("provider down\nsecond line"), 1)

    messages = conversation(20, "ok", text="reasoning " * 150)
    [event] = fit(messages, int(estimate_tokens(messages) * 0.8), summarize=failing)
    assert event.how == "dropped" and event.messages_dropped == 32
    note = messages[2]["content"]
    assert note.startswith(DROPPED_HEADER)
    assert "32 earlier messages were removed (the summary failed: model m: RuntimeError: " \
           "provider down second line)" in note
    assert_valid(messages)


@pytest.mark.parametrize("seed", range(60))
def test_fit_keeps_every_call_with_its_results_and_stays_under_the_limit(seed):
    rng = random.Random(seed)
    messages = [copy.deepcopy(SYSTEM), copy.deepcopy(REQUEST)]
    for n in range(rng.randint(3, 60)):
        if rng.random() < 0.2:
            messages.append({"role": "user", "content": "Use a tool to continue. " * rng.randint(1, 30)})
        messages += turn(n, "out\n" * rng.randint(0, 600), calls=rng.randint(1, 3),
                         text="why " * rng.randint(0, 200))
    limit = rng.randint(estimate_tokens(messages[:2]) * 3, max(estimate_tokens(messages), 4_000))
    first_calls = [c["id"] for m in messages[2:] for c in m.get("tool_calls") or []]

    events = fit(messages, limit, summarize=lambda t: "summary " * rng.randint(1, 50))

    assert_valid(messages)
    if events and estimate_tokens(messages) > limit:
        # Only what is never removed is left: the head, the summary, the latest turn, its
        # results trimmed as far as they go.
        assert messages[2]["content"].startswith(SUMMARY_HEADER)
        assert messages[3]["role"] == "assistant"
        assert all(m["role"] == "tool" and len(m["content"]) < HARD_TRIM_TO + 60 for m in messages[4:])
    ids = [c["id"] for m in messages[2:] for c in m.get("tool_calls") or []]
    assert ids == first_calls[len(first_calls) - len(ids):]  # only the oldest calls went


def test_compact_by_hand_summarizes_all_but_the_latest_turns():
    messages = conversation(6, "x = 1\n" * 10)
    seen: list[str] = []
    event = compact(messages, summary_of(seen))
    assert isinstance(event, ContextCompacted)
    assert (event.how, event.messages_dropped) == ("manual", 4)
    assert event.tokens_after < event.tokens_before
    assert_valid(messages)
    assert len(messages) == 2 + 1 + 8
    assert compact(messages, summary_of(seen)) is None  # nothing more to summarize
    assert compact([SYSTEM, REQUEST], summary_of(seen)) is None


def test_compact_by_hand_through_the_model_asks_it_for_the_summary(script):
    name = script(["Read f0 to f1; nothing found."])
    events: list = []
    model = Model(name=name, on_event=events.append)
    messages = conversation(6, "x = 1\n" * 10)

    event = model.compact(messages)

    assert [type(e).__name__ for e in events] == ["Phase", "ContextCompacted"]
    assert events[-1] is event and event.how == "manual"
    assert messages[2]["content"] == f"{SUMMARY_HEADER}\nRead f0 to f1; nothing found."
    [(sent, _)] = get_script(name.removeprefix("scripted/")).requests
    assert "<transcript>\n[assistant calls read]" in sent[0]["content"]


def test_the_summary_prompt_is_the_genomes_or_the_kernels(tmp_path):
    from evoagent.agent.genome import Genome, init_genome

    init_genome(tmp_path / "agent")
    genome = Genome.load(tmp_path / "agent")
    assert genome.has_prompt("compact")
    assert "<transcript>\n[user] hello\n</transcript>" in compact_prompt(genome, "[user] hello")
    (tmp_path / "agent" / "prompts" / "compact.j2").unlink()
    kernel = compact_prompt(Genome.load(tmp_path / "agent"), "[user] hello")
    assert kernel == compact_prompt(None, "[user] hello")
    assert "<transcript>\n[user] hello\n</transcript>" in kernel


@pytest.mark.parametrize(("role", "main", "used"), [
    ("", "anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
    ("anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5"),
    # Another provider would see the conversation: the person did not choose it.
    ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
    # A script file is Python imported into evoagent: never from the genome.
    ("scripted//tmp/policy.py", "anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"),
    ("scripted//tmp/policy.py", "scripted/test-main", "scripted/test-main"),
])
def test_the_genomes_summarize_model_is_used_only_on_the_persons_provider(tmp_path, role, main,
                                                                          used):
    from evoagent.agent.context_window import summarize_model
    from evoagent.agent.genome import Genome, init_genome

    init_genome(tmp_path / "agent")
    toml = tmp_path / "agent" / "agent.toml"
    toml.write_text(toml.read_text().replace('summarize = ""', f'summarize = "{role}"'))
    assert summarize_model(Genome.load(tmp_path / "agent"), main) == used


# -- limits ---------------------------------------------------------------------------------


def test_the_input_limit_comes_from_the_person_then_litellm_then_a_guess():
    assert input_limit("openai/gpt-4o-mini", 9_000) == 9_000
    assert input_limit("openai/gpt-4o-mini") == 128_000
    assert input_limit("anthropic/claude-sonnet-4-5") == 200_000
    assert input_limit("openai/a-model-nobody-knows") == DEFAULT_LIMIT
    assert input_limit("ollama_chat/a-local-model") == 8_192  # Ollama truncates silently


@pytest.mark.parametrize(("error", "ratio"), [
    ("prompt is too long: 208310 tokens > 200000 maximum", 200_000 / 208_310),
    ("This model's maximum context length is 8192 tokens. However, your messages resulted "
     "in 10,000 tokens. Please reduce the length of the messages.", 0.8192),
    ("This model's maximum context length is 8192 tokens. However, you requested 16384 tokens "
     "(12000 in the messages, 4384 in the completion).", 0.5),
    ("context length exceeded", None),
])
def test_a_refusal_says_how_much_too_long_the_request_was(error, ratio):
    assert refusal_ratio(error) == ratio


def test_a_refusal_lowers_the_limit_and_compacts_hard():
    window = ContextWindow("openai/gpt-4o-mini", 50_000, summarize=lambda t: "summary")
    messages = conversation(30, "out\n" * 500)
    assert window.fit(messages, None) == []  # fits what we believe
    events = window.refused(messages, None, "maximum context length is 8000 tokens. However, "
                                            "your messages resulted in 16000 tokens.")
    assert events and window.limit < 8_000
    assert estimate_tokens(messages) <= 0.5 * window.limit
    assert_valid(messages)


# -- the scripted provider's declared context -------------------------------------------------


def test_a_script_declares_its_context_in_code_or_in_its_file(tmp_path):
    register_script("small-context", ["hi"], context_limit=3_000)
    try:
        assert declared_context_limit("small-context") == 3_000
    finally:
        unregister_script("small-context")
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"context_limit": 2_000, "steps": ["hi"]}))
    assert declared_context_limit(str(path)) == 2_000
    assert input_limit(f"scripted/{path}") == 2_000
    assert declared_context_limit("never-registered") is None


def test_a_scripted_model_refuses_a_long_prompt_and_the_model_compacts_and_asks_again(script):
    name = script(["Read f0 to f25, nothing found.", "done"])
    handle = get_script(name.removeprefix("scripted/"))
    messages = conversation(30, "out\n" * 300)
    # The model believes the default window; the script's is a quarter of the request, as
    # a server started with a smaller window than its model's would refuse.
    handle.context_limit = estimate_tokens(messages) // 4
    events: list = []
    model = Model(name=name, on_event=events.append, sleep=lambda s: None,
                  context_limit=DEFAULT_LIMIT)  # what the person told us: too much

    reply = model.query(messages)

    assert reply.text == "done" and handle.refused == 1
    assert [(type(e).__name__, e.how if isinstance(e, ContextCompacted) else e.name)
            for e in events] == [
        ("ContextCompacted", "trimmed"), ("Phase", "compacting"),
        ("ContextCompacted", "summarized")]
    assert_valid(messages)
    (summary_request, _), (sent, _) = handle.requests
    assert "<transcript>" in summary_request[0]["content"]
    assert [m.get("content") for m in sent] == [m.get("content") for m in messages]
    assert messages[2]["content"].endswith("Read f0 to f25, nothing found.")


# -- a whole run with a small context -------------------------------------------------------


def test_a_scripted_model_with_a_small_context_compacts_and_the_run_still_ends(project, script):
    """A model whose window holds the system prompt, the request and the tools plus about
    three reads: the agent reads a module five times, old reads are trimmed and then
    summarized on the way, no request goes past the window, and the fix lands."""
    project.commit("Add a big module", BIG_MODULE)
    summaries: list[str] = []
    name, handle = small_context_model(
        script, [READ_BIG] * 5 + [test_fix_e2e.edit(BUGGY, FIXED), test_fix_e2e.finish("high")],
        "The agent read big.py several times; clamp() is in calc.py.", summaries)

    outcome = run_fix(RepoContext.open(project.path), FixOptions(ISSUE, name))

    assert outcome.status == "fixed", outcome.report
    assert (project.path / "calc.py").read_text() == CALC  # proposed, not applied
    assert handle.refused == 0  # compaction kept every request inside the window
    assert summaries
    sent = [messages for messages, _ in handle.requests
            if "<transcript>" not in str(messages[-1].get("content"))]
    assert len(sent) == 7
    cut = CUT_MARK.split("{")[0]
    assert any(cut in str(m.get("content")) for messages in sent for m in messages)
    assert any(str(m.get("content")).startswith(SUMMARY_HEADER) for m in sent[-1])
    for messages in sent:
        assert _openai_problem({"messages": messages}) == ""
        assert messages[:2] == sent[0][:2]  # the system prompt and the request, always
    trajectory = [json.loads(line) for line in
                  (outcome.run_dir / "trajectory.jsonl").read_text().splitlines()]
    compacted = [e["how"] for e in trajectory if e["type"] == "context_compacted"]
    assert "trimmed" in compacted and compacted.count("summarized") == len(summaries)
    assert any(e["type"] == "phase" and e["name"] == "compacting" for e in trajectory)
