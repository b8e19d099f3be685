import shutil
import sys
import uuid
from pathlib import Path

import pytest
from evoagent.sandbox.bwrap import BwrapRunner
from evoagent.sandbox.junit import parse_go_json
from evoagent.sandbox.testdetect import TestCommand
from evoagent.sandbox.testrun import TestRun, run_tests
from evoagent.sandbox.workspace import Workspace

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap (bwrap) is not installed"
)
TESTS = """\
import time

import pytest


def test_passes():
    assert 1 + 1 == 2


def test_fails():
    assert 1 + 1 == 3, "arithmetic is broken"


@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")


def test_errors(broken):
    pass


class TestGroup:
    def test_hangs(self):
        time.sleep(30)
"""


@pytest.fixture
def project(git_repo):
    git_repo.commit(
        "tests", {"pyproject.toml": "[project]\nname = 'demo'\n", "tests/test_demo.py": TESTS}
    )
    ws = Workspace.create(git_repo.path, git_repo.path / ".evoagent" / "sandboxes")
    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None
    return ws, BwrapRunner(ws.sandbox_config(venv=venv))


def test_pytest_outcomes_and_digest(project):
    ws, runner = project
    command = TestCommand((sys.executable, "-m", "pytest"), "pytest", "test")
    run = run_tests(runner, ws.path, command, per_test_timeout=1, timeout=60)
    assert run.junit_found and run.exit_code == 1 and not run.ok
    assert run.passed == ["tests/test_demo.py::test_passes"]
    assert run.failed == [
        "tests/test_demo.py::test_fails",
        "tests/test_demo.py::TestGroup::test_hangs",
    ]
    assert run.errors == ["tests/test_demo.py::test_errors"]
    digest = run.digest()
    assert "FAILED tests/test_demo.py::test_fails" in digest
    assert "AssertionError: arithmetic is broken" in digest
    assert "ERROR tests/test_demo.py::test_errors" in digest and "fixture exploded" in digest
    assert "exceeded 1 s" in digest
    assert len(run.digest(max_chars=300)) <= 300
    assert ws.diff_since_base() == ""  # no junit, cache or bytecode left in the workspace


def test_subset_of_ids(project):
    ws, runner = project
    command = TestCommand((sys.executable, "-m", "pytest"), "pytest", "test")
    run = run_tests(runner, ws.path, command, test_ids=["tests/test_demo.py::test_passes"])
    assert run.ok and run.passed == ["tests/test_demo.py::test_passes"] and run.failed == []


def test_runner_without_junit_reports_exit_code_only(project):
    ws, runner = project
    run = run_tests(runner, ws.path, configured="bash -c 'echo boom; exit 3'")
    assert (run.exit_code, run.junit_found, run.failed) == (3, False, [])
    assert "boom" in run.digest()


def test_digest_is_bounded():
    problems = [f"t{i}" for i in range(50)]
    run = TestRun([], problems, [], [], 1, "", True)
    digest = run.digest(max_tests=5)
    assert "FAILED t4" in digest and "FAILED t5" not in digest and "45 more" in digest


def test_go_json_stream_is_parsed():
    stream = "\n".join(
        [
            '{"Action":"run","Package":"x/y","Test":"TestA"}',
            '{"Action":"output","Package":"x/y","Test":"TestA","Output":"    a_test.go:9: want 2\\n"}',
            '{"Action":"fail","Package":"x/y","Test":"TestA"}',
            '{"Action":"pass","Package":"x/y","Test":"TestB"}',
            '{"Action":"skip","Package":"x/y","Test":"TestC"}',
            '{"Action":"fail","Package":"x/y"}',
        ]
    )
    outcomes = {o.test_id: o for o in parse_go_json(stream)}
    assert {k: o.status for k, o in outcomes.items()} == {
        "x/y/TestA": "failed",
        "x/y/TestB": "passed",
        "x/y/TestC": "skipped",
    }
    assert outcomes["x/y/TestA"].message == "a_test.go:9: want 2"


# The repository's own conftest swaps the JUnit report (in a directory writable in the sandbox)
# for something else once pytest has written it: what the kernel reads back is up to the repo.
SWAP_REPORT = """\
import os


def pytest_unconfigure(config):
    path = config.option.xmlpath
    if path and os.path.exists(path):
        os.unlink(path)
        {swap}
"""
FORGED = """<?xml version="1.0"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_demo" name="test_{canary}" file="tests/test_demo.py">
<failure message="{canary}">{canary}</failure></testcase></testsuite></testsuites>"""


@pytest.mark.parametrize("swap", ["link", "shadow", "fifo", "directory"])
def test_a_report_swapped_for_a_link_or_special_file_is_no_report(git_repo, tmp_path, swap):
    canary = f"canary{uuid.uuid4().hex}"
    outside = tmp_path / "outside.xml"  # a host file (JUnit-shaped, to show it is never parsed)
    outside.write_text(FORGED.format(canary=canary))
    code = {"link": f"os.symlink({str(outside)!r}, path)",
            "shadow": "os.symlink('/etc/shadow', path)",
            "fifo": "os.mkfifo(path)",  # reading it would block the kernel
            "directory": "os.mkdir(path)"}[swap]
    git_repo.commit("tests", {
        "pyproject.toml": "[project]\nname = 'demo'\n",
        "tests/test_demo.py": "def test_passes():\n    assert True\n",
        "conftest.py": SWAP_REPORT.format(swap=code),
    })
    ws = Workspace.create(git_repo.path, git_repo.path / ".evoagent" / "sandboxes")
    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None
    runner = BwrapRunner(ws.sandbox_config(venv=venv))
    command = TestCommand((sys.executable, "-m", "pytest"), "pytest", "test")

    run = run_tests(runner, ws.path, command, timeout=60)

    assert run.exit_code == 0 and not run.junit_found  # exit code only, as with no report
    assert run.passed == run.failed == run.errors == [] and run.problems == {}
    assert canary not in run.digest() and "root:" not in run.digest()


def test_read_report_refuses_links_and_special_files(tmp_path):
    from evoagent.sandbox.junit import read_report

    report = tmp_path / "report"
    report.mkdir()
    secret = tmp_path / "secret.xml"
    secret.write_text("<testsuites/>")
    (report / "junit.xml").symlink_to(secret)
    (report / "dir").mkdir()
    (report / "dir" / "go.json").write_text("{}")
    (tmp_path / "linked").symlink_to(report / "dir")
    (report / "real.xml").write_text("<testsuites/>")
    assert read_report(report / "junit.xml", report) is None
    assert read_report(report / "missing.xml", report) is None
    assert read_report(report / "real.xml", report) == b"<testsuites/>"
    assert read_report(report / "dir" / "go.json", report) == b"{}"
    assert read_report(tmp_path / "linked" / "go.json", tmp_path) is None  # a link above it
