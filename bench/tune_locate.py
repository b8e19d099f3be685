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


def objective(cases: list[dict], w: Weights) -> float:
    return accuracy(cases, w, 5) + 0.5 * accuracy(cases, w, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dumps", type=Path, nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
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
    factors = (0.0, 0.25, 0.5, 0.75, 1.33, 2.0, 4.0)
    for round_ in range(args.rounds):
        for field in dataclasses.fields(Weights):
            best, best_value = objective(dev, w), getattr(w, field.name)
            for f in factors:
                value = best_value * f if best_value else f
                trial = dataclasses.replace(w, **{field.name: value})
                score = objective(dev, trial)
                if score > best + 1e-9:
                    best, best_value = score, value
            w = dataclasses.replace(w, **{field.name: round(best_value, 4)})
        report(f"round {round_ + 1}", w)
    print(w)


if __name__ == "__main__":
    main()
