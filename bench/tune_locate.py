"""Re-weigh locate's evidence offline, from `bench_locate.py --dump` files.

Coordinate search over `Weights` on the dev half of the queries (by id hash), reported
on both halves, so a weight change that only fits the queries it was tuned on shows.

  python bench/tune_locate.py DUMP.jsonl [DUMP2.jsonl ...] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path

from evoagent.memory.locate import Weights, score_file


def load(paths: list[Path]) -> list[dict]:
    out = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def half(case: dict) -> int:
    return int(hashlib.sha1(case["id"].encode()).hexdigest(), 16) % 2


def accuracy(cases: list[dict], w: Weights, k: int) -> float:
    found = 0
    for case in cases:
        ranked = sorted(case["hits"], key=lambda h: (-score_file(h[1], h[2], w), h[0]))
        top = {h[0] for h in ranked[:k]}
        found += set(case["truth"]) <= top
    return found / max(len(cases), 1)


def reciprocal_rank(cases: list[dict], w: Weights) -> float:
    """Mean 1/rank of each query's worst-ranked truth file (0 when one is not dumped):
    smoother than Acc@k, so it breaks the ties coordinate search meets on a plateau."""
    total = 0.0
    for case in cases:
        ranked = [h[0] for h in sorted(case["hits"], key=lambda h: (-score_file(h[1], h[2], w), h[0]))]
        ranks = [ranked.index(t) + 1 for t in case["truth"] if t in ranked]
        if len(ranks) == len(case["truth"]):
            total += 1.0 / max(ranks)
    return total / max(len(cases), 1)


def objective(cases: list[dict], w: Weights) -> float:
    return accuracy(cases, w, 5) + 0.5 * accuracy(cases, w, 1) + 0.25 * reciprocal_rank(cases, w)


# Priors, not evidence: the benchmark's truth leaves test files out by construction, so a
# fit would zero the test penalty; they stay as set unless asked for.
PENALTIES = ("test_penalty", "doc_penalty", "foreign_penalty")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dumps", type=Path, nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--penalties", action="store_true", help="fit the penalties too")
    args = parser.parse_args()
    cases = load(args.dumps)
    dev = [c for c in cases if half(c) == 0]
    test = [c for c in cases if half(c) == 1]
    w = Weights()

    def report(label: str, w: Weights) -> None:
        cells = []
        for name, part in (("dev", dev), ("test", test), ("all", cases)):
            cells.append(f"{name} @1 {100 * accuracy(part, w, 1):5.1f} @5 {100 * accuracy(part, w, 5):5.1f}")
        print(f"{label:<8} " + " | ".join(cells))

    report("start", w)
    factors = (0.0, 0.25, 0.5, 0.75, 0.9, 1.1, 1.33, 2.0, 4.0)
    for round_ in range(args.rounds):
        for field in dataclasses.fields(Weights):
            if field.name in PENALTIES and not args.penalties:
                continue
            start = getattr(w, field.name)
            best, best_value = objective(dev, w), start
            for f in factors:
                value = start * f if start else f
                trial = dataclasses.replace(w, **{field.name: value})
                score = objective(dev, trial)
                if score > best + 1e-9:
                    best, best_value = score, value
            w = dataclasses.replace(w, **{field.name: round(best_value, 4)})
        report(f"round {round_ + 1}", w)
    print(w)


if __name__ == "__main__":
    main()
