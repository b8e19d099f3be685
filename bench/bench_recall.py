"""Recall latency on a real history: p50/p95 of `recall()` over 200 queries.

    .venv/bin/python bench/bench_recall.py --repo PATH [--store DIR] [--queries 200]
        [--embedding none|hash:64] [--k 10]

Mines the repo's history into a temp LanceDB store (or into --store DIR, which is reused
and only topped up incrementally on later runs), then times `recall()` in-process on
queries sampled deterministically: three in four are commit subjects from the store, the
rest issue-like phrases built from symbol names in the store. Then the same queries with
`as_of` set to the commit halfway down history (what replay benchmarks do). Prints
p50/p95/max in ms; target p95 <= 50 ms on a ~60k-commit store. The first query (opening
the table) is timed on its own and excluded.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from evoagent.memory.embeddings import make_embedder
from evoagent.memory.mine import mine
from evoagent.memory.revisions import AsOf
from evoagent.memory.search import recall
from evoagent.memory.store import MemoryStore

TARGET_P95_MS = 50.0
SEED = 20240601
ISSUE_TEMPLATES = [
    "{a} raises TypeError when called with None",
    "Regression: {a} returns wrong result after upgrade",
    "{a} is very slow on large inputs",
    "Crash in {a} when {b} is empty",
    "Deprecation warning from {a} should mention {b}",
    "Traceback: AttributeError in {a} ({b})",
    "Unexpected behaviour of {a} with unicode strings",
    "Document how {a} interacts with {b}",
    "{a} ignores the {b} option",
    "Support {a} on Windows paths",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def build_queries(store: MemoryStore, count: int) -> list[str]:
    rng = random.Random(SEED)
    rows = sorted(store.all_rows(["sha", "subject", "symbols"]), key=lambda r: r["sha"])
    subjects = [r["subject"] for r in rows if r["subject"]]
    names = sorted(
        {s.split("::", 1)[-1].split(".")[-1] for r in rows for s in (r["symbols"] or [])} - {""}
    )
    n_subjects = min(len(subjects), count * 3 // 4)
    queries = rng.sample(subjects, n_subjects)
    names = names or ["parser", "config"]
    while len(queries) < count:
        template = ISSUE_TEMPLATES[len(queries) % len(ISSUE_TEMPLATES)]
        queries.append(template.format(a=rng.choice(names), b=rng.choice(names)))
    rng.shuffle(queries)
    return queries


def time_queries(store: MemoryStore, queries: list[str], k: int, as_of: AsOf | None) -> list[float]:
    times = []
    for query in queries:
        start = time.perf_counter()
        recall(store, query, k=k, as_of=as_of)
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(label: str, times: list[float]) -> float:
    p95 = percentile(times, 95)
    print(
        f"{label:<26} n={len(times):4d}  p50 {percentile(times, 50):7.1f} ms  "
        f"p95 {p95:7.1f} ms  max {max(times):7.1f} ms  mean {statistics.fmean(times):7.1f} ms"
    )
    return p95


def middle_commit(repo: Path) -> str:
    shas = subprocess.run(
        ["git", "rev-list", "--first-parent", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return shas[len(shas) // 2]


def run(repo: Path, store_dir: Path, args: argparse.Namespace) -> None:
    start = time.perf_counter()
    import lancedb  # noqa: F401  (a fixed per-process cost, not recall latency)

    print(f"import lancedb: {time.perf_counter() - start:.2f} s")
    store = MemoryStore(store_dir, make_embedder(args.embedding))
    result = mine(repo, store)
    print(
        f"mine: stored {result.stored}, already known {result.skipped}, total {result.total} "
        f"in {result.seconds:.1f} s -> {store_dir}"
    )
    queries = build_queries(store, args.queries)
    start = time.perf_counter()
    recall(store, "warm up the table", k=args.k)
    print(f"first query (opens the table): {(time.perf_counter() - start) * 1000:.1f} ms")
    print(f"store: {store.count()} memories, vectors: {store.has_vectors}, k={args.k}")
    p95 = summary("recall", time_queries(store, queries, args.k, None))
    as_of = AsOf.resolve(repo, middle_commit(repo))
    start = time.perf_counter()
    _ = as_of.reachable
    print(
        f"as_of {as_of.sha[:10]}: {len(as_of.reachable)} reachable commits "
        f"(rev-list {(time.perf_counter() - start) * 1000:.0f} ms, once)"
    )
    summary("recall --as-of (middle)", time_queries(store, queries, args.k, as_of))
    verdict = "ok" if p95 <= TARGET_P95_MS else "OVER TARGET"
    print(f"recall p95 {p95:.1f} ms; target <= {TARGET_P95_MS:.0f} ms: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--store", type=Path, help="mine into / reuse this store dir")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embedding", default="none", help="none | hash[:DIM] (no weights)")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    if args.store:
        run(args.repo, args.store, args)
        return
    with tempfile.TemporaryDirectory(prefix="bench-recall-") as tmp:
        run(args.repo, Path(tmp) / "store", args)


if __name__ == "__main__":
    main()
