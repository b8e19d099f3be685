"""How long from `evoagent fix` starting to its first model request, before and after?

    .venv/bin/python bench/bench_start.py [--runs 3] [--base-ref HEAD] [--key-timeout 30]

A small repository (three files, a failing test, a few commits) is built in a temporary
directory and mined (`evoagent mine`), then `evoagent fix --model openai/x` runs in it
against a tiny OpenAI chat-completions server on 127.0.0.1 (`OPENAI_BASE_URL`, which litellm
honours; there is no api-base setting yet). The server notes when the first request arrives
and answers every request with a `finish` tool call (streamed when asked to stream). Each
side gets its own copy of the repository, mined by its own code, and one untimed warm-up run
(the genome, the code index) before `--runs` timed runs, alternating sides; the genome's
refinement is turned off, so a run ends after the first verdict.

- `before`: `--base-ref` (default HEAD: the last commit, without the working tree's
  changes), checked out as a throwaway worktree in /tmp/bench-start-base and imported through
  a PYTHONPATH shim (evoagent/<package> links to the worktree; the venv's editable finder
  comes after the path finder, so the shim wins: checked before timing);
- `after`: the working tree, through the venv's editable install;
- `no-warm` (with `--without-warmup`): the working tree with `start_warmup` a no-op, to
  see what the background imports alone change.

Prints per side the median, min and max seconds from process start to the first model
request, the whole run, and the exit codes; then the time `evoagent fix --model
openai/gpt-5.4` takes to fail when OPENAI_API_KEY is missing (target <= 2 s). The old code
finds out only at the model call, which litellm reports as a retryable error, so that side
is cut at `--key-timeout` seconds. Figures only; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

MAIN = Path(__file__).resolve().parent.parent
BASE_WORKTREE = Path("/tmp/bench-start-base")
PACKAGES = {"agent": "agent", "memory": "memory", "sandbox": "sandbox", "tui": "tui",
            "agent_template": ".agent-template"}
"""evoagent.<name> → folder in a checkout (the editable install's mapping)."""
LAUNCH = "import sys; from evoagent.agent.cli import main; sys.argv[0] = 'evoagent'; main()"
NO_WARMUP = "import evoagent.agent.warmup as w; w.start_warmup = lambda: None; " + LAUNCH
"""The working tree with the background imports turned off (`--without-warmup`)."""
ISSUE = "add() subtracts instead of adding: add(2, 3) returns -1"
TARGET_KEY_ERROR_S = 2.0

FILES = {
    "calc.py": "from util import clamp\n\n\ndef add(a, b):\n    return clamp(a - b)\n",
    "util.py": "def clamp(x, low=-1000, high=1000):\n    return max(low, min(high, x))\n",
    "tests/test_calc.py": ("from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5"
                           "\n\n\ndef test_add_zero():\n    assert add(0, 0) == 0\n"),
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\n',
}


class FakeOpenAI(ThreadingHTTPServer):
    """Chat completions on 127.0.0.1: every request is answered with a `finish` call and its
    arrival time (time.monotonic) recorded in `arrivals`."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.arrivals: list[float] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v1"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        arrived = time.monotonic()
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.arrivals.append(arrived)
        call = {"id": f"call_{len(self.server.arrivals)}", "type": "function",
                "function": {"name": "finish", "arguments": json.dumps({"summary": "bench"})}}
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        common = {"id": "chatcmpl-bench", "created": int(time.time()), "model": "x"}
        if body.get("stream"):
            chunks = [
                {**common, "object": "chat.completion.chunk", "choices": [{
                    "index": 0, "finish_reason": None,
                    "delta": {"role": "assistant", "content": None,
                              "tool_calls": [{"index": 0, **call}]}}]},
                {**common, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
                {**common, "object": "chat.completion.chunk", "choices": [], "usage": usage},
            ]
            payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            self._send(payload.encode(), "text/event-stream")
        else:
            reply = {**common, "object": "chat.completion", "usage": usage, "choices": [{
                "index": 0, "finish_reason": "tool_calls",
                "message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}
            self._send(json.dumps(reply).encode(), "application/json")

    def _send(self, data: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Side:
    """One version of evoagent: how to launch it, and its own copy of the repository."""

    def __init__(self, label: str, env: dict[str, str], repo: Path, launch: str = LAUNCH):
        self.label = label
        self.env = env
        self.repo = repo
        self.launch = launch
        self.first: list[float] = []
        self.whole: list[float] = []
        self.codes: list[int] = []

    def evoagent(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300,
                 check: bool = False) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-c", self.launch, *args], cwd=self.repo,
                              env=env or self.env, capture_output=True, text=True,
                              timeout=timeout)
        if check and proc.returncode != 0:
            raise SystemExit(f"{self.label}: evoagent {' '.join(args)} failed "
                             f"({proc.returncode}):\n{proc.stderr[-2000:]}")
        return proc


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


def build_repo(where: Path) -> Path:
    repo = where / "calc"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    history = [("Add clamp", ["util.py"]), ("Add add()", ["calc.py", "pyproject.toml"]),
               ("Test add()", ["tests/test_calc.py"])]
    for message, names in history:
        for name in names:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_text(FILES[name])
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", message)
    return repo


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("EVOAGENT_") or k.endswith("_API_KEY") or k == "PYTHONPATH"
                   or k.startswith(("OPENAI_", "LITELLM_")))}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "bench",
                "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
                "GIT_COMMITTER_EMAIL": "bench@example.com",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    return env


def base_checkout(ref: str) -> tuple[Path, bool]:
    """The base code: an existing /tmp/bench-start-base, or a worktree made for this run
    (True: remove it afterwards)."""
    if BASE_WORKTREE.exists():
        print(f"using the existing {BASE_WORKTREE} (at {git(BASE_WORKTREE, 'rev-parse', 'HEAD')[:10]})")
        return BASE_WORKTREE, False
    git(MAIN, "worktree", "add", "-q", "--detach", str(BASE_WORKTREE), ref)
    print(f"before = {ref} ({git(BASE_WORKTREE, 'rev-parse', 'HEAD')[:10]}), after = the "
          f"working tree of {MAIN}")
    return BASE_WORKTREE, True


def shim(checkout: Path, where: Path) -> Path:
    """A folder whose evoagent/<package> links into `checkout`, for PYTHONPATH."""
    root = where / "shim"
    (root / "evoagent").mkdir(parents=True)
    for name, folder in PACKAGES.items():
        if (checkout / folder).exists():
            (root / "evoagent" / name).symlink_to(checkout / folder)
    return root


def check_imports(env: dict[str, str], expected: Path) -> None:
    code = "import evoagent.agent.cli as c, evoagent.memory as m; print(c.__file__, m.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    for path in out:
        if not Path(path).resolve().is_relative_to(expected.resolve()):
            raise SystemExit(f"evoagent imported from {path}, not from {expected}")


def turn_refinement_off(repo: Path) -> None:
    """One verdict per run: refine_attempts = 0 in the repo's live genome, committed there."""
    toml = repo / ".evoagent" / "agent" / "agent.toml"
    lines = [("refine_attempts = 0" if line.startswith("refine_attempts =") else line)
             for line in toml.read_text().splitlines()]
    toml.write_text("\n".join(lines) + "\n")
    git(toml.parent, "-c", "user.name=bench", "-c", "user.email=b@b", "commit", "-qam",
        "bench: no refinement")


def timed_fix(side: Side, server: FakeOpenAI, timeout: float) -> None:
    server.arrivals.clear()
    start = time.monotonic()
    proc = side.evoagent("fix", "--model", "openai/x", ISSUE, timeout=timeout)
    side.whole.append(time.monotonic() - start)
    side.codes.append(proc.returncode)
    if not server.arrivals:
        raise SystemExit(f"{side.label}: no model request (exit {proc.returncode}):\n"
                         f"{proc.stderr[-2000:]}")
    side.first.append(server.arrivals[0] - start)


def key_error(side: Side, timeout: float) -> str:
    env = {k: v for k, v in side.env.items() if not k.startswith("OPENAI_")}
    start = time.monotonic()
    try:
        proc = side.evoagent("fix", "--model", "openai/gpt-5.4", ISSUE, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s (no answer yet: still retrying)"
    seconds = time.monotonic() - start
    last = (proc.stderr.strip().splitlines() or [""])[-1][:110]
    mark = "ok" if seconds <= TARGET_KEY_ERROR_S and proc.returncode == 3 else "OVER TARGET"
    return f"{seconds:5.2f} s, exit {proc.returncode} [{mark}]  {last}"


def stats(values: list[float]) -> str:
    return (f"median {statistics.median(values):6.2f} s   min {min(values):6.2f} s   "
            f"max {max(values):6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base-ref", default="HEAD")
    parser.add_argument("--key-timeout", type=float, default=30.0)
    parser.add_argument("--run-timeout", type=float, default=300.0)
    parser.add_argument("--without-warmup", action="store_true",
                        help="also time the working tree with the background imports off")
    args = parser.parse_args()

    where = Path(tempfile.mkdtemp(prefix="bench-start-"))
    server = FakeOpenAI()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    checkout, made = base_checkout(args.base_ref)
    try:
        env = clean_env(where / "home")
        env.update({"OPENAI_API_KEY": "bench-key", "OPENAI_BASE_URL": server.base_url})
        repo = build_repo(where / "src")
        before_env = {**env, "PYTHONPATH": str(shim(checkout, where))}
        check_imports(before_env, checkout)
        check_imports(env, MAIN)
        sides = []
        plan = [("before", before_env, LAUNCH), ("after", env, LAUNCH)]
        if args.without_warmup:
            plan.append(("no-warm", env, NO_WARMUP))
        for label, side_env, launch in plan:
            copy = where / label / "calc"
            shutil.copytree(repo, copy, symlinks=True)
            side = Side(label, side_env, copy, launch)
            side.evoagent("mine", check=True)
            timed_fix(side, server, args.run_timeout)  # warm-up: genome, code index
            turn_refinement_off(copy)
            for figures in (side.first, side.whole, side.codes):
                figures.clear()
            sides.append(side)
        for _ in range(args.runs):
            for side in sides:
                timed_fix(side, server, args.run_timeout)

        print(f"\nprocess start -> first model request (`fix`, warm index, {args.runs} runs)")
        for side in sides:
            print(f"  {side.label:<7} {stats(side.first)}   whole run "
                  f"{statistics.median(side.whole):5.2f} s   exit codes {side.codes}")
        ratio = statistics.median(sides[1].first) / statistics.median(sides[0].first)
        print(f"  after / before: {ratio:.2f}")
        print(f"\n`fix` with OPENAI_API_KEY missing -> error (target <= {TARGET_KEY_ERROR_S} s)")
        for side in reversed(sides[:2]):  # after first: the old code may take --key-timeout
            print(f"  {side.label:<7} {key_error(side, args.key_timeout)}")
    finally:
        server.shutdown()
        server.server_close()
        if made:
            git(MAIN, "worktree", "remove", "--force", str(checkout))
        shutil.rmtree(where, ignore_errors=True)


if __name__ == "__main__":
    main()
