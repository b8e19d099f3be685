"""How much does the sandbox cost?

    .venv/bin/python bench/bench_sandbox.py [--runs 50] [--ws-runs 5] [--mirror PATH]

1. Command overhead: median wall time of `true` through BwrapRunner (bubblewrap, limits, output
   capture) minus a bare `subprocess.run(["true"])`, over `--runs` runs. Target <= 30 ms.
2. Running as an unprivileged user (root callers only): on a clone of the sympy mirror, the
   first ACL pass over the whole tree, the pass before each later command (nothing changed,
   then after the host rewrote 20 files), and sandboxed `true` in that tree as the sandbox
   user against `run_as="0"` (root, no ACL pass), alternating, over `--runs` runs.
3. Workspace creation on a large repository: the bare sympy mirror is cloned locally with
   `git clone --shared` into a temp dir, one tracked file is modified and one untracked file
   added, then `Workspace.create` (HEAD + those changes) is timed against a bare
   `git worktree add --detach` of the same commit, alternating, `--ws-runs` times each.
   Target: median ratio <= 2x.
Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from evoagent.sandbox.acl import Granter
from evoagent.sandbox.bwrap import BwrapRunner, bwrap_path
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.workspace import Workspace

MIRROR = Path("/work/.mirror/sympy+sympy/repo")


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def bench_overhead(runs: int) -> None:
    if bwrap_path() is None:
        print("bwrap not installed: overhead benchmark skipped")
        return
    cwd = Path(tempfile.mkdtemp(prefix="evoagent-bench-"))
    runner = BwrapRunner(SandboxConfig(writable=(cwd,)))
    bare, boxed = [], []
    runner.run(["true"], cwd)
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["true"])
        bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = runner.run(["true"], cwd)
        boxed.append(time.perf_counter() - start)
        assert result.exit_code == 0 and result.isolated
    shutil.rmtree(cwd)
    print(f"bare true          median {median_ms(bare):6.2f} ms")
    print(f"sandboxed true     median {median_ms(boxed):6.2f} ms")
    print(f"overhead           median {median_ms(boxed) - median_ms(bare):6.2f} ms (target <= 30)")


def bench_unprivileged(mirror: Path, runs: int) -> None:
    if bwrap_path() is None or os.geteuid() != 0:
        print("not root (or no bwrap): unprivileged-user benchmark skipped")
        return
    if not mirror.exists():
        print(f"{mirror} not found: unprivileged-user benchmark skipped")
        return
    tmp = Path(tempfile.mkdtemp(prefix="evoagent-bench-"))
    try:
        tree = tmp / "tree"
        subprocess.run(["git", "clone", "-q", "--shared", str(mirror), str(tree)], check=True)
        entries = sum(len(dirs) + len(files) for _, dirs, files in os.walk(tree))
        granter = Granter()
        start = time.perf_counter()
        granter.grant(tree, 65534)
        first = time.perf_counter() - start
        unchanged, rewritten = [], []
        sources = sorted(tree.rglob("*.py"))[:20]
        for _ in range(runs):
            start = time.perf_counter()
            granter.grant(tree, 65534)
            unchanged.append(time.perf_counter() - start)
            for source in sources:  # the host rewrites files the way the edit tool does
                temp = source.with_suffix(".tmp")
                temp.write_bytes(source.read_bytes())
                os.replace(temp, source)
            start = time.perf_counter()
            granter.grant(tree, 65534)
            rewritten.append(time.perf_counter() - start)
        print(f"tree: {entries} entries")
        print(f"first ACL pass     {first * 1000:7.1f} ms")
        print(f"later pass         median {median_ms(unchanged):6.2f} ms (nothing changed)")
        print(f"later pass         median {median_ms(rewritten):6.2f} ms (20 files rewritten)")
        dropped = BwrapRunner(SandboxConfig(writable=(tree,)))
        as_root = BwrapRunner(SandboxConfig(writable=(tree,), run_as="0"))
        dropped.run(["true"], tree)
        as_root.run(["true"], tree)
        times: dict[str, list[float]] = {"sandbox user": [], "root": []}
        for _ in range(runs):
            for name, runner in (("sandbox user", dropped), ("root", as_root)):
                start = time.perf_counter()
                result = runner.run(["true"], tree)
                times[name].append(time.perf_counter() - start)
                assert result.exit_code == 0, result.output
        for name, values in times.items():
            print(f"true as {name:12s} median {median_ms(values):6.2f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_workspace(mirror: Path, runs: int) -> None:
    if runs < 1:
        return
    if not mirror.exists():
        print(f"{mirror} not found: workspace benchmark skipped")
        return
    tmp = Path(tempfile.mkdtemp(prefix="evoagent-bench-"))
    try:
        repo = tmp / "repo"
        subprocess.run(["git", "clone", "-q", "--shared", str(mirror), str(repo)], check=True)
        files = subprocess.run(
            ["git", "ls-files"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.split()
        with open(repo / "README.md", "a") as handle:
            handle.write("\nlocal edit\n")
        (repo / "scratch_untracked.py").write_text("x = 1\n")
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        print(f"repo: {mirror.parent.name} clone, {len(files)} tracked files, HEAD {head[:10]}")
        worktree, created = [], []
        for i in range(runs):
            target = tmp / f"wt{i}"
            start = time.perf_counter()
            subprocess.run(
                ["git", "worktree", "add", "-q", "--detach", str(target), head],
                cwd=repo,
                check=True,
            )
            worktree.append(time.perf_counter() - start)
            start = time.perf_counter()
            ws = Workspace.create(repo, repo / ".evoagent" / "sandboxes")
            created.append(time.perf_counter() - start)
            assert ws.base != ws.rev
            ws.remove()
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(target)], cwd=repo, check=True
            )
        ratio = median_ms(created) / median_ms(worktree)
        print(
            f"git worktree add   median {median_ms(worktree):7.1f} ms  (min {min(worktree) * 1000:.1f})"
        )
        print(
            f"Workspace.create   median {median_ms(created):7.1f} ms  (min {min(created) * 1000:.1f})"
        )
        print(f"ratio              {ratio:.2f}x (target <= 2x)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--ws-runs", type=int, default=5)
    parser.add_argument("--mirror", type=Path, default=MIRROR)
    args = parser.parse_args()
    bench_overhead(args.runs)
    bench_unprivileged(args.mirror, args.runs)
    bench_workspace(args.mirror, args.ws_runs)


if __name__ == "__main__":
    main()
