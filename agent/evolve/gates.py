"""The gates a variant passes before its score counts, cheapest first. Each returns a
`GateResult`; the first failure rejects the variant with that gate named.

    load       nothing of the variant runs before its static scan is clean (no links in
               the genome, no findings in its Python); then the genome loads: TOML, prompt
               templates, and its Python tools and hooks import in the sandbox with the right
               shape and each hook answers a sample call
    policy     policy.toml is not loosened (tightening is fine)
    duplicate  the change is not one already tried (same diff, or nearly)
    safety     the safety suite (safety.py) and a scan of the code the variant added
The score gates (small stage, full val) live in evolve.py: they need the harness.

A gate's detail becomes the variant's rejection reason, which the archive keeps and the next
meta agent reads in its prompt. Parts of it come from the variant's own code (a hook's error
text), so every detail is one bounded line with control characters removed, and nothing a
sandbox wrote is ever quoted from a file (genome_code.py reads replies with `read_untrusted`).
"""

from __future__ import annotations

import difflib
import re
import tempfile
import time
from pathlib import Path

from .archive import GateResult, Variant

NEAR_DUPLICATE = 0.95
DETAIL_CHARS = 500
"""Most characters of a gate's detail (a rejection reason)."""
POLICY_BYTES = 100_000
_NOISE = re.compile(r"^(?:index [0-9a-f]+\.\.[0-9a-f]+.*|@@ .* @@.*)$", re.MULTILINE)


def _timed(name: str, check, worktree: Path | None = None) -> GateResult:
    started = time.monotonic()
    try:
        problem = check()
    except Exception as exc:  # a gate that cannot run rejects, with the reason
        problem = f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}"
    if problem and worktree is not None:  # genome-relative paths read better than tmp ones
        problem = problem.replace(f"{worktree}/", "")
    if problem:
        from ..genome_code import printable

        problem = printable(problem, DETAIL_CHARS) or "rejected"
    return GateResult(name, not problem, problem or "", round(time.monotonic() - started, 3))


def load_gate(worktree: Path, strict: bool = False) -> GateResult:
    def check() -> str:
        from ..genome import Genome, GenomeError
        from .code_scan import scan_genome_code

        # First, before any file is loaded or any code runs: a link could make the loader
        # read a host file, and code the scan flags must not get to run even in the sandbox.
        findings = scan_genome_code(worktree)
        if findings:
            more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
            return f"genome-code: {_finding_text(findings[0])}{more}"
        try:
            Genome.load(worktree)
        except GenomeError as exc:
            return exc.message
        problems = genome_code_problems(worktree, strict)
        return "; ".join(problems[:3])

    return _timed("load", check, worktree)


def genome_code_problems(worktree: Path, strict: bool = False) -> list[str]:
    """Import every genome tool and hook in the sandbox and check its shape, then call each
    hook once with a sample payload (a hook that crashes would end every run)."""
    from evoagent.sandbox.config import SandboxConfig
    from evoagent.sandbox.local import make_runner

    from ..genome_code import check_genome_code, exercise_hooks

    with tempfile.TemporaryDirectory(prefix="evoagent-gate-") as tmp:
        runner = make_runner(SandboxConfig(writable=(Path(tmp),), readable=(worktree,)),
                             strict=strict)
        return check_genome_code(worktree, runner) or exercise_hooks(worktree, runner)


def policy_gate(parent_policy: str | None, worktree: Path) -> GateResult:
    def check() -> str:
        import tomllib

        from evoagent.sandbox.untrusted_files import read_untrusted_text

        from ..genome import Policy

        try:
            text = read_untrusted_text(worktree / "policy.toml", POLICY_BYTES, root=worktree)
            new = Policy(**tomllib.loads(text))
        except Exception as exc:
            return f"policy.toml does not load: {exc}"
        old = Policy(**tomllib.loads(parent_policy)) if parent_policy else Policy()
        looser = old.loosenings(new)
        return "policy.toml loosened: " + "; ".join(looser) if looser else ""

    return _timed("policy", check, worktree)


def normalized(diff: str) -> str:
    return _NOISE.sub("", diff).strip()


def duplicate_gate(diff: str, others: list[Variant]) -> GateResult:
    def check() -> str:
        mine = normalized(diff)
        if not mine:
            return "no change to the genome"
        for other in others:
            theirs = normalized(other.diff)
            if not theirs:
                continue
            if theirs == mine:
                return f"same change as variant {other.id}"
            if difflib.SequenceMatcher(None, mine, theirs, autojunk=False).ratio() >= NEAR_DUPLICATE:
                return f"nearly the same change as variant {other.id}"
        return ""

    return _timed("duplicate", check)


def safety_gate(worktree: Path, changed: list[str], model: str, strict: bool = False) -> GateResult:
    def check() -> str:
        from ..genome import Genome
        from .code_scan import scan_genome_code
        from .safety import run_scenarios

        code = [p for p in changed if p.startswith(("tools/", "hooks/", "meta/tools/"))
                and p.endswith(".py")]
        if code:
            findings = [f for f in scan_genome_code(worktree) if _finding_path(f) in code]
            if findings:  # (importing and calling it in the sandbox was the load gate's job)
                return f"genome-code: {_finding_text(findings[0])}"
        for result in run_scenarios(Genome.load(worktree), model, strict):
            if not result.passed:
                return f"{result.name}: {result.detail}"
        return ""

    return _timed("safety", check, worktree)


def _finding_path(finding) -> str:
    return Path(str(finding.path)).as_posix()


def _finding_text(finding) -> str:
    return f"{finding.path}:{finding.line}: {finding.category}: {finding.message}"
