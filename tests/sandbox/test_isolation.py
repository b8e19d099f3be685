"""Containment under real bubblewrap: each test fails if its guarantee breaks."""

import contextlib
import os
import resource
import shlex
import shutil
import socket
import sys
import threading
import uuid
from dataclasses import replace

import pytest
from evoagent.sandbox import limits as limits_module
from evoagent.sandbox.bwrap import BwrapRunner
from evoagent.sandbox.limits import Limits
from evoagent.sandbox.workspace import Workspace

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"
)
PY = sys.executable


@pytest.fixture
def ws(git_repo):
    git_repo.commit("init", {"app.py": "print('app')\n"})
    git_repo.write(".env", "SECRET=hunter2\n")
    git_repo.write(".gitignore", ".env\n")
    return Workspace.create(git_repo.path, git_repo.path / ".evoagent" / "sandboxes")


def runner_for(ws, **limits):
    return BwrapRunner(ws.sandbox_config(limits=Limits(**{"timeout": 20, **limits})))


def test_commands_run_isolated_in_the_workspace(ws):
    result = runner_for(ws).run("pwd; cat app.py", ws.path)
    assert result.isolated and result.exit_code == 0
    # The workspace is shown where the repository stands (editable installs find it there).
    assert result.output == f"{ws.repo}\nprint('app')\n"


def test_writes_outside_the_workspace_fail_or_vanish(ws, git_repo, tmp_path):
    outside = tmp_path / "outside.txt"
    result = runner_for(ws).run(
        f"echo x > /usr/evil.txt; echo $?; echo x > {outside}; echo $?;"
        f" echo inside > {git_repo.path}/ok.txt",
        ws.path,
    )
    assert "Read-only file system" in result.output
    assert "0" not in result.output.split()
    assert not os.path.exists("/usr/evil.txt")
    assert not outside.exists()  # /tmp inside is private
    # The repository's path is the workspace inside: the write lands there, never in the
    # user's checkout.
    assert (ws.path / "ok.txt").read_text() == "inside\n"
    assert not (git_repo.path / "ok.txt").exists()


def test_home_credentials_are_invisible(ws):
    ssh = os.path.join(os.environ["HOME"], ".ssh")
    os.makedirs(ssh)
    with open(os.path.join(ssh, "id_rsa"), "w") as handle:
        handle.write("-----BEGIN FAKE PRIVATE KEY-----\n")
    result = runner_for(ws).run(f"cat ~/.ssh/id_rsa; cat {ssh}/id_rsa; echo HOME=$HOME", ws.path)
    assert "FAKE PRIVATE KEY" not in result.output
    assert "No such file or directory" in result.output
    assert f"HOME={os.environ['HOME']}" in result.output


def test_the_users_repository_and_its_ignored_secrets_are_hidden(ws, git_repo):
    result = runner_for(ws).run(f"cat {git_repo.path}/.env; cat .env", ws.path)
    assert "hunter2" not in result.output


def test_secret_environment_variables_are_absent(ws, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-parent-secret")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIA-parent")
    result = runner_for(ws).run("env", ws.path, env={"MY_API_TOKEN": "t0k", "MODE": "fast"})
    assert "parent-secret" not in result.output and "AKIA" not in result.output
    assert "t0k" not in result.output
    assert "MODE=fast" in result.output


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    threading.Thread(target=lambda: server.accept()[0].close(), daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_network_is_cut_unless_allowed(ws, listener):
    probe = [PY, "-c", f"import socket; socket.create_connection(('127.0.0.1', {listener}), 3)"]
    blocked = runner_for(ws).run(probe, ws.path)
    assert blocked.exit_code != 0
    assert "ConnectionRefusedError" in blocked.output or "unreachable" in blocked.output
    config = replace(ws.sandbox_config(), allow_network=True)
    assert BwrapRunner(config).run(probe, ws.path).exit_code == 0


def test_endless_loop_is_killed_at_the_timeout(ws):
    result = runner_for(ws, timeout=1).run("while :; do :; done", ws.path)
    assert result.timed_out and result.exit_code != 0
    assert 1 <= result.seconds < 3
    assert "time limit" in result.output


def processes_named(marker: str) -> list[int]:
    """Live processes whose argv[0] carries `marker`: only those this test started."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{name}/cmdline", "rb") as handle:
                if marker.encode() in handle.read().split(b"\0")[0]:
                    found.append(int(name))
    return found


def test_background_children_die_with_the_sandbox(ws):
    marker = f"evoagent-test-{uuid.uuid4().hex}"
    result = runner_for(ws, timeout=1).run(
        f"(exec -a {marker}-a sleep 300) & setsid bash -c 'exec -a {marker}-b sleep 301' &"
        f" sleep 0.2; cat /proc/[0-9]*/cmdline | tr '\\0' '\\n' | grep -c '^{marker}';"
        f" exec -a {marker}-c sleep 302",
        ws.path,
    )
    assert result.timed_out
    assert result.output.startswith("2\n")  # both children were running inside
    assert processes_named(marker) == []


FORK_BOMB = "bomb() { bomb | bomb & }; bomb; sleep 30"


def test_fork_bomb_is_contained_and_returns_within_the_timeout(ws):
    # Every forked shell keeps the marked argv[0]: the test watches only what it started.
    marker = f"evoagent-bomb-{uuid.uuid4().hex}"
    bomb = f"exec -a {marker} bash -c {shlex.quote(FORK_BOMB)}"
    result = runner_for(ws, timeout=3, max_processes=64).run(bomb, ws.path)
    assert result.seconds < 6
    assert result.timed_out or result.exit_code != 0
    assert processes_named(marker) == []  # nothing left behind


def test_process_watchdog_kills_past_the_limit_without_a_cgroup(ws, monkeypatch):
    if os.getuid() != 0:
        pytest.skip("the watchdog is the root fallback; non-root relies on RLIMIT_NPROC")
    monkeypatch.setattr(limits_module.PidsCgroup, "create", classmethod(lambda cls, n: None))
    # A steady spawner rather than a bomb: the watchdog polls, so a real bomb would overshoot
    # the limit by thousands of processes before the kill (README.md, "Process limits").
    spawner = "for i in $(seq 200); do sleep 30 & done; wait"
    result = runner_for(ws, timeout=10, max_processes=20).run(spawner, ws.path)
    assert not result.timed_out and result.seconds < 5
    assert "killed past 20 processes" in result.output


def test_huge_output_is_capped_in_bounded_memory(ws):
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = runner_for(ws, output_bytes=100_000).run("yes | head -c 1000000000", ws.path)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert result.exit_code == 0 and result.truncated
    assert len(result.output) < 110_000
    assert result.output.startswith("y\ny\n") and result.output.endswith("y\n")
    assert "999900000 bytes of output omitted" in result.output
    assert grown_kib < 64 * 1024


def test_memory_limit_stops_a_large_allocation(ws):
    hog = [PY, "-c", "b = bytearray(1_500_000_000); print('allocated')"]
    result = runner_for(ws, memory_bytes=512 << 20).run(hog, ws.path)
    assert result.exit_code != 0 and "MemoryError" in result.output


def test_git_reads_history_inside_the_sandbox_but_writes_nothing_to_it(ws, git_repo):
    before = git_repo.git("count-objects", "-v"), git_repo.git("log", "--all", "--oneline")
    config_before, head_before = (ws.git_dir / "config").read_bytes(), ws.head()
    result = runner_for(ws).run(
        "echo change >> app.py && git log --format=%s | tail -1 && git status --porcelain"
        " && git diff --stat | tail -1; git commit -qam inside 2>/dev/null; echo commit=$?;"
        " git config core.fsmonitor 'touch /tmp/pwned' 2>/dev/null; echo config=$?",
        ws.path,
    )
    assert result.output.startswith("init\n M app.py\n 1 file changed, 1 insertion(+)\n")
    assert "commit=0" not in result.output and "config=0" not in result.output
    assert (ws.git_dir / "config").read_bytes() == config_before and ws.head() == head_before
    assert "+change" in ws.diff_since_base()
    assert (
        git_repo.git("count-objects", "-v"),
        git_repo.git("log", "--all", "--oneline"),
    ) == before
