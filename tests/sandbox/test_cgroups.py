"""The throwaway pids cgroups: every one a command creates is gone when it returns.

Only cgroups these tests created are looked at (other runs share the machine).
"""

import os
import shutil
import subprocess
import time
import uuid

import pytest
from evoagent.sandbox import limits as limits_module
from evoagent.sandbox.bwrap import BwrapRunner
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.limits import Limits, PidsCgroup

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"
)


@pytest.fixture
def cgroup_parent():
    probe = PidsCgroup.create(8)
    if probe is None:
        pytest.skip("no writable pids cgroup here (the process watchdog is used instead)")
    probe.close()
    return probe.path.parent


@pytest.fixture
def created(monkeypatch, cgroup_parent):
    """The path of every pids cgroup created while the test runs."""
    paths = []
    original = PidsCgroup.create.__func__

    def recording(cls, max_processes):
        cgroup = original(cls, max_processes)
        if cgroup is not None:
            paths.append(cgroup.path)
        return cgroup

    monkeypatch.setattr(PidsCgroup, "create", classmethod(recording))
    return paths


COMMANDS = [
    "true",
    "echo hi",
    "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; echo spawned",  # live children at exit
    "sleep 0.01 & sleep 0.02 & echo hi",  # children dying while the cgroup is removed
    "(setsid sleep 5 &); echo detached",
]


def test_no_pids_cgroup_outlives_its_command(tmp_path, created):
    runner = BwrapRunner(SandboxConfig(writable=(tmp_path,), limits=Limits(timeout=10)))
    for _ in range(6):
        for command in COMMANDS:
            assert runner.run(command, tmp_path).exit_code == 0
    for command in ("sleep 300 & setsid sleep 301 & sleep 302", "while :; do :; done"):
        assert runner.run(command, tmp_path, timeout=0.5).timed_out
    assert len(created) == 6 * len(COMMANDS) + 2
    assert [path for path in created if path.exists()] == []


def test_stale_empty_cgroups_are_swept_and_busy_or_fresh_ones_kept(
    tmp_path, cgroup_parent, monkeypatch
):
    tag = uuid.uuid4().hex[:8]
    stale, busy, fresh = (cgroup_parent / f"evoagent-test{tag}{kind}" for kind in "sbf")
    holder = None
    try:
        for path in (stale, busy, fresh):
            path.mkdir()
        holder = subprocess.Popen(["sleep", "30"])
        (busy / "cgroup.procs").write_text(str(holder.pid))
        old = time.time() - 3600
        for path in (stale, busy):
            os.utime(path, (old, old))
        monkeypatch.setattr(limits_module, "_swept", set())  # as in a new evoagent process
        runner = BwrapRunner(SandboxConfig(writable=(tmp_path,), limits=Limits(timeout=10)))
        assert runner.run("true", tmp_path).exit_code == 0
        assert not stale.exists()
        assert busy.exists()  # still has a process: rmdir fails harmlessly
        assert fresh.exists()  # may belong to a run that is about to join it
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        for path in (stale, busy, fresh):
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
