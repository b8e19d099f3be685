"""Localization quality: Acc@1/5/10 of `locate` against plain BM25, in the same run.

Two modes:

  issues  real issue reports in SWE-bench format (instance_id, repo, base_commit, patch,
          problem_statement); truth = the non-test files the gold patch changes that
          exist at base_commit. Code and history are read as of base_commit.
  replay  the repo's own history: for the last N commits that change non-test code,
          query = the commit message, truth = its non-test files, as of its parent.

Acc@k counts a query as found when *all* truth files are in the top k.

  python bench/bench_locate.py issues --data swebench.jsonl --repos-root MIRRORS [--half 0|1]
  python bench/bench_locate.py replay --repo PATH [--last 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from evoagent.memory.bm25 import BM25
from evoagent.memory.codeindex import CodeIndex, token_bag
from evoagent.memory.locate import Locator, is_test_path
from evoagent.memory.mine import mine
from evoagent.memory.revisions import AsOf
from evoagent.memory.store import MemoryStore

KS = (1, 5, 10)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, errors="replace", check=True
    ).stdout


def patch_files(patch: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"^diff --git a/(\S+) b/", patch, flags=re.M)))


class Scorer:
    def __init__(self, name: str):
        self.name = name
        self.hits = Counter()
        self.n = 0

    def add(self, ranked: list[str], truth: set[str]) -> int | None:
        self.n += 1
        for k in KS:
            if truth <= set(ranked[:k]):
                self.hits[k] += 1
        worst = [ranked.index(t) + 1 if t in ranked else None for t in truth]
        return None if None in worst else max(worst)

    def line(self) -> str:
        accs = "  ".join(f"Acc@{k} {100 * self.hits[k] / max(self.n, 1):5.1f}%" for k in KS)
        return f"{self.name:<10} {accs}  (n={self.n})"


def baseline_bm25(index) -> BM25:
    return BM25({p: s.tokens for p, s in index.files.items()})


def rank_bm25(bm25: BM25, text: str, k: int) -> list[str]:
    query = {t: 1.0 for t in token_bag(text)}
    scores = bm25.scores(query)
    return [p for p, _ in sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:k]]


def store_for(repo: Path, stores: Path) -> MemoryStore | None:
    store = MemoryStore(stores / repo.parent.name)
    started = time.monotonic()
    try:
        result = mine(repo, store)
    except Exception as exc:  # a bench keeps going without history rather than stopping
        print(f"  cannot mine {repo.parent.name}: {exc}; no history for it")
        return store if store.count() else None
    if result.stored:
        print(f"  mined {result.stored} commits of {repo.parent.name} in {time.monotonic() - started:.1f}s")
    return store


def evaluate(cases, stores: Path, cache: Path, verbose: bool, dump=None) -> None:
    """cases: iterable of (repo, case_id, base_sha, query, truth_files)."""
    ours, base = Scorer("locate"), Scorer("bm25")
    per_repo: dict[str, tuple[Scorer, Scorer]] = defaultdict(lambda: (Scorer("locate"), Scorer("bm25")))
    misses = []
    seconds = []
    by_repo = defaultdict(list)
    for case in cases:
        by_repo[case[0]].append(case)
    for repo, repo_cases in by_repo.items():
        store = store_for(repo, stores)
        code = CodeIndex(repo, cache / repo.parent.name)
        for _, case_id, base_sha, query, truth in repo_cases:
            index = code.index(base_sha)
            truth = {t for t in truth if t in index.files}
            if not truth:
                continue
            started = time.monotonic()
            locator = Locator(index, store=store, as_of=AsOf.resolve(repo, base_sha))
            _, hits, _ = locator.candidates(query)
            seconds.append(time.monotonic() - started)
            hits.sort(key=lambda h: (-h.score, h.path))
            ranked = [f.path for f in hits[:10]]
            if dump is not None:
                top = hits[:60] + [h for h in hits[60:] if h.path in truth]
                dump.write(json.dumps({"id": case_id, "repo": repo.parent.name, "truth": sorted(truth),
                    "hits": [[h.path, h.signals, h.flags] for h in top]}) + "\n")
            rank = ours.add(ranked, truth)
            per_repo[repo.parent.name][0].add(ranked, truth)
            bl = rank_bm25(baseline_bm25(index), query, 10)
            base.add(bl, truth)
            per_repo[repo.parent.name][1].add(bl, truth)
            if rank is None or rank > 5:
                misses.append((case_id, sorted(truth), ranked[:5]))
            if verbose:
                print(f"  {case_id}: rank {rank} truth {sorted(truth)}", flush=True)
    for name, (a, b) in sorted(per_repo.items()):
        print(f"{name}:\n  {a.line()}\n  {b.line()}")
    print("ALL:")
    print("  " + ours.line())
    print("  " + base.line())
    if seconds:
        seconds.sort()
        print(f"  locate seconds per query: p50 {seconds[len(seconds) // 2]:.2f}  p95 {seconds[int(len(seconds) * 0.95)]:.2f}")
    if verbose:
        for case_id, truth, top in misses[:40]:
            print(f"MISS {case_id}: truth {truth} top5 {top}")


def issue_cases(data: Path, repos_root: Path, half: int | None, limit: int | None):
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    out = []
    for row in rows:
        if half is not None and int(hashlib.sha1(row["instance_id"].encode()).hexdigest(), 16) % 2 != half:
            continue
        repo = Path(row.get("git_dir") or repos_root / row["repo"].replace("/", "+") / "repo")
        if not repo.exists():
            continue
        truth = {f for f in patch_files(row["patch"]) if not is_test_path(f)}
        out.append((repo, row["instance_id"], row["base_commit"], row["problem_statement"], truth))
    return out[:limit] if limit else out


def replay_cases(repo: Path, last: int):
    log = git(repo, "log", "--first-parent", "--no-merges", "--format=%x00%H %P%n%B", "--name-only", "-n", str(last * 5))
    out = []
    for chunk in log.split("\0")[1:]:
        head, _, rest = chunk.partition("\n")
        sha, *parents = head.split()
        if not parents:
            continue
        message, _, names = rest.rpartition("\n\n")
        files = [f for f in names.split("\n") if f.strip()]
        truth = {f for f in files if not is_test_path(f) and f.endswith((".py", ".js", ".ts", ".go", ".rs", ".java"))}
        if not truth or not message.strip():
            continue
        out.append((repo, sha[:10], parents[0], message.strip(), truth))
        if len(out) >= last:
            break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    p_issues = sub.add_parser("issues")
    p_issues.add_argument("--data", type=Path, required=True)
    p_issues.add_argument("--repos-root", type=Path, default=Path("/work/.mirror"))
    p_issues.add_argument("--half", type=int, choices=(0, 1))
    p_issues.add_argument("--limit", type=int)
    p_replay = sub.add_parser("replay")
    p_replay.add_argument("--repo", type=Path, required=True)
    p_replay.add_argument("--last", type=int, default=200)
    for p in (p_issues, p_replay):
        p.add_argument("--work", type=Path, help="where stores and caches live (kept between runs)")
        p.add_argument("-v", "--verbose", action="store_true")
        p.add_argument("--dump", type=Path, help="write every query's candidate signals (JSONL)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="evoagent-bench-"))
    stores, cache = work / "stores", work / "cache"
    if args.mode == "issues":
        cases = issue_cases(args.data, args.repos_root, args.half, args.limit)
    else:
        repo = args.repo
        if (repo / ".git").exists():
            repo = repo / ".git"
        cases = replay_cases(repo, args.last)
    print(f"{len(cases)} cases", flush=True)
    dump = args.dump.open("w") if args.dump else None
    evaluate(cases, stores, cache, args.verbose, dump)


if __name__ == "__main__":
    sys.exit(main())
