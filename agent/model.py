"""Model access: one `Model` wrapping `litellm.completion` with native tool calling.

litellm is imported on the first call, never at import time (it costs seconds), with the
local cost map so it does not fetch prices over the network. Transient failures (rate
limits, timeouts, 5xx, dropped connections) are retried with exponential backoff and
jitter, waiting at least what the provider's `retry-after` asks; the provider SDK's own
retries are off, so every attempt is ours to count. Everything else fails at once as a
one-line `ModelError`.

A stream that breaks before anything was shown is retried like any transient error; one
that breaks after text was shown is retried once, after telling the front end (a `Phase`
"reply_cut" event: the text shown since the last message is void).

Before each call the conversation is fitted to the model's input limit, in place
(agent/context_window.py), and a provider's context-length refusal compacts it harder and
asks once more instead of ending the run.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field

from .context_window import ContextWindow, compact, estimate_tokens, make_summarizer
from .errors import EXIT_MODEL, EvoError
from .events import ContextCompacted, Event, Phase
from .usage import Budget, SessionUsage, Usage

if TYPE_CHECKING:
    from .genome import Genome

_litellm_module: Any = None


def litellm_module() -> Any:
    """Import litellm once, quietly and offline (local cost map, no telemetry)."""
    global _litellm_module
    if _litellm_module is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_LOG", "ERROR")
        import litellm

        litellm.suppress_debug_info = True
        if hasattr(litellm, "telemetry"):
            litellm.telemetry = False
        _litellm_module = litellm
    return _litellm_module


@dataclass
class ToolCallRequest:
    """One tool call the model asked for. `arguments` is None when `raw_arguments` is not a
    JSON object; `parse_error` then says why, so the loop can tell the model."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str
    parse_error: str | None = None


@dataclass
class ModelReply:
    text: str
    tool_calls: list[ToolCallRequest]
    usage: Usage
    cost_usd: float | None
    """Dollars for this call; None when litellm has no price for the model ("unknown")."""
    finish_reason: str | None
    attempts: int = 1
    """Calls made, counting retried failures."""

    def assistant_message(self) -> dict[str, Any]:
        """The reply as an OpenAI-format assistant message, ready to append to the history."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.raw_arguments},
                }
                for call in self.tool_calls
            ]
        return message


class ModelError(EvoError):
    """A model call failed for good; `kind` is the litellm exception class name, `message`
    one line (`condense_error`)."""

    def __init__(self, model: str, exc: BaseException, attempts: int):
        kind = type(exc).__name__
        super().__init__(f"model {model}: {kind}: {condense_error(exc)}", EXIT_MODEL)
        self.kind = kind
        self.attempts = attempts


ERROR_CHARS = 300
"""Characters of a provider's error text kept in a ModelError's message."""
_LITELLM_NOISE = re.compile(
    r"\b(?:Received Model Group|Available Model Group Fallbacks|LiteLLM Retried|"
    r"LiteLLM Max Retries|Model Group Fallbacks)\b.*$",
    re.IGNORECASE | re.DOTALL,
)
_PREFIX = re.compile(r"^(?:litellm\.)?\w*(?:Error|Exception|Timeout)\s*[:-]\s*")


def condense_error(exc: BaseException) -> str:
    """litellm's error text as one bounded, terminal-safe line: its repeated class-name
    prefixes and provider tags ("OpenAIException - ") dropped, a JSON error body replaced by
    the provider's own message, litellm's trailing notes (model groups, retries) cut."""
    from .terminal_text import one_line

    text = str(exc).strip()
    text = _LITELLM_NOISE.sub("", text).strip()
    while (stripped := _PREFIX.sub("", text, count=1)) != text:
        text = stripped
    text = _provider_message(text)
    return one_line(text, ERROR_CHARS) or type(exc).__name__


def _provider_message(text: str) -> str:
    """`text` with an embedded JSON error body (as litellm quotes it, maybe as a bytes
    literal) replaced by the message inside it."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return text
    body = text[start : end + 1]
    quote = text[start - 1 : start]
    closing = text[end + 1 : end + 2]
    if start >= 2 and text[start - 2] == "b" and quote in ("'", '"') and closing == quote:
        # A bytes literal (b'{...}'): its escapes are Python's, undo them first.
        try:
            body = ast.literal_eval(text[start - 2 : end + 2]).decode("utf-8", "replace")
        except (ValueError, SyntaxError):
            return text
    try:
        message = _message_in(json.loads(body))
    except ValueError:
        return text
    if not message:
        return text
    before = text[:start].rstrip(" -:b'\"")
    return f"{before}: {message}" if before else message


def _message_in(data: Any) -> str:
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict | str):
            found = _message_in(error) if isinstance(error, dict) else error
            if found:
                return found
        message = data.get("message")
        if isinstance(message, str):
            return message
    return ""


class ModelConfig(BaseModel, extra="forbid"):
    name: str
    """litellm model name, e.g. anthropic/claude-sonnet-4-6, ollama_chat/qwen3, scripted/demo."""
    temperature: float | None = None
    """Sampling temperature; None leaves the provider default."""
    max_tokens: int | None = None
    """Cap on completion tokens per call; None leaves the provider default."""
    timeout: float = 600.0
    """Seconds before one call is abandoned (and retried as a timeout)."""
    retries: int = Field(default=6, ge=0)
    """Retries after the first attempt, for transient errors only."""
    backoff_base: float = 1.0
    """Seconds before the first retry; doubles each retry, with jitter."""
    backoff_max: float = 60.0
    """Longest wait between two retries."""
    stream: bool = True
    """Stream the reply (deltas reach `on_delta` as they arrive)."""
    prompt_caching: bool = True
    """Mark the system and last user message cacheable on models that need it (Anthropic)."""
    drop_params: bool = True
    """Let litellm drop parameters a provider does not support instead of failing."""
    api_base: str | None = None
    """Where the provider is reached (a local server, a proxy); None: the provider's own
    default or its environment variable (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, ...)."""
    context_limit: int | None = Field(default=None, ge=256)
    """Input tokens the model accepts, for a model litellm does not know (or a local server
    run with a smaller window); None looks it up (agent/context_window.py)."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Further keyword arguments passed to litellm.completion as they are."""


class Model:
    """Query a model through litellm; every call is recorded in `session` and checked
    against `budget` first (the one place limits are enforced)."""

    retryable: ClassVar[tuple[str, ...]] = (
        "RateLimitError",
        "Timeout",
        "APIConnectionError",
        "InternalServerError",
        "ServiceUnavailableError",
        "BadGatewayError",
    )
    """litellm exception names worth retrying; any other error with a 5xx status is too."""
    non_retryable: ClassVar[tuple[str, ...]] = (
        "AuthenticationError",
        "PermissionDeniedError",
        "BadRequestError",
        "NotFoundError",
        "ContextWindowExceededError",
        "ContentPolicyViolationError",
        "UnsupportedParamsError",
        "UnprocessableEntityError",
        "BudgetExceededError",
    )
    """litellm exception names that fail at once (checked first: some subclass retryable ones)."""

    def __init__(
        self,
        config: ModelConfig | None = None,
        *,
        session: SessionUsage | None = None,
        budget: Budget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        genome: Genome | None = None,
        on_event: Callable[[Event], None] | None = None,
        **kwargs: Any,
    ):
        self.config = config or ModelConfig(**kwargs)
        self.session = session or SessionUsage()
        self.budget = budget or Budget()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.genome = genome
        """Whose `summarize` model and `compact` prompt write summaries (None: this model,
        the kernel's prompt)."""
        self.on_event = on_event
        """Gets ContextCompacted and "reply_cut" Phase events (None: nobody is told)."""
        self.context = ContextWindow(self.config.name, self.config.context_limit,
                                     reply_tokens=self.config.max_tokens or 4_096)
        self.context.summarize = self._summarize
        self.context.on_event = self._tell
        self._summarizer: Callable[[str], str] | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def query(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        *,
        on_delta: Callable[[str], None] | None = None,
        on_tool_delta: Callable[[int, str | None, str], None] | None = None,
    ) -> ModelReply:
        """One completion. `on_delta(text)` gets assistant text as it streams (the whole text
        at once when not streaming); `on_tool_delta(index, name, fragment)` gets tool-call
        argument fragments (name only on a call's first fragment). Raises BudgetExhausted
        before calling when the session's budget is used up.

        `messages` is fitted to the model's input limit in place (older tool results
        trimmed, older turns summarized), so the caller's history stays compacted."""
        self.budget.check(self.session)
        litellm = litellm_module()
        if self.name.startswith("scripted/"):
            from .scripted_provider import install

            install()
        self.context.fit(messages, tools)
        attempt = 0
        refused = cut_retried = False
        while True:
            attempt += 1
            emitted = [0]
            kwargs = self._completion_kwargs(messages, tools)
            try:
                if self.config.stream:
                    response = self._streamed(litellm, kwargs, on_delta, on_tool_delta, emitted)
                else:
                    response = litellm.completion(**kwargs)
                break
            except Exception as raised:
                exc = _unwrap(raised)
                if _is_context_overflow(litellm, exc) and not refused:
                    # Our estimate was wrong for this model: compact hard and ask again.
                    refused = True
                    if self.context.refused(messages, tools, str(exc)):
                        continue
                retryable = attempt <= self.config.retries and self._is_retryable(exc)
                if not retryable or (emitted[0] and cut_retried):
                    raise ModelError(self.name, exc, attempt) from exc
                if emitted[0]:
                    # Text was shown: the front end must know it is void before the new
                    # reply streams. Only once: a second cut would show it a third time.
                    cut_retried = True
                    self._tell(_reply_cut(emitted[0], exc))
                self._sleep(self._wait(attempt, exc))
        reply = self._normalize(litellm, response, attempt)
        if on_delta and not self.config.stream and reply.text:
            on_delta(reply.text)
        self.context.observe(estimate_tokens(messages, tools), reply.usage.prompt_tokens)
        self.session.record(reply.usage, reply.cost_usd)
        return reply

    def compact(self, messages: list[dict[str, Any]]) -> ContextCompacted | None:
        """Summarize `messages` down to the first request and the latest turns, in place
        (`/compact`); returns the ContextCompacted event (also told), or None."""
        event = compact(messages, self._summarize)
        if event is not None:
            self._tell(event)
        return event

    def _summarize(self, transcript: str) -> str:
        """A summary by the genome's `summarize` model (built on first use)."""
        if self._summarizer is None:
            self._summarizer = make_summarizer(self, self.genome)
        # A summary can take as long as a step: say so.
        self._tell(Phase("compacting", "summarizing older turns to fit the context window"))
        return self._summarizer(transcript)

    def _tell(self, event: Event) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def _completion_kwargs(self, messages: list[dict], tools: list[dict] | None) -> dict:
        cfg = self.config
        if cfg.prompt_caching:
            messages = with_cache_control(messages, cfg.name)
        kwargs: dict[str, Any] = {
            "model": cfg.name,
            "messages": messages,
            "timeout": cfg.timeout,
            "drop_params": cfg.drop_params,
            # The provider SDK's own retries (OpenAI's client retries twice) would hide
            # attempts from our count, backoff and budget.
            "max_retries": 0,
        }
        if cfg.api_base:
            kwargs["api_base"] = cfg.api_base
        if tools:
            kwargs["tools"] = tools
        if cfg.temperature is not None:
            kwargs["temperature"] = cfg.temperature
        if cfg.max_tokens is not None:
            kwargs["max_tokens"] = cfg.max_tokens
        if cfg.stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        return {**kwargs, **cfg.extra}

    def _streamed(self, litellm, kwargs, on_delta, on_tool_delta, emitted) -> Any:
        chunks = []
        for chunk in litellm.completion(**kwargs):
            chunks.append(chunk)
            delta = chunk.choices[0].delta if chunk.choices else None
            if delta is None:
                continue
            if delta.content:
                emitted[0] += len(delta.content)
                if on_delta:
                    on_delta(delta.content)
            for call in delta.tool_calls or []:
                fragment = call.function.arguments or ""
                emitted[0] += len(fragment) or 1
                if on_tool_delta and (fragment or call.function.name):
                    on_tool_delta(call.index or 0, call.function.name, fragment)
        return litellm.stream_chunk_builder(chunks, messages=kwargs["messages"])

    def _is_retryable(self, exc: Exception) -> bool:
        litellm = litellm_module()

        def matches(names: tuple[str, ...]) -> bool:
            types = tuple(t for n in names if isinstance(t := getattr(litellm, n, None), type))
            return isinstance(exc, types)

        if matches(self.non_retryable):
            return False
        if matches(self.retryable):
            return True
        status = getattr(exc, "status_code", None)
        return isinstance(status, int) and status >= 500

    def _backoff(self, attempt: int) -> float:
        """Exponential (base * 2^(attempt-1), capped) with jitter in [50%, 100%]."""
        delay = min(self.config.backoff_max, self.config.backoff_base * 2 ** (attempt - 1))
        return delay * (0.5 + 0.5 * self._rng.random())

    def _wait(self, attempt: int, exc: Exception) -> float:
        """The backoff, or longer when the provider said when to come back (retry-after),
        never past `backoff_max`."""
        asked = retry_after(exc)
        if asked is None:
            return self._backoff(attempt)
        return min(self.config.backoff_max, max(asked, self._backoff(attempt)))

    def _normalize(self, litellm, response: Any, attempts: int) -> ModelReply:
        choice = response.choices[0]
        message = choice.message
        calls = [_tool_call(c, i) for i, c in enumerate(message.tool_calls or [])]
        return ModelReply(
            text=message.content or "",
            tool_calls=calls,
            usage=_usage(response),
            cost_usd=_cost(litellm, response),
            finish_reason=choice.finish_reason,
            attempts=attempts,
        )


def retry_after(exc: BaseException) -> float | None:
    """Seconds the provider asked to wait (`retry-after-ms`, else `retry-after` in seconds),
    or None when it did not say."""
    for source in (getattr(exc, "litellm_response_headers", None),
                   getattr(getattr(exc, "response", None), "headers", None)):
        if not source:
            continue
        try:
            headers = {str(k).lower(): str(v) for k, v in dict(source).items()}
        except (TypeError, ValueError):
            continue
        for name, factor in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            try:
                seconds = float(headers[name]) * factor
            except (KeyError, ValueError):  # absent, or an HTTP date: the backoff decides
                continue
            if seconds >= 0:
                return seconds
    return None


def _is_context_overflow(litellm: Any, exc: BaseException) -> bool:
    kind = getattr(litellm, "ContextWindowExceededError", None)
    return isinstance(kind, type) and isinstance(exc, kind)


def _reply_cut(shown: int, exc: BaseException) -> Phase:
    return Phase("reply_cut", f"the reply broke off after {shown} characters "
                              f"({type(exc).__name__}); asking again, the text above is void")


def _unwrap(exc: Exception) -> Exception:
    """The provider's error inside litellm's MidStreamFallbackError (a 429 or 5xx raised
    while a stream starts), so it is classified and reported as what it is."""
    original = getattr(exc, "original_exception", None)
    if type(exc).__name__ == "MidStreamFallbackError" and isinstance(original, Exception):
        return original
    return exc


def _tool_call(call: Any, index: int) -> ToolCallRequest:
    raw = call.function.arguments or ""
    arguments, error = parse_arguments(raw)
    return ToolCallRequest(
        id=call.id or f"call_{index}",
        name=call.function.name or "",
        arguments=arguments,
        raw_arguments=raw,
        parse_error=error,
    )


def parse_arguments(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """Tool-call arguments as a dict, or None and a one-line reason. Empty means no arguments."""
    if not raw.strip():
        return {}, None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        return None, f"arguments are not valid JSON: {exc}"
    if not isinstance(value, dict):
        return None, f"arguments must be a JSON object, got {type(value).__name__}"
    return value, None


def _usage(response: Any) -> Usage:
    usage = getattr(response, "usage", None)
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or getattr(usage, "cache_read_input_tokens", 0)
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        cached_tokens=cached or 0,
    )


def _cost(litellm, response: Any) -> float | None:
    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:  # no price for this model: the cost is unknown, not an error
        return None


def with_cache_control(messages: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """For Anthropic (Claude) models, mark the system message and the last user message as
    prompt-cache breakpoints; other providers cache automatically or not at all, so their
    messages are returned unchanged (the same list)."""
    if "claude" not in model.lower():
        return messages
    marked = list(messages)
    system = next((i for i, m in enumerate(marked) if m.get("role") == "system"), None)
    user = next(
        (i for i in range(len(marked) - 1, -1, -1) if marked[i].get("role") == "user"), None
    )
    for index in {i for i in (system, user) if i is not None}:
        marked[index] = _cacheable(marked[index])
    return marked


def _cacheable(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, str):
        blocks = [{"type": "text", "text": content}]
    elif isinstance(content, list) and content:
        blocks = [dict(b) if isinstance(b, dict) else b for b in content]
    else:
        return message
    if isinstance(blocks[-1], dict):
        blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
    return {**message, "content": blocks}
