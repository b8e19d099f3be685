"""What keeping a conversation inside the model's window costs per model call.

For agent-like conversations of 10, 100 and 500 messages (assistant turns with a tool call,
tool results of 0.5-6 KB, now and then a nudge) it times, per call:

- `fit` when nothing needs doing (the estimate only: every call pays this);
- `fit` when it compacts: trimming old results, and trimming plus a summary (the summarizer
  is a stub returning at once, so the figure is the kernel's share, not the model's);
- building the request alone, in the same run: `litellm.completion(..., mock_response=...)`
  for an OpenAI and an Anthropic model (litellm's own per-call work: parameters, message
  transformation, response object; no network);
- litellm's `token_counter` on the same messages, the precise count `fit` does not use, and
  how far the chars / 4 estimate is from it.

  python bench/bench_compaction.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import statistics
import time
from collections.abc import Callable

from evoagent.agent.context_window import CHARS_PER_TOKEN, estimate_tokens, fit
from evoagent.agent.model import litellm_module

SIZES = (10, 100, 500)
TOOLS = [{"type": "function", "function": {
    "name": name, "description": f"The {name} tool: does what its name says, with care.",
    "parameters": {"type": "object", "properties": {"path": {"type": "string"},
                                                   "text": {"type": "string"}}}}}
    for name in ("read", "search", "edit", "run", "run_tests", "finish")]


def conversation(messages: int, rng: random.Random) -> list[dict]:
    """System prompt, request, then turns until `messages` messages."""
    code = "".join(f"    value_{i} = compute(value_{i - 1}, {i})  # step {i}\n" for i in range(200))
    history: list[dict] = [
        {"role": "system", "content": "You are a careful coding agent. " * 60},
        {"role": "user", "content": "clamp() returns the lower bound above the upper bound. " * 5},
    ]
    n = 0
    while len(history) < messages:
        if rng.random() < 0.1:
            history.append({"role": "user", "content": "Use a tool to continue."})
            continue
        call_id = f"call_{n}"
        history.append({"role": "assistant", "content": "Let me look. " * rng.randint(0, 20),
                        "tool_calls": [{"id": call_id, "type": "function", "function": {
                            "name": "read", "arguments": json.dumps({"path": f"pkg/m{n}.py"})}}]})
        history.append({"role": "tool", "tool_call_id": call_id,
                        "content": code[: rng.randint(500, 6000)]})
        n += 1
    return history[:messages] if history[messages - 1]["role"] != "assistant" else history[
        : messages - 1]


def per_call(fn: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of `fn` over `repeat` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def fit_on_copies(history: list[dict], limit: int, repeat: int, summarize) -> tuple[float, str]:
    """Median ms of one `fit` that compacts (each run on a fresh copy, copied untimed)."""
    copies = [copy.deepcopy(history) for _ in range(repeat)]
    times, kinds = [], set()
    for messages in copies:
        started = time.perf_counter()
        events = fit(messages, limit, summarize=summarize)
        times.append((time.perf_counter() - started) * 1000)
        kinds.add("+".join(e.how for e in events) or "none")
    return statistics.median(times), ",".join(sorted(kinds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    started = time.perf_counter()
    litellm = litellm_module()
    print(f"litellm import: {time.perf_counter() - started:.1f} s (once per process)")
    rng = random.Random(13)
    summarize = lambda transcript: "The agent read several modules; nothing is fixed yet."  # noqa: E731

    print(f"\n{'messages':>8} {'est tokens':>10} {'fit idle':>9} {'fit trim':>9} "
          f"{'fit +sum':>9} {'openai req':>10} {'claude req':>10} {'tok count':>10} "
          f"{'est/exact':>9}")
    for size in SIZES:
        history = conversation(size, rng)
        tokens = estimate_tokens(history, TOOLS)
        idle = per_call(lambda h=history, t=tokens: fit(h, t * 4, summarize=summarize),
                        args.repeat)
        # A window just under the conversation: trimming old results is enough.
        trim_ms, trim_kind = fit_on_copies(history, int(tokens * 1.05), args.repeat, summarize)
        # A window a third of the conversation: trimming is not enough, a summary follows.
        sum_ms, sum_kind = fit_on_copies(history, int(tokens / 3), args.repeat, summarize)
        requests = {}
        for name in ("openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"):
            requests[name] = per_call(lambda h=history, n=name: litellm.completion(
                model=n, messages=h, tools=TOOLS, mock_response="ok"), args.repeat)
        counted = per_call(lambda h=history: litellm.token_counter(
            model="gpt-4o-mini", messages=h), max(3, args.repeat // 4))
        exact = litellm.token_counter(model="gpt-4o-mini", messages=history)
        print(f"{len(history):>8} {tokens:>10} {idle:>9.3f} {trim_ms:>9.2f} {sum_ms:>9.2f} "
              f"{requests['openai/gpt-4o-mini']:>10.2f} "
              f"{requests['anthropic/claude-sonnet-4-5']:>10.2f} {counted:>10.1f} "
              f"{estimate_tokens(history) / exact:>9.2f}   ({trim_kind}; {sum_kind})")
    print(f"\nms per call (median of {args.repeat}); 'fit idle' runs before every call, the "
          f"compacting ones only when the window fills. est/exact: chars/{CHARS_PER_TOKEN} "
          "against tiktoken (gpt-4o-mini), before the per-call calibration from usage.")


if __name__ == "__main__":
    main()
