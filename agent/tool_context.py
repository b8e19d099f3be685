"""What the agent's tools can reach during one run (`ToolContext`), wired to the sandbox,
the workspace and memory. Built once per request by `fix.run_request`."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .events import CommandOutput, CommandRun, Event
from .genome import Genome
from .repo_context import RepoContext
from .tools.base import ToolContext

if TYPE_CHECKING:
    from .conversation import Baseline


def build_tool_context(
    ctx: RepoContext, genome: Genome, workspace, runner, publish: Callable[[Event], None],
    baseline: Baseline | None = None,
) -> ToolContext:
    """The tools' view of one run: the workspace, commands in the sandbox (their output
    published live as `CommandOutput`, then the whole as a `CommandRun`), locate/recall/repo
    map over HEAD (or the baseline's commit)."""
    as_of = baseline.as_of if baseline else None

    def run_command(command: str, timeout: float) -> tuple[int | None, str]:
        # The loop names the call just before running it: read it now, not at build time.
        live = LiveOutput(tools.current_call_id, publish)
        try:
            result = runner.run(command, workspace.path, timeout=timeout, on_output=live)
        finally:
            live.close()
        publish(CommandRun(command, result.exit_code, result.output[-4000:], result.seconds,
                           result.isolated))
        # None tells the run tool the command timed out (it says so to the model).
        return (None if result.timed_out else result.exit_code), result.output

    @functools.cache
    def locator():
        """The code index at HEAD and a locator over it, built once per request and shared
        by the evidence, the locate tool and the repo map (the agent's edits are not in it)."""
        from evoagent.memory.codeindex import CodeIndex
        from evoagent.memory.locate import Locator

        index = CodeIndex(ctx.root, ctx.state.cache_dir).index(baseline.rev if baseline else "HEAD")
        return Locator(index, store=ctx.store, knowledge=ctx.knowledge, as_of=as_of, repo=ctx.root)

    def locate(text: str, k: int) -> dict[str, Any]:
        return locator().locate(text, k=k).to_json()

    def recall(query: str, k: int) -> list[dict[str, Any]]:
        from evoagent.memory.search import recall as run_recall

        return [
            {"sha": h.memory.sha, "subject": h.memory.subject, "files": h.memory.paths,
             "score": h.score}
            for h in run_recall(ctx.store, query, k=k, as_of=as_of)
        ]

    def repo_map(budget: int, focus: list[str]) -> str:
        """The ranked outline of the code at HEAD (the agent's edits are not in it yet)."""
        from evoagent.memory.repomap import render_map

        index = locator().index
        paths = [f for f in focus if f in index.files]
        names = [f for f in focus if f not in index.files]
        return render_map(index, budget_tokens=budget, focus_paths=paths, focus_names=names)

    tools = ToolContext(
        workspace=workspace.path,
        git_dir=workspace.git_dir,
        output_limit=genome.settings.output.tool_output_chars,
        run_command=run_command,
        locate=locate,
        recall=recall,
        repo_map=repo_map,
        skills=genome.skills,
        writable=genome.policy.allows_write,
    )
    return tools


LIVE_INTERVAL = 0.1
"""Least time between two `CommandOutput` events of one command: at most ~10 a second."""


class LiveOutput:
    """One command's live output, published as `CommandOutput` events of its tool call.

    An empty first event says the command started (after any approval), so a front end can
    count its time before the first byte. Pieces that come closer together than `interval`
    are merged: what waits goes with the next piece or at `close()`. The runner hands output
    on at least every ~0.2 s while it comes and never more than its output cap, so nothing
    waits long and the events stay bounded.
    """

    def __init__(self, call_id: str, publish: Callable[[Event], None],
                 interval: float = LIVE_INTERVAL):
        self.call_id = call_id
        self.publish = publish
        self.interval = interval
        self.start = time.monotonic()
        self.last = -math.inf
        self.pending: list[str] = []
        publish(CommandOutput(call_id, "", 0.0))

    def __call__(self, piece: str) -> None:
        self.pending.append(piece)
        if time.monotonic() - self.last >= self.interval:
            self._send()

    def close(self) -> None:
        """The command returned: publish what still waits."""
        self._send()

    def _send(self) -> None:
        text = "".join(self.pending)
        self.pending.clear()
        if text:
            self.last = time.monotonic()
            self.publish(CommandOutput(self.call_id, text, self.last - self.start))
