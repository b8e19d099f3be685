"""Code index speed: cold index of HEAD, warm re-index, and an older revision.

    python bench/bench_codeindex.py [--repo PATH] [--back 50]

PATH may be a checkout or a bare git dir; by default the first mirror under /work/.mirror,
else this repository. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from evoagent.memory import gittree
from evoagent.memory.codeindex import CodeIndex
from evoagent.memory.repomap import pagerank, render_map


def default_repo() -> Path:
    mirrors = sorted(Path("/work/.mirror").glob("*/repo"))
    return mirrors[0] if mirrors else Path(__file__).resolve().parent.parent


def report(label: str, index) -> None:
    stats = index.stats
    rate = stats.files / stats.seconds if stats.seconds else 0.0
    print(
        f"{label:<22} files={stats.files:>6} parsed={stats.parsed:>6} cached={stats.cached:>6}"
        f" seconds={stats.seconds:7.3f} files/s={rate:9.0f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=None)
    parser.add_argument("--back", type=int, default=50, help="also index HEAD~BACK")
    parser.add_argument("--budget", type=int, default=1024, help="repo map token budget")
    args = parser.parse_args()
    repo = args.repo or default_repo()
    print(f"repo: {repo}")
    with tempfile.TemporaryDirectory() as cache:
        code_index = CodeIndex(repo, cache)
        report("cold HEAD", code_index.index("HEAD"))
        warm = code_index.index("HEAD")
        report("warm HEAD", warm)
        fresh = CodeIndex(repo, cache).index("HEAD")
        report("warm HEAD (new proc)", fresh)
        try:
            gittree.resolve(repo, f"HEAD~{args.back}")
        except gittree.GitError:
            print(f"HEAD~{args.back}: no such revision, skipped")
        else:
            report(f"HEAD~{args.back}", code_index.index(f"HEAD~{args.back}"))
        cache_mb = (Path(cache) / "codeindex.sqlite").stat().st_size / 1e6
        print(f"cache size: {cache_mb:.1f} MB")
        started = time.perf_counter()
        pagerank(warm)
        print(f"pagerank: {time.perf_counter() - started:.3f} s")
        started = time.perf_counter()
        text = render_map(warm, budget_tokens=args.budget)
        print(
            f"render_map({args.budget}): {time.perf_counter() - started:.3f} s, {len(text)} chars"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
