"""How long does `evoagent --help` take, next to a bare Python start?

    .venv/bin/python bench/bench_cli.py [--runs 10]

Runs each command `--runs` times in a fresh subprocess (after one untimed warm-up run) and
prints the median, min and max wall time. Target: `evoagent --help` median <= 0.3 s. The
last line says which heavy modules (litellm, lancedb, tree_sitter) `--help` imported:
it must be none.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.3
HEAVY = ("litellm", "lancedb", "tree_sitter")
PROBE = (
    "import json, sys\n"
    "from evoagent.agent.cli import main\n"
    "sys.argv = ['evoagent', '--help']\n"
    "try:\n"
    "    main()\n"
    "except SystemExit:\n"
    "    pass\n"
    f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)\n"
)


def wall_times(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=True)  # warm the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def report(label: str, times: list[float]) -> float:
    median = statistics.median(times)
    print(
        f"{label:<38} median {median * 1000:7.1f} ms   min {min(times) * 1000:7.1f} ms"
        f"   max {max(times) * 1000:7.1f} ms"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    script = Path(sys.executable).with_name("evoagent")
    python = sys.executable
    baseline = report("python -c pass", wall_times([python, "-c", "pass"], args.runs))
    report(
        "python -c 'import evoagent.agent.cli'",
        wall_times([python, "-c", "import evoagent.agent.cli"], args.runs),
    )
    help_median = report("evoagent --help", wall_times([str(script), "--help"], args.runs))
    for sub in ("mine", "recall", "locate"):
        report(f"evoagent {sub} --help", wall_times([str(script), sub, "--help"], args.runs))

    over = help_median - baseline
    verdict = "ok" if help_median <= TARGET_SECONDS else "OVER TARGET"
    print(
        f"evoagent --help: {help_median * 1000:.1f} ms ({over * 1000:+.1f} ms over bare python); "
        f"target <= {TARGET_SECONDS * 1000:.0f} ms: {verdict}"
    )
    probe = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=True)
    heavy = json.loads(probe.stderr.strip().splitlines()[-1])
    print(f"heavy modules imported by --help: {', '.join(heavy) if heavy else 'none'}")


if __name__ == "__main__":
    main()
