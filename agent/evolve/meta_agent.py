"""The meta agent: reads how the parent failed, and makes ONE change to the genome.

It runs the ordinary agent loop with a narrow toolset — read, search, edit, write, finish —
over the variant's worktree and nothing else (every path is confined to it; it runs no
commands), plus the meta agent's own Python tools from `meta/tools/` when the genome's
policy allows genome code: those run in the sandbox, never in this process. Its task prompt is the *parent's*
`meta/propose.j2`, so a variant that improves `meta/` changes how its own children are
made; its system prompt is `meta/system.j2` when the genome has one. What it writes in
`finish` is the proposal (diagnosis, change, expected effect); the kernel commits the
worktree with it. The meta agent never scores anything.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..events import Event
from ..genome import Genome
from ..loop import AgentLoop, LoopConfig
from ..model import Model
from ..tools.base import ToolContext
from ..usage import Budget, SessionUsage

META_TOOLS = ["read", "search", "edit", "write", "finish"]
META_SYSTEM = """You are the meta agent of evoagent. The repository you are in is a coding
agent's own definition (its genome): settings, prompts, skills, tools, hooks, and meta/ (your
own prompts). Improve the agent by ONE focused change, then call finish with your proposal:

Diagnosis: <the recurring failure, citing the tasks that show it>
Change: <what you changed, file by file>
Expected effect: <which failures it should fix and why>"""
MAX_STEPS = 40


@dataclass
class Proposal:
    text: str
    finished: bool
    steps: int
    cost_usd: float | None
    tokens: int


def genome_files(worktree: Path) -> str:
    rows = []
    for path in sorted(worktree.rglob("*")):
        rel = path.relative_to(worktree).as_posix()
        if path.is_file() and not rel.startswith(".git") and "__pycache__" not in rel:
            rows.append(f"{rel} ({path.stat().st_size} bytes)")
    return "\n".join(rows)


def meta_code_tools(genome: Genome, worktree: Path) -> dict:
    """The meta agent's own Python tools, `meta/tools/*.py` of the parent genome (same
    protocol as `tools/`): run in the sandbox with only the variant's worktree writable, and
    only when the genome's policy lets genome code run at all."""
    folder = worktree / "meta" / "tools"
    files = sorted(p for p in folder.glob("*.py") if not p.name.startswith("_")) if folder.is_dir() else []
    if not files or not genome.code_enabled:
        return {}
    from evoagent.sandbox.config import SandboxConfig
    from evoagent.sandbox.local import make_runner

    from ..genome import load_code_tool
    from ..genome_code import Executor, GenomeTool

    executor = Executor(make_runner(SandboxConfig(writable=(worktree,))), worktree)
    found = {}
    for file in files:
        spec = load_code_tool(file)
        found[spec.name] = GenomeTool(spec, executor, file.relative_to(worktree).as_posix())
    return found


def propose(
    worktree: Path,
    model_name: str,
    variables: dict[str, str],
    budget: Budget | None = None,
    emit: Callable[[Event], None] = lambda event: None,
    api_base: str | None = None,
    context_limit: int | None = None,
) -> Proposal:
    """Run the meta agent in `worktree` (the parent's genome on the variant's branch).
    `api_base` and `context_limit` are the person's settings for that model (a local
    endpoint), passed only when the meta model is the one they configured."""
    from ..conversation import supports_native_tools

    genome = Genome.load(worktree)  # the parent's genome: its meta/ prompts drive this run
    task = genome.render("meta/propose.j2", **{"genome_files": genome_files(worktree), **variables})
    system = (genome.render("meta/system.j2", **variables)
              if (worktree / "meta" / "system.j2").is_file() else META_SYSTEM)
    session = SessionUsage()
    model = Model(name=model_name, session=session, budget=budget, api_base=api_base,
                  context_limit=context_limit)
    tools = ToolContext(
        workspace=worktree,
        output_limit=genome.settings.output.tool_output_chars,
        writable=lambda rel: rel.split("/", 1)[0] != ".git",
        extra_tools=meta_code_tools(genome, worktree),
    )
    names = META_TOOLS + sorted(tools.extra_tools)
    loop = AgentLoop(
        model, tools, LoopConfig(names, MAX_STEPS, supports_native_tools(model_name)), emit,
        [{"role": "system", "content": system}, {"role": "user", "content": task}],
    )
    outcome = loop.run()
    totals = session.totals()
    return Proposal(outcome.summary, outcome.finished, outcome.steps, totals.cost_usd,
                    totals.prompt_tokens + totals.completion_tokens)
