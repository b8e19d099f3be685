"""A scripted litellm provider: `scripted/<name>` replays a script through the real
`litellm.completion` path. It drives tests and `evoagent demo`, never real work, and is never
picked automatically.

A script is a list of steps, consumed one per call. A step is
- a reply: `ScriptedReply`, a str (text only) or a dict
  `{"text": ..., "tool_calls": [{"name": ..., "arguments": {...} or "raw json", "id": ...}]}`;
- a callable `(messages, tools) -> reply`, for replies that depend on the prompt;
- an exception instance, raised by that call (e.g. litellm.RateLimitError to test retries).

`register_script(name, steps)` registers a script in-process; `scripted/<absolute path>.json`
(or .yaml/.yml) loads one from a file: a list of steps, or `{"steps": [...]}`. A
`scripted/<absolute path>.py` is a *policy*: a module whose `respond(messages, tools)` answers
every call from the conversation so far. It holds no position, so one policy serves any
number of runs at once, in worker processes and on Ray workers alike (the benchmark's case). Usage is
deterministic: len(text) // 4 tokens. Running past the end raises `ScriptExhausted`.

A script may declare a small context window, so compaction can be seen without a real model:
`{"context_limit": 3000, "steps": [...]}` in a file, `register_script(..., context_limit=)`,
or `CONTEXT_LIMIT = 3000` in a policy. The agent sizes its requests to it
(agent/context_window.py), and a request longer than that, counted as usage is, is refused
with litellm's ContextWindowExceededError without using a step, as a provider would.

A script file is named by an absolute path only: a relative one would resolve against the
directory evoagent runs in, usually a repository, and import whatever file it put there. The
model name itself is a person-only setting (agent/config.py), never the repository's.

litellm's CustomLLM path keeps tool calls: a non-streaming call returns a full
`litellm.ModelResponse` whose `choices[0].message.tool_calls` litellm hands back untouched;
a streaming call yields GenericStreamingChunk dicts whose `tool_use` field litellm's stream
wrapper turns into `delta.tool_calls` fragments.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import litellm_module

PROVIDER = "scripted"
FRAGMENT = 8
"""Characters per streamed text or argument fragment."""


@dataclass
class ScriptedToolCall:
    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    """A dict is JSON-encoded; a str is sent as is (so a script can send malformed JSON)."""
    id: str | None = None

    @property
    def raw_arguments(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


@dataclass
class ScriptedReply:
    text: str = ""
    tool_calls: list[ScriptedToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    """None means "tool_calls" when there are tool calls, else "stop"."""


Step = ScriptedReply | str | dict | BaseException | Callable[[list[dict], list[dict] | None], Any]


class ScriptError(Exception):
    """A script file or step that cannot be used."""


class Script:
    """A registered script: its steps, how far it got, and the requests it received."""

    def __init__(self, name: str, steps: list[Step], context_limit: int | None = None):
        self.name = name
        self.steps = list(steps)
        self.position = 0
        self.context_limit = context_limit
        """Prompt tokens this model accepts (None: no limit); may be changed between calls."""
        self.refused = 0
        """Requests refused as longer than `context_limit`."""
        self.requests: list[tuple[list[dict], list[dict] | None]] = []
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        return len(self.steps) - self.position

    def check_size(self, messages: list[dict], tools: list[dict] | None) -> None:
        """Refuse a prompt longer than the declared context, as a provider does."""
        if self.context_limit is None:
            return
        tokens = _tokens(_prompt_text(messages, tools))
        if tokens > self.context_limit:
            with self._lock:
                self.refused += 1
            raise _error(
                "ContextWindowExceededError",
                f"prompt is too long: {tokens} tokens > {self.context_limit} maximum",
            )

    def next_reply(self, messages: list[dict], tools: list[dict] | None) -> ScriptedReply:
        with self._lock:
            if self.position >= len(self.steps):
                raise _exhausted(self.name, len(self.steps))
            step = self.steps[self.position]
            self.position += 1
            self.requests.append((messages, tools))
        return self._play(step, messages, tools)

    def _play(self, step: Step, messages: list[dict], tools: list[dict] | None) -> ScriptedReply:
        if isinstance(step, BaseException):
            raise step
        if callable(step) and not isinstance(step, ScriptedReply):
            try:
                step = step(messages, tools)
            except Exception as exc:
                if isinstance(exc, tuple(litellm_module().LITELLM_EXCEPTION_TYPES)):
                    raise  # a scripted provider error, e.g. a rate limit
                # A bug in the script: report it, do not let litellm turn it into a
                # (retried) connection error.
                raise ScriptError(
                    f"step {self.position} of script {self.name!r} raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        return coerce_reply(step)


class PolicyScript(Script):
    """A script that never runs out: every call is answered by `respond(messages, tools)`."""

    def __init__(self, name: str, respond: Callable[[list[dict], list[dict] | None], Any],
                 context_limit: int | None = None):
        super().__init__(name, [], context_limit)
        self.respond = respond

    @property
    def remaining(self) -> int:
        return 1

    def next_reply(self, messages: list[dict], tools: list[dict] | None) -> ScriptedReply:
        with self._lock:
            self.position += 1
            self.requests.append((messages, tools))
        return self._play(self.respond, messages, tools)


def load_policy(path: Path) -> tuple[Callable[[list[dict], list[dict] | None], Any], int | None]:
    """The policy's `respond` and its declared `CONTEXT_LIMIT` (None when it has none)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"evoagent_policy_{abs(hash(path))}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ScriptError(f"cannot read policy {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ScriptError(f"policy {path} failed to load: {type(exc).__name__}: {exc}") from exc
    respond = getattr(module, "respond", None)
    if not callable(respond):
        raise ScriptError(f"policy {path} has no respond(messages, tools) function")
    return respond, _context_limit(getattr(module, "CONTEXT_LIMIT", None), path)


def _context_limit(value: Any, source: Path | str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ScriptError(f"{source}: context_limit must be a positive integer, got {value!r}")
    return value


_scripts: dict[str, Script] = {}
_registry_lock = threading.Lock()


def register_script(name: str, steps: list[Step], context_limit: int | None = None) -> Script:
    """Register (or replace) the script behind model `scripted/<name>`; `context_limit`
    declares a context window (prompt tokens) the model enforces."""
    script = Script(name, steps, _context_limit(context_limit, name))
    with _registry_lock:
        _scripts[name] = script
    return script


def unregister_script(name: str) -> None:
    with _registry_lock:
        _scripts.pop(name, None)


STEP_FILE_SUFFIXES = (".json", ".yaml", ".yml")
POLICY_SUFFIX = ".py"


def script_file(name: str) -> Path | None:
    """The file behind script `name`, or None when the name is not a file's (a script
    registered in-process). Raises ScriptError for a relative path."""
    if not name.endswith((*STEP_FILE_SUFFIXES, POLICY_SUFFIX)):
        return None
    path = Path(name)
    if not path.is_absolute():
        raise ScriptError(
            f"scripted model {name!r}: a script file needs an absolute path (a relative one "
            "would load a file from the repository evoagent runs in)"
        )
    return path


def check_name(name: str) -> None:
    """Raise ScriptError unless `name` is registered or an absolute script file path."""
    with _registry_lock:
        if name in _scripts:
            return
    script_file(name)


def get_script(name: str) -> Script:
    """The registered script `name`, loading it from a file the first time if it is a path."""
    with _registry_lock:
        script = _scripts.get(name)
        path = script_file(name) if script is None else None
        if path is not None and name.endswith(STEP_FILE_SUFFIXES):
            steps, limit = load_script_file(path)
            script = _scripts[name] = Script(name, steps, limit)
        elif path is not None:
            script = _scripts[name] = PolicyScript(name, *load_policy(path))
    if script is None:
        known = ", ".join(sorted(_scripts)) or "none"
        raise _error("NotFoundError", f"no script named {name!r} (registered: {known})")
    return script


def declared_context_limit(name: str) -> int | None:
    """The context window script `name` declares (None: none, or no such script yet)."""
    try:
        return get_script(name).context_limit
    except Exception:  # unknown or broken: the call itself will say so
        return None


def load_steps(path: Path) -> list[Step]:
    return load_script_file(path)[0]


def load_script_file(path: Path) -> tuple[list[Step], int | None]:
    """A script file's steps and its declared `context_limit`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ScriptError(f"cannot read script {path}: {exc.strerror}") from exc
    import yaml

    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first_line = (str(exc).splitlines() or [""])[0]
        raise ScriptError(f"script {path} is not valid: {first_line}") from exc
    limit = None
    if isinstance(data, dict):
        limit = _context_limit(data.get("context_limit"), path)
        data = data.get("steps")
    if not isinstance(data, list):
        raise ScriptError(f"script {path}: expected a list of steps or {{'steps': [...]}}")
    return [coerce_reply(step) for step in data], limit


def coerce_reply(step: Any) -> ScriptedReply:
    if isinstance(step, ScriptedReply):
        return step
    if isinstance(step, str):
        return ScriptedReply(text=step)
    if isinstance(step, dict):
        calls = []
        for call in step.get("tool_calls") or []:
            if isinstance(call, ScriptedToolCall):
                calls.append(call)
            elif isinstance(call, dict) and "name" in call:
                calls.append(
                    ScriptedToolCall(call["name"], call.get("arguments", {}), call.get("id"))
                )
            else:
                raise ScriptError(f"tool call needs a name: {call!r}")
        return ScriptedReply(step.get("text") or "", calls, step.get("finish_reason"))
    raise ScriptError(f"a script step must be a reply, str, dict or callable, got {step!r}")


def _tokens(text: str) -> int:
    return len(text) // 4


def _prompt_text(messages: list[dict], tools: list[dict] | None) -> str:
    parts = [json.dumps(m.get("content"), sort_keys=True) for m in messages]
    return "".join(parts) + (json.dumps(tools, sort_keys=True) if tools else "")


def _reply_text(reply: ScriptedReply) -> str:
    return reply.text + "".join(c.name + c.raw_arguments for c in reply.tool_calls)


def _usage(messages, tools, reply: ScriptedReply) -> dict[str, int]:
    prompt, completion = _tokens(_prompt_text(messages, tools)), _tokens(_reply_text(reply))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _finish_reason(reply: ScriptedReply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _call_ids(reply: ScriptedReply, messages: list) -> list[str]:
    """Ids from the conversation's turn, not a process-wide counter: the same conversation
    gets the same ids in any process (benchmark runs are compared across executors)."""
    turn = 1 + sum(1 for m in messages if _role(m) == "assistant")
    return [c.id or f"call_scripted_{turn}_{i}" for i, c in enumerate(reply.tool_calls, 1)]


def _role(message: Any) -> str:
    return message.get("role", "") if isinstance(message, dict) else getattr(message, "role", "")


def _exhausted(name: str, steps: int) -> Exception:
    return _error(
        "BadRequestError", f"script {name!r} is exhausted: all {steps} steps used, no reply left"
    )


def _error(kind: str, message: str) -> Exception:
    # A litellm exception passes through litellm's error mapping unchanged (anything else
    # would become a retryable APIConnectionError); these two are not retried.
    litellm = litellm_module()
    return getattr(litellm, kind)(message=message, model=PROVIDER, llm_provider=PROVIDER)


def _reply_for(model: str, messages: list, optional_params: dict) -> ScriptedReply:
    tools = optional_params.get("tools")
    try:
        script = get_script(model)
        script.check_size(messages, tools)
        return script.next_reply(messages, tools)
    except ScriptError as exc:
        raise _error("BadRequestError", str(exc)) from exc


def build_response(model: str, reply: ScriptedReply, messages: list, tools) -> Any:
    """A fully formed litellm ModelResponse for one reply."""
    litellm = litellm_module()
    from litellm.types.utils import ChatCompletionMessageToolCall, Choices, Function, Message

    tool_calls = [
        ChatCompletionMessageToolCall(
            id=call_id, type="function", function=Function(name=c.name, arguments=c.raw_arguments)
        )
        for c, call_id in zip(reply.tool_calls, _call_ids(reply, messages), strict=True)
    ]
    message = Message(role="assistant", content=reply.text or None, tool_calls=tool_calls or None)
    return litellm.ModelResponse(
        model=f"{PROVIDER}/{model}",
        choices=[Choices(index=0, message=message, finish_reason=_finish_reason(reply))],
        usage=litellm.Usage(**_usage(messages, tools, reply)),
    )


def stream_chunks(reply: ScriptedReply, messages: list, tools) -> Iterator[dict]:
    """GenericStreamingChunk dicts: text in fragments, then each tool call's id and name
    with its first argument fragment, then the rest of its arguments, then usage."""

    def chunk(text: str = "", tool_use: dict | None = None, done: bool = False) -> dict:
        return {
            "text": text,
            "tool_use": tool_use,
            "is_finished": done,
            "finish_reason": _finish_reason(reply) if done else "",
            "usage": _usage(messages, tools, reply) if done else None,
            "index": 0,
        }

    for start in range(0, len(reply.text), FRAGMENT):
        yield chunk(reply.text[start : start + FRAGMENT])
    for index, (call, call_id) in enumerate(zip(reply.tool_calls, _call_ids(reply, messages), strict=True)):
        raw = call.raw_arguments
        pieces = [raw[s : s + FRAGMENT] for s in range(0, len(raw), FRAGMENT)] or [""]
        for n, piece in enumerate(pieces):
            function = {"name": call.name if n == 0 else None, "arguments": piece}
            tool_use = {"id": call_id if n == 0 else None, "type": "function", "index": index}
            yield chunk(tool_use={**tool_use, "function": function})
    yield chunk(done=True)


def _handler_class() -> type:
    litellm = litellm_module()

    class ScriptedLLM(litellm.CustomLLM):
        def completion(self, model, messages, *args, optional_params=None, **kwargs):
            params = optional_params or {}
            reply = _reply_for(model, messages, params)
            return build_response(model, reply, messages, params.get("tools"))

        def streaming(self, model, messages, *args, optional_params=None, **kwargs):
            params = optional_params or {}
            reply = _reply_for(model, messages, params)
            yield from stream_chunks(reply, messages, params.get("tools"))

        async def acompletion(self, *args, **kwargs):
            return self.completion(*args, **kwargs)

        async def astreaming(self, *args, **kwargs):
            for item in self.streaming(*args, **kwargs):
                yield item

    return ScriptedLLM


_installed = threading.Lock()


def install() -> None:
    """Register the `scripted` provider with litellm (idempotent)."""
    litellm = litellm_module()
    with _installed:
        if any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
            return
        entry = {"provider": PROVIDER, "custom_handler": _handler_class()()}
        litellm.custom_provider_map = [*litellm.custom_provider_map, entry]
