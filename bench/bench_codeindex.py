"""Code index speed: cold index of HEAD, warm re-index, and an older revision.

Also prints the cache size per payload column and the chunk figures (count, and the time
to decode every file's chunks from a warm index).

    python bench/bench_codeindex.py [--repo PATH] [--back 50]

PATH may be a checkout or a bare git dir; by default the first mirror under /work/.mirror,
else this repository. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from evoagent.memory import codeindex, gittree
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


def column_sizes(cache_path: Path) -> None:
    """Compressed bytes per payload column of the current cache table."""
    table = f"symbols_v{codeindex.INDEX_VERSION}"
    db = sqlite3.connect(cache_path)
    try:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")][2:]
        sums = db.execute(
            f"SELECT {', '.join(f'SUM(LENGTH({c}))' for c in columns)} FROM {table}"
        ).fetchone()
    finally:
        db.close()
    print(
        "  " + ", ".join(f"{c}={(n or 0) / 1e6:.1f} MB" for c, n in zip(columns, sums, strict=True))
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
        cache_path = Path(cache) / codeindex.CACHE_FILE
        cache_mb = cache_path.stat().st_size / 1e6
        print(f"cache size: {cache_mb:.1f} MB")
        column_sizes(cache_path)
        if hasattr(next(iter(fresh.files.values()), None), "chunks"):
            started = time.perf_counter()
            chunks = sum(len(symbols.chunks) for symbols in fresh.files.values())
            print(
                f"chunks: {chunks} in {len(fresh.files)} files,"
                f" decoded in {time.perf_counter() - started:.3f} s"
            )
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
