"""The scripted provider through the real litellm.completion path (no network, no keys)."""

from __future__ import annotations

import asyncio
import itertools
import json

import pytest
from evoagent.agent.model import litellm_module
from evoagent.agent.scripted_provider import (
    ScriptedReply,
    ScriptedToolCall,
    install,
    register_script,
    unregister_script,
)

_names = itertools.count()
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }
]
USER = [{"role": "user", "content": "please read a.py"}]


@pytest.fixture
def script():
    """Register a uniquely named script; yields (model name, Script); unregisters after."""
    install()
    registered = []

    def make(steps):
        name = f"t{next(_names)}"
        registered.append(name)
        return f"scripted/{name}", register_script(name, steps)

    yield make
    for name in registered:
        unregister_script(name)


def completion(**kwargs):
    return litellm_module().completion(**kwargs)


def test_tool_calls_pass_through_litellm_in_openai_format(script):
    model, _ = script(
        [ScriptedReply("Reading.", [ScriptedToolCall("read", {"path": "a.py"}, id="call_7")])]
    )
    response = completion(model=model, messages=USER, tools=TOOLS)
    message = response.choices[0].message
    assert message.content == "Reading."
    assert response.choices[0].finish_reason == "tool_calls"
    [call] = message.tool_calls
    assert (call.id, call.type, call.function.name) == ("call_7", "function", "read")
    assert json.loads(call.function.arguments) == {"path": "a.py"}
    assert response.model_dump()["choices"][0]["message"]["tool_calls"][0]["function"] == {
        "name": "read",
        "arguments": '{"path": "a.py"}',
    }


def test_streamed_tool_call_arrives_in_fragments_and_assembles(script):
    arguments = {"path": "src/some/long/module_name.py", "start": 10}
    model, _ = script(
        [{"text": "Let me look.", "tool_calls": [{"name": "read", "arguments": arguments}]}]
    )
    chunks = list(completion(model=model, messages=USER, tools=TOOLS, stream=True))
    fragments = [
        call.function.arguments
        for chunk in chunks
        if chunk.choices
        for call in chunk.choices[0].delta.tool_calls or []
    ]
    assert len(fragments) > 2
    assert json.loads("".join(fragments)) == arguments
    built = litellm_module().stream_chunk_builder(chunks, messages=USER)
    assert built.choices[0].message.content == "Let me look."
    assert built.choices[0].message.tool_calls[0].function.name == "read"
    assert json.loads(built.choices[0].message.tool_calls[0].function.arguments) == arguments


def test_usage_is_deterministic_from_text_length(script):
    model, _ = script(["x" * 40, "x" * 40])
    first = completion(model=model, messages=USER)
    second = completion(model=model, messages=USER)
    assert first.usage.completion_tokens == 10
    assert first.usage.prompt_tokens == len(json.dumps(USER[0]["content"])) // 4
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (
        second.usage.prompt_tokens,
        second.usage.completion_tokens,
    )


def test_callable_step_sees_messages_and_tools(script):
    def echo(messages, tools):
        return f"{messages[-1]['content']} / tools: {[t['function']['name'] for t in tools]}"

    model, handle = script([echo])
    response = completion(model=model, messages=USER, tools=TOOLS)
    assert response.choices[0].message.content == "please read a.py / tools: ['read']"
    assert handle.requests == [(USER, TOOLS)]


def test_past_the_end_is_a_clear_error(script):
    litellm = litellm_module()
    model, handle = script(["only one"])
    completion(model=model, messages=USER)
    with pytest.raises(litellm.BadRequestError, match="exhausted: all 1 steps used"):
        completion(model=model, messages=USER)
    assert handle.remaining == 0


def test_unknown_script_names_the_registered_ones(script):
    litellm = litellm_module()
    known, _ = script(["hi"])
    with pytest.raises(litellm.NotFoundError, match=f"no script named 'nope'.*{known[9:]}"):
        completion(model="scripted/nope", messages=USER)


@pytest.mark.parametrize("suffix", ["json", "yaml"])
def test_script_loaded_from_a_file_path(tmp_path, suffix):
    install()
    steps = [
        {"text": "hello"},
        {"tool_calls": [{"name": "read", "arguments": {"path": "b.py"}}]},
    ]
    path = tmp_path / f"demo.{suffix}"
    if suffix == "json":
        path.write_text(json.dumps({"steps": steps}))
    else:
        path.write_text(
            "- text: hello\n- tool_calls:\n  - name: read\n    arguments: {path: b.py}\n"
        )
    model = f"scripted/{path}"
    try:
        assert completion(model=model, messages=USER).choices[0].message.content == "hello"
        call = completion(model=model, messages=USER).choices[0].message.tool_calls[0]
        assert json.loads(call.function.arguments) == {"path": "b.py"}
    finally:
        unregister_script(str(path))


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("bad.json", "{not json", "bad.json is not valid"),
        ("bad.yaml", "- text: [unclosed", "bad.yaml is not valid"),
        ("odd.json", '{"turns": []}', "expected a list of steps"),
        ("noname.json", '[{"tool_calls": [{"arguments": {}}]}]', "tool call needs a name"),
    ],
)
def test_bad_script_file_is_a_clear_non_retryable_error(tmp_path, name, content, error):
    install()
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(litellm_module().BadRequestError, match=error):
        completion(model=f"scripted/{path}", messages=USER)


def test_buggy_callable_step_is_reported_not_disguised(script):
    def buggy(messages, tools):
        return messages[5]

    model, _ = script([buggy])
    with pytest.raises(litellm_module().BadRequestError, match="step 1 of script .* IndexError"):
        completion(model=model, messages=USER)


def test_callable_step_may_raise_a_provider_error(script):
    litellm = litellm_module()

    def limited(messages, tools):
        raise litellm.RateLimitError(message="slow down", llm_provider="scripted", model="m")

    model, _ = script([limited])
    with pytest.raises(litellm.RateLimitError, match="slow down"):
        completion(model=model, messages=USER)


def test_async_completion(script):
    model, _ = script(["async hello"])
    response = asyncio.run(litellm_module().acompletion(model=model, messages=USER))
    assert response.choices[0].message.content == "async hello"
