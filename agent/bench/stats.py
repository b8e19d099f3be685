"""The statistics a benchmark needs to tell a real change from noise: a confidence interval
for a resolved rate, and an exact paired test for two runs on the same tasks."""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sensible at 0, n and small n, unlike the
    normal approximation)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def exact_mcnemar(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar (sign) test on the discordant pairs: the probability, if both
    were equally good, of a split at least this uneven. 1.0 when there is no discordant pair."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass
class Paired:
    both: list[str]
    only_a: list[str]
    only_b: list[str]
    neither: list[str]

    @property
    def shared(self) -> int:
        return len(self.both) + len(self.only_a) + len(self.only_b) + len(self.neither)

    @property
    def p_value(self) -> float:
        return exact_mcnemar(len(self.only_a), len(self.only_b))

    def verdict(self, alpha: float = 0.05) -> str:
        if self.p_value < alpha:
            better = "A" if len(self.only_a) > len(self.only_b) else "B"
            return f"{better} is better (p = {self.p_value:.3g})"
        return f"no significant difference (p = {self.p_value:.3g})"


def pair(a: dict[str, bool], b: dict[str, bool]) -> Paired:
    """Outcomes of two runs (task id -> resolved) on the tasks both ran."""
    shared = sorted(set(a) & set(b))
    return Paired(
        both=[t for t in shared if a[t] and b[t]],
        only_a=[t for t in shared if a[t] and not b[t]],
        only_b=[t for t in shared if b[t] and not a[t]],
        neither=[t for t in shared if not a[t] and not b[t]],
    )
