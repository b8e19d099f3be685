"""How long from starting the app to its first model request, when the person types a
request at the first frame? Before and after, in the same run.

    .venv/bin/python bench/bench_app_start.py [--runs 3] [--base-ref HEAD]

The repository, the local OpenAI chat-completions server and the before/after sides are
bench_start.py's (read its docstring): a small mined repository, `--model openai/x` against
127.0.0.1, `before` = `--base-ref` through a PYTHONPATH shim, `after` = the working tree. Each
run is a fresh process that imports the app, runs it headless (Textual's test driver, the
same app and workers as in a terminal), types the request as soon as the first frame is up
and presses Enter, as an impatient person would; the server notes when the request arrives.
CLOCK_MONOTONIC is system-wide on Linux, so the child's start and the server's arrival
compare directly. Prints the median, min and max of start → first frame and start → first
model request per side. Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_start  # noqa: E402  (the shared repository, server and sides)

CHILD = r"""
import time
start = time.monotonic()
import asyncio, json, sys
from pathlib import Path
from evoagent.tui.app import EvoApp

async def main():
    app = EvoApp(root=Path(sys.argv[1]), model="openai/x", mode="full_auto",
                 mine_on_start=False)
    async with app.run_test(size=(100, 32)) as pilot:
        frame = time.monotonic()
        app.main.prompt.value = sys.argv[2]
        await pilot.press("enter")
        deadline = time.monotonic() + float(sys.argv[3])
        while time.monotonic() < deadline:
            await pilot.pause(0.05)
            if app.status.busy is False and time.monotonic() - frame > 1.0:
                break
    print(json.dumps({"start": start, "frame": frame}))

asyncio.run(main())
"""


def timed_app(side: bench_start.Side, server: bench_start.FakeOpenAI, timeout: float
              ) -> tuple[float, float | None]:
    """(start → first frame, start → first model request or None) of one app process."""
    seen = len(server.arrivals)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(side.repo), bench_start.ISSUE,
                           str(timeout)], cwd=side.repo, env=side.env, capture_output=True,
                          text=True, timeout=timeout + 60)
    if proc.returncode != 0:
        raise SystemExit(f"{side.label}: the app failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    marks = json.loads(proc.stdout.strip().splitlines()[-1])
    arrivals = server.arrivals[seen:]
    first = arrivals[0] - marks["start"] if arrivals else None
    return marks["frame"] - marks["start"], first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base-ref", default="HEAD")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    server = bench_start.FakeOpenAI()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="bench-app-start-") as tmp:
        where = Path(tmp)
        checkout, made = bench_start.base_checkout(args.base_ref)
        try:
            sides = []
            for label, shim_of in (("before", checkout), ("after", None)):
                repo = bench_start.build_repo(where / label)
                env = bench_start.clean_env(where / f"home-{label}")
                env.update({"OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": server.base_url})
                if shim_of is not None:
                    env["PYTHONPATH"] = str(bench_start.shim(shim_of, where / "shim"))
                    bench_start.check_imports(env, shim_of)
                side = bench_start.Side(label, env, repo)
                side.evoagent("mine", check=True)
                timed_app(side, server, args.timeout)  # untimed: genome, code index, caches
                bench_start.turn_refinement_off(repo)  # one verdict per run
                sides.append(side)
            results: dict[str, list[tuple[float, float | None]]] = {s.label: [] for s in sides}
            for _ in range(args.runs):
                for side in sides:
                    results[side.label].append(timed_app(side, server, args.timeout))
        finally:
            if made:
                subprocess.run(["git", "-C", str(bench_start.MAIN), "worktree", "remove",
                                "--force", str(checkout)], capture_output=True)
    print(f"app: start → first frame and → first model request ({args.runs} runs each; "
          f"request typed at the first frame)")
    for label, values in results.items():
        frames = [f for f, _ in values]
        firsts = [r for _, r in values if r is not None]
        line = f"  {label:7} first frame median {statistics.median(frames):5.2f} s"
        if firsts:
            line += (f"   first request median {statistics.median(firsts):5.2f} s  "
                     f"(min {min(firsts):.2f}, max {max(firsts):.2f})")
        missing = len(values) - len(firsts)
        print(line + (f"   {missing} run(s) made no request" if missing else ""))


if __name__ == "__main__":
    main()
