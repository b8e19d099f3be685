"""Loopback model providers for wire tests: small HTTP servers on 127.0.0.1 that speak the
OpenAI chat-completions and the Anthropic messages APIs closely enough for litellm's real
clients (streaming as server-sent events, or whole replies).

A server answers each request with its next step:
- `Reply(text, calls)`: a reply, streamed when the request asks for it, its tool-call
  arguments split across chunks; `cut_after=N` closes the connection after N events of a
  streamed reply (a dropped stream);
- `Failure(status, kind, retry_after)`: the provider's own error body for `kind`
  ("rate_limit", "server", "overloaded", "context_length") with a `retry-after` header;
- a callable `(body) -> Reply | Failure`, for answers that depend on the request.

Like the real APIs, a server refuses with a 400 a request whose tool results do not answer
the tool calls before them (OpenAI and Anthropic both do), and, given `max_prompt_tokens`, a
longer request with its context-length error (without using a step). Its token count is the
characters of every text in the messages, system prompt and tools / 4; replies report it as
their prompt tokens unless the step says otherwise. Every request
is recorded (`requests`), refused or not. Running out of steps is a 400 naming the server, so
a test that asks more than it scripted fails clearly instead of hanging or retrying.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FRAGMENT = 7
"""Characters per streamed text or argument fragment (odd, so JSON is split mid-token)."""


@dataclass
class Reply:
    text: str = ""
    calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    """(tool name, arguments): a dict is sent as JSON, a str as it is."""
    cut_after: int | None = None
    """Streamed only: close the connection after this many events."""
    serial: int = 0
    """Set by the server: which reply this is, so tool-call ids are unique in a conversation."""
    prompt_tokens: int | None = None
    """None: the request's own count (see the module docstring)."""
    completion_tokens: int = 20


@dataclass
class Failure:
    status: int
    kind: str
    """"rate_limit", "server", "overloaded", "context_length" or "invalid"."""
    retry_after: float | None = None
    message: str = ""
    """Overrides the provider's usual message (the "invalid" kind needs one)."""


Step = Reply | Failure | Callable[[dict[str, Any]], Reply | Failure]


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    refused: str = ""
    """Why the server refused it with a 400 before using a step ("" when it did not):
    "context_length: 9000 tokens > 3000", or the API's message for invalid tool results."""


class FakeProvider:
    """One loopback server; use as a context manager. `dialect` is "openai" or "anthropic"."""

    def __init__(self, dialect: str, steps: list[Step], *, max_prompt_tokens: int | None = None):
        if dialect not in ("openai", "anthropic"):
            raise ValueError(f"unknown dialect {dialect!r}")
        self.dialect = dialect
        self.steps = list(steps)
        self.max_prompt_tokens = max_prompt_tokens
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> FakeProvider:
        provider = self

        class Handler(_Handler):
            fake = provider

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_base(self) -> str:
        """What litellm's `api_base` (or the provider's base-URL variable) should be."""
        return self.url + "/v1" if self.dialect == "openai" else self.url

    def env(self) -> dict[str, str]:
        """Environment pointing litellm's client for this dialect at the server."""
        if self.dialect == "openai":
            return {"OPENAI_API_KEY": "sk-test-dummy", "OPENAI_BASE_URL": self.api_base}
        return {"ANTHROPIC_API_KEY": "sk-ant-test-dummy", "ANTHROPIC_BASE_URL": self.api_base}

    @property
    def served(self) -> list[Request]:
        """The requests that used a step (not refused by the server's own checks)."""
        return [r for r in self.requests if not r.refused]

    # -- answering ---------------------------------------------------------------------

    def _next(self, body: dict[str, Any]) -> Reply | Failure:
        with self._lock:
            if not self.steps:
                return Failure(400, "invalid", message=f"fake {self.dialect} server: no reply left")
            step = self.steps.pop(0)
            serial = len(self.requests)
        step = step(body) if callable(step) else step
        if isinstance(step, Reply):
            step = dataclasses.replace(step, serial=serial, prompt_tokens=(
                prompt_tokens(body) if step.prompt_tokens is None else step.prompt_tokens))
        return step

    def _refusal(self, body: dict[str, Any]) -> Failure | None:
        check = _openai_problem if self.dialect == "openai" else _anthropic_problem
        problem = check(body)
        if problem:
            return Failure(400, "invalid", message=problem)
        if self.max_prompt_tokens is not None:
            tokens = prompt_tokens(body)
            if tokens > self.max_prompt_tokens:
                return Failure(400, "context_length",
                               message=f"{tokens}/{self.max_prompt_tokens}")
        return None


def prompt_tokens(body: dict[str, Any]) -> int:
    """The fake's token count of a request: characters of its texts / 4."""

    def chars(value: Any) -> int:
        if isinstance(value, str):
            return len(value)
        if isinstance(value, dict):
            return sum(chars(v) for v in value.values())
        if isinstance(value, list):
            return sum(chars(v) for v in value)
        return 0

    return sum(chars(body.get(k)) for k in ("messages", "system", "tools")) // 4


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (after a cut, a timeout) is expected; anything else is a
        # bug in the fake, and its traceback should show.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeProvider

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        request = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        refusal = self.fake._refusal(body)
        if refusal is not None and refusal.kind == "context_length":
            request.refused = "context_length: {} tokens > {}".format(*refusal.message.split("/"))
        elif refusal is not None:
            request.refused = refusal.message
        with self.fake._lock:
            self.fake.requests.append(request)
        step = refusal or self.fake._next(body)
        dialect = self.fake.dialect
        if isinstance(step, Failure):
            self._send_json(step.status, _error_body(dialect, step), step.retry_after)
        elif body.get("stream"):
            events = (_openai_events if dialect == "openai" else _anthropic_events)(step, body)
            self._send_stream(events, step.cut_after)
        else:
            build = _openai_reply if dialect == "openai" else _anthropic_reply
            self._send_json(200, build(step, body))

    def _send_json(self, status: int, data: dict, retry_after: float | None = None) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        if retry_after is not None:
            self.send_header("retry-after", f"{retry_after:g}")
            self.send_header("retry-after-ms", str(int(retry_after * 1000)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def _send_stream(self, events: list[str], cut_after: int | None) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for n, event in enumerate(events):
            if cut_after is not None and n >= cut_after:
                # A dropped connection: no terminating chunk, the socket just closes.
                self.wfile.flush()
                time.sleep(0.05)  # let the client read what was sent first
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            data = event.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# -- the APIs' error bodies (as the providers send them) ---------------------------------

_OPENAI_ERRORS = {
    "rate_limit": ("Rate limit reached for gpt-4o-mini in organization org-test on tokens per "
                   "min (TPM): Limit 200000, Used 199500, Requested 1200. Please try again in "
                   "210ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
                   "tokens", "rate_limit_exceeded"),
    "server": ("The server had an error while processing your request. Sorry about that!",
               "server_error", None),
    "overloaded": ("The engine is currently overloaded, please try again later.",
                   "server_error", None),
    "invalid": ("", "invalid_request_error", None),
}

_ANTHROPIC_ERRORS = {
    "rate_limit": ("rate_limit_error", "Number of request tokens has exceeded your per-minute "
                   "rate limit (https://docs.anthropic.com/en/api/rate-limits); see the response "
                   "headers for current usage. Please reduce the prompt length or the maximum "
                   "tokens requested, or try again later."),
    "server": ("api_error", "Internal server error"),
    "overloaded": ("overloaded_error", "Overloaded"),
    "invalid": ("invalid_request_error", ""),
}


def _error_body(dialect: str, failure: Failure) -> dict[str, Any]:
    if failure.kind == "context_length":
        # "tokens/limit" from the server's own check; a scripted failure claims a big prompt.
        tokens, limit = map(int, (failure.message or "208310/200000").split("/"))
        if dialect == "openai":
            message = (f"This model's maximum context length is {limit} tokens. However, your "
                       f"messages resulted in {tokens} tokens. Please reduce the length of the "
                       "messages.")
            return {"error": {"message": message, "type": "invalid_request_error",
                              "param": "messages", "code": "context_length_exceeded"}}
        return {"type": "error", "error": {
            "type": "invalid_request_error",
            "message": f"prompt is too long: {tokens} tokens > {limit} maximum"}}
    if dialect == "openai":
        message, kind, code = _OPENAI_ERRORS[failure.kind]
        return {"error": {"message": failure.message or message, "type": kind, "param": None,
                          "code": code}}
    kind, message = _ANTHROPIC_ERRORS[failure.kind]
    return {"type": "error", "error": {"type": kind, "message": failure.message or message}}


# -- what the APIs check before answering -------------------------------------------------


def _openai_problem(body: dict[str, Any]) -> str:
    open_ids: list[str] = []
    for message in body.get("messages") or []:
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in open_ids:
                return ("Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'.")
            open_ids.remove(message["tool_call_id"])
            continue
        if open_ids:
            return ("An assistant message with 'tool_calls' must be followed by tool messages "
                    "responding to each 'tool_call_id'. The following tool_call_ids did not "
                    f"have response messages: {', '.join(open_ids)}")
        if role == "assistant":
            open_ids = [c["id"] for c in message.get("tool_calls") or []]
    if open_ids:
        return ("An assistant message with 'tool_calls' must be followed by tool messages "
                f"responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(open_ids)}")
    return ""


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def _anthropic_problem(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    if messages and messages[0].get("role") != "user":
        return "messages: first message must use the \"user\" role"
    previous_uses: set[str] = set()
    for n, message in enumerate(messages):
        blocks = _blocks(message)
        last = n == len(messages) - 1
        if not blocks and not (last and message.get("role") == "assistant"):
            return (f"messages.{n}: all messages must have non-empty content except for the "
                    "optional final assistant message")
        for b, block in enumerate(blocks):
            if block.get("type") == "text" and not block.get("text"):
                return f"messages.{n}.content.{b}: text content blocks must be non-empty"
        results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
        if message.get("role") == "user":
            unexpected = sorted(results - previous_uses)
            if unexpected:
                return (f"messages.{n}.content.0: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {unexpected[0]}. Each `tool_result` block must "
                        "have a corresponding `tool_use` block in the previous message.")
            missing = sorted(previous_uses - results)
            if missing:
                return (f"messages.{n - 1}: `tool_use` ids were found without `tool_result` "
                        f"blocks immediately after: {missing[0]}. Each `tool_use` block must "
                        "have a corresponding `tool_result` block in the next message.")
            previous_uses = set()
        else:
            if previous_uses:
                return (f"messages.{n - 1}: `tool_use` ids were found without `tool_result` "
                        f"blocks immediately after: {sorted(previous_uses)[0]}. Each "
                        "`tool_use` block must have a corresponding `tool_result` block in "
                        "the next message.")
            previous_uses = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    return ""


# -- replies -------------------------------------------------------------------------------


def _pieces(text: str) -> list[str]:
    return [text[i : i + FRAGMENT] for i in range(0, len(text), FRAGMENT)]


def _raw(arguments: dict[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments)


def _sse(data: dict[str, Any] | str, event: str | None = None) -> str:
    text = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "") + f"data: {text}\n\n"


def _openai_reply(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.calls:
        message["tool_calls"] = [
            {"id": f"call_{reply.serial}_{n}", "type": "function",
             "function": {"name": name, "arguments": _raw(args)}}
            for n, (name, args) in enumerate(reply.calls)
        ]
    return {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "gpt-4o-mini"),
        "choices": [{"index": 0, "message": message,
                     "finish_reason": "tool_calls" if reply.calls else "stop"}],
        "usage": _openai_usage(reply),
    }


def _openai_usage(reply: Reply) -> dict[str, int]:
    prompt = reply.prompt_tokens or 0
    return {"prompt_tokens": prompt, "completion_tokens": reply.completion_tokens,
            "total_tokens": prompt + reply.completion_tokens}


def _openai_events(reply: Reply, body: dict[str, Any]) -> list[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return _sse({
            "id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1,
            "model": body.get("model", "gpt-4o-mini"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in _pieces(reply.text)]
    for n, (name, args) in enumerate(reply.calls):
        call = {"index": n, "id": f"call_{reply.serial}_{n}", "type": "function",
                "function": {"name": name, "arguments": ""}}
        events.append(chunk({"tool_calls": [call]}))
        events += [chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]})
                   for piece in _pieces(_raw(args))]
    events.append(chunk({}, "tool_calls" if reply.calls else "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        events.append(_sse({"id": "chatcmpl-fake", "object": "chat.completion.chunk",
                            "created": 1, "model": body.get("model"), "choices": [],
                            "usage": _openai_usage(reply)}))
    events.append(_sse("[DONE]"))
    return events


def _anthropic_content(reply: Reply) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    for n, (name, args) in enumerate(reply.calls):
        arguments = json.loads(args) if isinstance(args, str) else args
        content.append({"type": "tool_use", "id": f"toolu_{reply.serial:02d}{n:02d}", "name": name,
                        "input": arguments})
    return content


def _anthropic_reply(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_fake", "type": "message", "role": "assistant",
        "model": body.get("model", "claude"), "content": _anthropic_content(reply),
        "stop_reason": "tool_use" if reply.calls else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": reply.prompt_tokens or 0,
                  "output_tokens": reply.completion_tokens,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def _anthropic_events(reply: Reply, body: dict[str, Any]) -> list[str]:
    start = _anthropic_reply(reply, body)
    start.update(content=[], stop_reason=None,
                 usage={"input_tokens": reply.prompt_tokens or 0, "output_tokens": 1,
                        "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    events = [_sse({"type": "message_start", "message": start}, "message_start"),
              _sse({"type": "ping"}, "ping")]
    index = 0
    if reply.text:
        events.append(_sse({"type": "content_block_start", "index": 0,
                            "content_block": {"type": "text", "text": ""}}, "content_block_start"))
        events += [_sse({"type": "content_block_delta", "index": 0,
                         "delta": {"type": "text_delta", "text": piece}}, "content_block_delta")
                   for piece in _pieces(reply.text)]
        events.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
        index = 1
    for n, (name, args) in enumerate(reply.calls):
        block = {"type": "tool_use", "id": f"toolu_{reply.serial:02d}{n:02d}", "name": name,
                 "input": {}}
        events.append(_sse({"type": "content_block_start", "index": index,
                            "content_block": block}, "content_block_start"))
        events += [_sse({"type": "content_block_delta", "index": index,
                         "delta": {"type": "input_json_delta", "partial_json": piece}},
                        "content_block_delta")
                   for piece in _pieces(_raw(args))]
        events.append(_sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        index += 1
    events.append(_sse({"type": "message_delta",
                        "delta": {"stop_reason": "tool_use" if reply.calls else "end_turn",
                                  "stop_sequence": None},
                        "usage": {"output_tokens": reply.completion_tokens}}, "message_delta"))
    events.append(_sse({"type": "message_stop"}, "message_stop"))
    return events
