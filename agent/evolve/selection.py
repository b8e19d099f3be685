"""Which variants become parents: score-weighted, with a bonus for few children (as in the
Darwin Gödel Machine), so good variants are refined and unexplored ones still get a turn.

weight(v) = sigmoid(sharpness · (score(v) − midpoint)) / (1 + children(v))

`midpoint` is the median score of the candidates; only admitted (or promoted) variants and
`main` are candidates. Draws are without replacement within a generation while candidates
last, so P parallel proposals fork from different parents where they can.
"""

from __future__ import annotations

import math
import random

from .archive import ADMITTED, PROMOTED, Archive, Variant

SHARPNESS = 10.0


def weights(candidates: list[Variant], archive: Archive) -> list[float]:
    scores = [v.score if v.score is not None else 0.0 for v in candidates]
    ordered = sorted(scores)
    midpoint = ordered[len(ordered) // 2] if ordered else 0.0
    return [
        (1 / (1 + math.exp(-SHARPNESS * (score - midpoint)))) / (1 + len(archive.children(v.id)))
        for v, score in zip(candidates, scores, strict=True)
    ]


def choose_parents(variants: list[Variant], count: int, rng: random.Random,
                   archive: Archive) -> list[Variant]:
    candidates = [v for v in variants if v.id == "main" or v.status in (ADMITTED, PROMOTED)]
    if not candidates:
        return []
    chosen: list[Variant] = []
    pool = list(candidates)
    for _ in range(max(1, count)):
        if not pool:
            pool = list(candidates)
        pick = rng.choices(pool, weights=weights(pool, archive), k=1)[0]
        chosen.append(pick)
        pool.remove(pick)
    return chosen
