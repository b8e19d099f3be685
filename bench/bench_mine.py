"""How much slower is `mine()` than git producing the same patches?

    .venv/bin/python bench/bench_mine.py --repo PATH [--rev HEAD] [--keep-store DIR]
    .venv/bin/python bench/bench_mine.py --synthetic 2000

Times `git log -p --no-color -M` to /dev/null (the floor: git computing the diffs), then
`iter_commits` alone (parse, no store), then a full `mine()` into a fresh temp LanceDB
store, and prints commits, seconds, commits/s and the ratio to the floor (target <= 2.0).
Importing lancedb is a fixed per-process cost every store command pays; it is timed on
its own first so the mine() figure is mining throughput.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from evoagent.memory.gitlog import iter_commits
from evoagent.memory.mine import mine
from evoagent.memory.store import MemoryStore


def synthetic_repo(root: Path, commits: int) -> Path:
    """A repo of `commits` commits touching a few Python files each, built by fast-import."""
    repo = root / "synthetic"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    files = {
        f"pkg/mod{i}.py": [f"def f{i}_{j}(x):\n    return x + {j}\n" for j in range(40)]
        for i in range(30)
    }
    stream = []
    for n in range(commits):
        touched = [f"pkg/mod{(n * 7 + k) % 30}.py" for k in range(3)]
        commands = []
        for path in touched:
            body = files[path]
            body[(n * 13) % len(body)] = f"def g{n}(x):\n    return x * {n}  # fixes #{n}\n"
            data = "".join(body).encode()
            commands.append(f"M 100644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")
        message = f"Change {n}: tweak {', '.join(touched)}\n\nFixes #{n}.\n".encode()
        stamp = 1_700_000_000 + n * 60
        stream.append(
            b"commit refs/heads/main\n"
            + f"committer Bench <bench@example.com> {stamp} +0000\n".encode()
            + f"data {len(message)}\n".encode()
            + message
            + b"".join(commands)
        )
    subprocess.run(["git", "fast-import", "--quiet"], cwd=repo, input=b"".join(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=repo, check=True)
    return repo


def timed(label: str, commits: int, seconds: float, floor: float | None) -> None:
    ratio = f"  ratio {seconds / floor:5.2f}" if floor else ""
    rate = commits / seconds if seconds else 0.0
    print(f"{label:<28} {commits:7d} commits {seconds:8.2f} s {rate:9.0f} commits/s{ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path)
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--synthetic", type=int, default=0, help="build a repo of N commits")
    parser.add_argument("--keep-store", type=Path, help="mine into this dir instead of a temp one")
    args = parser.parse_args()

    start = time.perf_counter()
    import lancedb  # noqa: F401  (timed separately: a fixed cost, not mining)

    print(f"import lancedb: {time.perf_counter() - start:.2f} s (fixed, excluded below)")
    with tempfile.TemporaryDirectory(prefix="bench-mine-") as tmp:
        repo = args.repo or synthetic_repo(Path(tmp), args.synthetic or 2000)
        commits = int(
            subprocess.run(
                ["git", "rev-list", "--count", args.rev], cwd=repo, capture_output=True, check=True
            ).stdout
        )
        print(f"repo {repo} @ {args.rev}")

        start = time.perf_counter()
        subprocess.run(
            ["git", "log", "-p", "--no-color", "-M", args.rev],
            cwd=repo,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        floor = time.perf_counter() - start
        timed("git log -p > /dev/null", commits, floor, None)

        start = time.perf_counter()
        parsed = sum(1 for _ in iter_commits(repo, [args.rev]))
        timed("iter_commits (parse only)", parsed, time.perf_counter() - start, floor)

        store_dir = args.keep_store or Path(tmp) / "store"
        start = time.perf_counter()
        result = mine(repo, MemoryStore(store_dir))
        timed("mine() into LanceDB", result.stored, time.perf_counter() - start, floor)


if __name__ == "__main__":
    main()
