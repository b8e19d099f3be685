"""What the agent's tools can reach during one run (`ToolContext`), wired to the sandbox,
the workspace and memory. Built once per request by `fix.run_request`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .events import CommandRun, Event
from .genome import Genome
from .repo_context import RepoContext
from .tools.base import ToolContext

if TYPE_CHECKING:
    from .fix import Baseline


def build_tool_context(
    ctx: RepoContext, genome: Genome, workspace, runner, publish: Callable[[Event], None],
    baseline: Baseline | None = None,
) -> ToolContext:
    """The tools' view of one run: the workspace, commands in the sandbox (each published as
    a `CommandRun`), locate/recall/repo map over HEAD (or the baseline's commit)."""
    as_of = baseline.as_of if baseline else None

    def run_command(command: str, timeout: float) -> tuple[int | None, str]:
        result = runner.run(command, workspace.path, timeout=timeout)
        publish(CommandRun(command, result.exit_code, result.output[-4000:], result.seconds,
                           result.isolated))
        return result.exit_code, result.output

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

    return ToolContext(
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
