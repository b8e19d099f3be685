"""Keeping a conversation within the model's input limit.

`fit(messages, limit, ...)` shrinks a conversation in place when its estimated size nears the
limit: first older tool results are trimmed (head and tail kept, the cut said in the text),
then older turns are replaced by one summary written by a model (`summarize`, a callable),
or, when there is none or it fails, by a note saying how many messages were removed. It
never removes the system prompt, the first user request or the latest turns, and it cuts
only between whole turns: an assistant message and the tool results answering its calls go
or stay together, so the history stays valid for OpenAI and Anthropic alike (neither
accepts a tool result without its call, nor a call without its result).

It compacts down to well under the point that set it off (`TARGET` < `TRIGGER`), so a long
run compacts now and then rather than on every call, and prompt caches stay warm between.

Sizes are estimates: characters / 4, scaled by what the provider reported for the requests
we estimated (`ContextWindow.observe`). litellm's `token_counter` costs 16-30 ms per call on a
100-message conversation and 70-130 ms on 500 (bench/bench_compaction.py), the character
count 0.03-0.14 ms, and building the request itself 2-10 ms; characters / 4 reads code about
1.6 times short, which the calibration corrects from the first reply on.

`compact(messages, summarize)` is the same summary step on demand (`/compact`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import ContextCompacted

if TYPE_CHECKING:
    from .genome import Genome
    from .model import Model

Summarizer = Callable[[str], str]
"""A transcript of older turns in, their summary out (may raise: the turns are then dropped
with a note instead)."""

DEFAULT_LIMIT = 32_000
"""Input tokens assumed for a model litellm does not know and the person did not size."""
DEFAULT_LIMITS = {"ollama/": 8_192, "ollama_chat/": 8_192}
"""Smaller guesses by provider prefix: Ollama truncates silently (from the start, the system
prompt first) instead of refusing, so guessing too high there is worse than compacting early."""
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
"""Tokens each message costs beyond its text (role, separators)."""
TRIGGER = 0.85
"""Compact when the estimate passes this share of the input limit."""
TARGET = 0.6
"""...down to this share, so that the next calls have room to grow."""
HARD_TARGET = 0.5
"""After the provider refused a request as too long: our estimate was wrong, aim lower."""
KEEP_TURNS = 4
"""The latest turns (an assistant message with its tool results, or one other message)
that are never trimmed or summarized; `HARD_KEEP_TURNS` after a refusal."""
HARD_KEEP_TURNS = 2
TRIM_TO = 1_200
"""Characters of an old tool result kept when trimmed (two thirds head, one third tail)."""
HARD_TRIM_TO = 400
TRANSCRIPT_ITEM_CHARS = 2_000
"""Characters of one message in the transcript the summarizer reads."""
SUMMARY_HEADER = "[Summary of the earlier conversation, written to fit the context window]"
DROPPED_HEADER = "[Earlier conversation removed to fit the context window]"
TEXT_RESULT_PREFIX = "Result of "
"""How the loop's text protocol hands back a tool result (a user message)."""
CUT_MARK = "[... {n:,} characters cut to fit the context window ...]"


# -- sizes -------------------------------------------------------------------------------


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(b.get("text") or "") if isinstance(b, dict) and b.get("type") == "text"
            else len(json.dumps(b, default=str))
            for b in content
        )
    return 0 if content is None else len(str(content))


def message_chars(message: dict[str, Any]) -> int:
    chars = _content_chars(message.get("content"))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    return chars


def message_tokens(message: dict[str, Any]) -> int:
    return message_chars(message) // CHARS_PER_TOKEN + MESSAGE_OVERHEAD


def estimate_tokens(messages: list[dict[str, Any]],
                    tools: list[dict[str, Any]] | None = None) -> int:
    """Tokens a request of `messages` (and `tools`) takes, roughly: characters / 4."""
    total = sum(message_tokens(m) for m in messages)
    return total + (tools_tokens(tools) if tools else 0)


def tools_tokens(tools: list[dict[str, Any]] | None) -> int:
    return len(json.dumps(tools)) // CHARS_PER_TOKEN if tools else 0


# -- the model's limit ---------------------------------------------------------------------


def input_limit(model: str, configured: int | None = None) -> int:
    """Input tokens `model` accepts: the person's `context_limit` when set (they know their
    server), a scripted model's declared limit, litellm's `max_input_tokens`, else a guess."""
    if configured:
        return configured
    if model.startswith("scripted/"):
        from .scripted_provider import declared_context_limit

        return declared_context_limit(model.removeprefix("scripted/")) or DEFAULT_LIMIT
    from .model import litellm_module

    try:
        known = litellm_module().get_model_info(model).get("max_input_tokens")
    except Exception:  # not in litellm's table
        known = None
    if isinstance(known, int) and known > 0:
        return known
    return next((v for p, v in DEFAULT_LIMITS.items() if model.startswith(p)), DEFAULT_LIMIT)


# -- turns ---------------------------------------------------------------------------------


def _turns(messages: list[dict[str, Any]], start: int) -> list[tuple[int, int]]:
    """[start, end) spans from `start` on: an assistant message with the tool results that
    follow it is one turn; any other message is a turn of its own."""
    spans = []
    i = start
    while i < len(messages):
        end = i + 1
        if messages[i].get("role") == "assistant":
            while end < len(messages) and messages[end].get("role") == "tool":
                end += 1
        spans.append((i, end))
        i = end
    return spans


def head_end(messages: list[dict[str, Any]]) -> int:
    """Index after the protected head: the leading system messages and the first user request."""
    for i, message in enumerate(messages):
        if message.get("role") == "user":
            return i + 1
        if message.get("role") != "system":
            return i
    return len(messages)


def _tail_start(messages: list[dict[str, Any]], head: int, keep_turns: int,
                budget: int | None = None) -> int:
    """Where the protected latest turns start: the last `keep_turns` turns, fewer when they
    would take more than `budget` tokens, never fewer than one."""
    spans = _turns(messages, head)
    start, size = len(messages), 0
    for count, (first, end) in enumerate(reversed(spans)):
        size += sum(message_tokens(m) for m in messages[first:end])
        if count >= keep_turns or (count and budget is not None and size > budget):
            break
        start = first
    return start


# -- trimming --------------------------------------------------------------------------------


def _is_tool_result(message: dict[str, Any]) -> bool:
    role, content = message.get("role"), message.get("content")
    return role == "tool" or (
        role == "user" and isinstance(content, str) and content.startswith(TEXT_RESULT_PREFIX)
    )


def cut_middle(text: str, keep: int) -> str:
    """`text` with its middle replaced by a note of how much was cut (head 2/3, tail 1/3)."""
    if len(text) <= keep + len(CUT_MARK) + 16:
        return text
    head, tail = keep * 2 // 3, keep // 3
    cut = len(text) - head - tail
    return f"{text[:head]}\n{CUT_MARK.format(n=cut)}\n{text[len(text) - tail:]}"


def _trim(messages: list[dict[str, Any]], indexes: range, keep: int,
          over: Callable[[int], bool]) -> int:
    """Trim tool results at `indexes`, oldest first, while `over(tokens_saved)`; returns the
    tokens saved."""
    saved = 0
    for i in indexes:
        if not over(saved):
            break
        message = messages[i]
        if not _is_tool_result(message) or not isinstance(message.get("content"), str):
            continue
        before = message_tokens(message)
        trimmed = cut_middle(message["content"], keep)
        if trimmed != message["content"]:
            messages[i] = {**message, "content": trimmed}
            saved += before - message_tokens(messages[i])
    return saved


# -- summaries -------------------------------------------------------------------------------


def transcript(messages: list[dict[str, Any]], max_chars: int = 60_000) -> str:
    """Messages as plain text for a summarizer, each one bounded, the whole bounded too
    (its middle cut: the oldest and latest parts matter most)."""
    lines = []
    for message in messages:
        role = message.get("role", "?")
        content = message.get("content")
        text = content if isinstance(content, str) else (
            "\n".join(b.get("text", "") for b in content if isinstance(b, dict))
            if isinstance(content, list) else ""
        )
        if role == "tool":
            role = "tool result"
        if text:
            lines.append(f"[{role}] {cut_middle(text, TRANSCRIPT_ITEM_CHARS)}")
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            arguments = cut_middle(function.get("arguments") or "", TRANSCRIPT_ITEM_CHARS)
            lines.append(f"[{role} calls {function.get('name')}] {arguments}")
    return cut_middle("\n\n".join(lines), max_chars)


def _replace_with_summary(
    messages: list[dict[str, Any]], start: int, end: int, summarize: Summarizer | None,
    max_chars: int,
) -> tuple[int, str]:
    """Replace messages[start:end] by one user message holding their summary (or a note
    when there is no summarizer or it failed); returns (messages replaced, how)."""
    middle = messages[start:end]
    summary, how, why = "", "summarized", ""
    if summarize is not None:
        try:
            summary = summarize(transcript(middle, max_chars)).strip()
        except Exception as exc:  # a failed summary must not end the run: drop instead
            from .terminal_text import one_line

            why = f" (the summary failed: {one_line(str(exc), 200)})"
    if summary:
        text = f"{SUMMARY_HEADER}\n{summary}"
    else:
        how = "dropped"
        text = (f"{DROPPED_HEADER}\n{len(middle)} earlier messages were removed{why}. "
                "Re-read files or re-run commands if you need what they showed.")
    messages[start:end] = [{"role": "user", "content": text}]
    return len(middle), how


# -- fit -------------------------------------------------------------------------------------


@dataclass
class Fitting:
    """How hard `fit` works: the defaults, or `HARD` after the provider refused a request."""

    trigger: float = TRIGGER
    target: float = TARGET
    keep_turns: int = KEEP_TURNS
    trim_to: int = TRIM_TO


HARD = Fitting(trigger=0.0, target=HARD_TARGET, keep_turns=HARD_KEEP_TURNS, trim_to=HARD_TRIM_TO)


def fit(
    messages: list[dict[str, Any]],
    limit: int,
    *,
    summarize: Summarizer | None = None,
    reserve: int = 0,
    scale: float = 1.0,
    how: Fitting | None = None,
    on_event: Callable[[ContextCompacted], None] | None = None,
) -> list[ContextCompacted]:
    """Shrink `messages` in place so that `scale` * their estimate + `reserve` (tools, the
    reply) stays under `limit`; returns what was done (empty when nothing was needed), each
    step also told to `on_event` as it is done.

    Shares (`how.trigger`, `how.target`) are of the room the conversation has: the limit
    minus what never shrinks (the system prompt, the first request, `reserve`). A big system
    prompt in a small window then means compacting a little earlier, not on every call."""
    how = how or Fitting()
    events: list[ContextCompacted] = []

    def done(event: ContextCompacted) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    size = lambda: int(scale * estimate_tokens(messages)) + reserve  # noqa: E731
    before = current = size()
    head = head_end(messages)
    fixed = int(scale * estimate_tokens(messages[:head])) + reserve
    room = max(0, limit - fixed)
    trigger = fixed + how.trigger * room
    if before <= trigger:
        return []
    goal = fixed + int(how.target * room)
    # The latest turns stay whole, unless they alone would take half the room left.
    tail = _tail_start(messages, head, how.keep_turns, int(how.target * room / scale) // 2)
    saved = _trim(messages, range(head, tail), how.trim_to,
                  lambda s: before - int(scale * s) > goal)
    if saved:
        current = size()
        done(ContextCompacted("trimmed", before, current, limit))
    middle = int(scale * estimate_tokens(messages[head:tail]))
    # A summary costs a model call: only when trimming did not even get under the trigger,
    # and for a middle worth it (not a summary alone); then it goes all the way.
    if current > trigger and middle > room // 8 and not (
            tail - head == 1 and _is_summary(messages[head])):
        start_size = current
        dropped, kind = _replace_with_summary(messages, head, tail, summarize,
                                              max(4_000, min(200_000, limit * 2)))
        current = size()
        done(ContextCompacted(kind, start_size, current, limit, dropped))
    if current > limit or (how is HARD and current > goal):
        # The latest turns alone do not fit: trim their results too, as hard as after a
        # refusal (they are never dropped).
        start_size = current
        if _trim(messages, range(head, len(messages)), min(how.trim_to, HARD_TRIM_TO),
                 lambda s: start_size - int(scale * s) > goal):
            current = size()
            done(ContextCompacted("trimmed", start_size, current, limit))
    return events


def _is_summary(message: dict[str, Any]) -> bool:
    content = message.get("content")
    return isinstance(content, str) and content.startswith((SUMMARY_HEADER, DROPPED_HEADER))


def compact(messages: list[dict[str, Any]], summarize: Summarizer | None,
            keep_turns: int = KEEP_TURNS) -> ContextCompacted | None:
    """Summarize everything between the first request and the latest `keep_turns` turns, in
    place, whatever the size (`/compact`); None when there is nothing to summarize."""
    head = head_end(messages)
    tail = _tail_start(messages, head, keep_turns)
    if tail - head < 1 or (tail - head == 1 and _is_summary(messages[head])):
        return None
    before = estimate_tokens(messages)
    dropped, _ = _replace_with_summary(messages, head, tail, summarize, 200_000)
    return ContextCompacted("manual", before, estimate_tokens(messages), 0, dropped)


_REFUSALS = (
    # Anthropic: "prompt is too long: 208310 tokens > 200000 maximum"
    (re.compile(r"([\d,]+) tokens? > ([\d,]+) maximum"), 1, 2),
    # OpenAI and compatible servers: "maximum context length is 8192 tokens. However, your
    # messages resulted in 9000 tokens" / "you requested 9000 tokens (...)"
    (re.compile(r"maximum context length is ([\d,]+) tokens.*?(?:resulted in|requested) "
                r"([\d,]+) tokens", re.DOTALL), 2, 1),
)


def refusal_ratio(error: str) -> float | None:
    """limit / tokens sent, from a provider's context-length error; None when it does not
    say both."""
    for pattern, sent_group, limit_group in _REFUSALS:
        found = pattern.search(error)
        if found:
            sent = int(found.group(sent_group).replace(",", ""))
            limit = int(found.group(limit_group).replace(",", ""))
            if sent > 0 and 0 < limit < sent:
                return limit / sent
    return None


# -- one model's window --------------------------------------------------------------------


@dataclass
class ContextWindow:
    """A model's input limit (looked up lazily), the estimate's calibration, and the
    summarizer; `Model` calls `fit` before each request and `refused` after a
    context-length error."""

    model: str
    configured: int | None = None
    """The person's `context_limit`; None looks the model up."""
    summarize: Summarizer | None = None
    reply_tokens: int = 4_096
    """Room kept for the reply (most providers count it against the same window)."""
    scale: float = 1.0
    """Provider's tokens per estimated token, from the last calls (kept in [0.5, 2.5])."""
    learned: int | None = None
    """A limit the provider taught us by refusing a request (below the one looked up)."""
    on_event: Callable[[ContextCompacted], None] | None = None
    """Told each compaction as it is done (before a summary that follows it)."""
    _known: int | None = field(default=None, repr=False)

    @property
    def limit(self) -> int:
        """Input tokens for the conversation: the model's limit (or the lower one learned from
        a refusal) minus the reply's room."""
        if self.model.startswith("scripted/") and not self.configured:
            raw = input_limit(self.model)  # not cached: a test may resize a script mid-run
        else:
            if self._known is None:
                self._known = input_limit(self.model, self.configured)
            raw = self._known
        if self.learned is not None:
            raw = min(raw, self.learned)
        return max(256, raw - min(self.reply_tokens, raw // 8))

    def estimate(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
        return int(self.scale * estimate_tokens(messages, tools))

    def fit(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
            how: Fitting | None = None) -> list[ContextCompacted]:
        return fit(messages, self.limit, summarize=self.summarize,
                   reserve=int(self.scale * tools_tokens(tools)), scale=self.scale, how=how,
                   on_event=self.on_event)

    def refused(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None,
                error: str = "") -> list[ContextCompacted]:
        """The provider refused `messages` as too long: believe it and compact hard. The new
        limit is what was sent (as we estimate it) scaled by the provider's own "limit /
        tokens sent" when its `error` says them, else 90% of it."""
        sent = self.estimate(messages, tools)
        ratio = refusal_ratio(error) or 0.9
        learned = max(512, int(sent * ratio))
        self.learned = learned if self.learned is None else min(self.learned, learned)
        return self.fit(messages, tools, HARD)

    def observe(self, estimated: int, reported: int) -> None:
        """Calibrate from a provider's prompt token count for a request estimated at
        `estimated` (scale 1); the average of the old and the new ratio."""
        if estimated > 0 and reported > 0:
            ratio = min(2.5, max(0.5, reported / estimated))
            self.scale = (self.scale + ratio) / 2


# -- the summarizer for a run ----------------------------------------------------------------


def compact_prompt(genome: Genome | None, transcript_text: str) -> str:
    """The genome's `prompts/compact.j2` (the packaged template's when the genome has none,
    or when there is no genome)."""
    from .genome import render_template_prompt

    if genome is not None:
        return genome.render("compact", transcript=transcript_text)
    return render_template_prompt("compact", transcript=transcript_text)


def summarize_model(genome: Genome | None, main: str) -> str:
    """The model that writes summaries: the genome's `summarize` role when it is another
    model of `main`'s provider, else `main` itself.

    The genome is evolved by a model, and which provider sees the conversation (the code
    included) is the person's choice: a role naming another provider, or a scripted model
    (a script file is Python imported into evoagent), is not followed."""
    wanted = genome.settings.models.summarize if genome is not None else ""
    provider = main.split("/", 1)[0]
    if not wanted or "/" not in main or wanted.split("/", 1)[0] != provider:
        return main
    return main if provider == "scripted" else wanted


def make_summarizer(main: Model, genome: Genome | None = None) -> Summarizer:
    """Summaries by `summarize_model`, through `main`'s endpoint, accounted in `main`'s
    session and held to its cost and time limits (not its step count: a summary is not a
    step of the agent)."""
    from .model import Model
    from .usage import Budget

    name = summarize_model(genome, main.name)
    helper = Model(
        main.config.model_copy(update={"name": name, "stream": False,
                                       "context_limit": None if name != main.name
                                       else main.config.context_limit}),
        session=main.session,
        budget=Budget(None, main.budget.max_cost_usd, main.budget.max_seconds),
    )

    def summarize(transcript_text: str) -> str:
        prompt = compact_prompt(genome, transcript_text)
        return helper.query([{"role": "user", "content": prompt}]).text

    return summarize
