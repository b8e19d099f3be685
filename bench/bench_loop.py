"""Agent-loop overhead per step, model time excluded (target ≤ 50 ms).

Runs the real AgentLoop with the scripted provider: each step reads a file or searches
the repository, so the figure includes tool dispatch, event emission and bookkeeping.
Model time (litellm + the scripted provider) is measured around each query and
subtracted; a bare `read`/`search` call is timed the same way as the baseline.

  python bench/bench_loop.py [--steps 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from evoagent.agent.demo import build_demo_repo
from evoagent.agent.loop import AgentLoop, LoopConfig
from evoagent.agent.model import Model
from evoagent.agent.scripted_provider import ScriptedReply, ScriptedToolCall, register_script
from evoagent.agent.tools import call_tool
from evoagent.agent.tools.base import ToolContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    repo = build_demo_repo(Path(tempfile.mkdtemp(prefix="evoagent-bench-loop-")))
    steps = []
    for i in range(args.steps):
        call = ScriptedToolCall("read", {"path": "mathutils.py"}) if i % 2 else ScriptedToolCall(
            "search", {"pattern": "clamp"})
        steps.append(ScriptedReply(text=f"step {i}", tool_calls=[call]))
    steps.append(ScriptedReply(tool_calls=[ScriptedToolCall("finish", {"summary": "done"})]))
    register_script("bench-loop", steps)
    model = Model(name="scripted/bench-loop", stream=True)
    model_seconds: list[float] = []
    query = model.query

    def timed_query(*a, **kw):
        started = time.perf_counter()
        try:
            return query(*a, **kw)
        finally:
            model_seconds.append(time.perf_counter() - started)

    model.query = timed_query  # measure, do not change, the model's time
    ctx = ToolContext(workspace=repo)
    events = []
    loop = AgentLoop(model, ctx, LoopConfig(["read", "search", "finish"], args.steps + 5),
                     events.append, [{"role": "system", "content": "bench"},
                                     {"role": "user", "content": "go"}])
    started = time.perf_counter()
    outcome = loop.run()
    total = time.perf_counter() - started
    assert outcome.finished
    tool_seconds = []
    for i in range(20):
        t0 = time.perf_counter()
        call_tool("read" if i % 2 else "search",
                  {"path": "mathutils.py"} if i % 2 else {"pattern": "clamp"}, ctx)
        tool_seconds.append(time.perf_counter() - t0)
    n = outcome.steps
    overhead = (total - sum(model_seconds)) / n
    bare_tool = statistics.median(tool_seconds)
    print(f"steps {n}, events {len(events)}")
    print(f"model time per step (scripted, incl. litellm): {1000 * sum(model_seconds) / n:.1f} ms")
    print(f"loop time per step excluding model:          {1000 * overhead:.1f} ms")
    print(f"  of which the tool itself (bare call median): {1000 * bare_tool:.1f} ms")
    print(f"  loop bookkeeping beyond the tool:            {1000 * (overhead - bare_tool):.1f} ms")


if __name__ == "__main__":
    main()
