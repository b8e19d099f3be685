"""Incremental mining: how long does `mine` take after one new commit?

    .venv/bin/python bench/bench_incremental.py --repo PATH [--rounds 5]

Clones PATH (a local `git clone`, objects hardlinked) into a temp dir, mines it fully into a
temp LanceDB store, then `--rounds` times: adds one commit and times `mine()` in-process;
then once more through the installed `evoagent mine` command (which adds process start
and the lancedb import). Also times a mine with nothing new. Target: the in-process
second mine <= 1 s on a ~6k-commit store.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evoagent.memory.mine import mine
from evoagent.memory.store import MemoryStore

TARGET_SECONDS = 1.0
IDENTITY = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **IDENTITY},
    ).stdout.strip()


def add_commit(clone: Path, n: int) -> str:
    target = clone / "bench_incremental_note.py"
    target.write_text(f"def bench_note_{n}():\n    return {n}\n")
    git(clone, "add", target.name)
    git(clone, "commit", "-q", "-m", f"Bench: incremental mining round {n}")
    return git(clone, "rev-parse", "HEAD")


def timed_mine(clone: Path, store: MemoryStore) -> tuple[float, object]:
    start = time.perf_counter()
    result = mine(clone, store)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--cli-rounds", type=int, default=3)
    args = parser.parse_args()

    import lancedb  # noqa: F401  (a fixed per-process cost, excluded from in-process figures)

    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        clone = Path(tmp) / "clone"
        start = time.perf_counter()
        subprocess.run(["git", "clone", "-q", str(args.repo), str(clone)], check=True)
        print(f"clone: {time.perf_counter() - start:.1f} s -> {clone}")
        store_dir = Path(tmp) / "store"
        store = MemoryStore(store_dir)

        seconds, result = timed_mine(clone, store)
        print(f"full mine: {result.stored} commits in {seconds:.1f} s")
        seconds, result = timed_mine(clone, store)
        print(f"mine, nothing new: stored {result.stored} in {seconds * 1000:.0f} ms")

        times = []
        for n in range(args.rounds):
            sha = add_commit(clone, n)
            # A fresh store object per round, as a new `evoagent mine` process would have.
            store = MemoryStore(store_dir)
            seconds, result = timed_mine(clone, store)
            assert result.stored == 1 and store.get(sha) is not None, result
            times.append(seconds)
            print(
                f"round {n + 1}: +1 commit mined in {seconds * 1000:.0f} ms "
                f"(store {result.total} commits)"
            )
        median = statistics.median(times)

        command = [
            str(Path(sys.executable).with_name("evoagent")),
            "mine",
            "--json",
            "--store",
            str(store_dir),
        ]
        for n in range(args.rounds, args.rounds + args.cli_rounds):
            add_commit(clone, n)
            start = time.perf_counter()
            proc = subprocess.run(command, cwd=clone, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - start
            report = json.loads(proc.stdout)
            print(
                f"`evoagent mine` after +1 commit: wall {wall:.2f} s, "
                f"mine {report['seconds']:.2f} s, stored {report['stored']}"
            )

        verdict = "ok" if median <= TARGET_SECONDS else "OVER TARGET"
        print(
            f"incremental mine median {median * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
            f"over {len(times)} rounds; "
            f"target <= {TARGET_SECONDS * 1000:.0f} ms: {verdict}"
        )


if __name__ == "__main__":
    main()
