import pytest
from evoagent.sandbox import local
from evoagent.sandbox.bwrap import BwrapRunner
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.limits import Limits
from evoagent.sandbox.local import LocalRunner, SandboxUnavailable, UnisolatedWarning, make_runner


@pytest.fixture
def no_bwrap(monkeypatch):
    monkeypatch.setattr(local, "bwrap_path", lambda: None)


def test_without_bwrap_the_runner_warns_and_reports_unisolated(no_bwrap, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-parent-secret")
    with pytest.warns(UnisolatedWarning, match="UNISOLATED"):
        runner = make_runner(SandboxConfig(limits=Limits(timeout=5)))
    assert isinstance(runner, LocalRunner)
    result = runner.run("pwd; env", tmp_path)
    assert result.isolated is False and result.exit_code == 0
    assert result.output.startswith(f"{tmp_path}\n")
    assert "sk-parent-secret" not in result.output  # the environment is scrubbed anyway


def test_strict_refuses_without_bwrap(no_bwrap):
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        make_runner(strict=True)


def test_unisolated_timeout_kills_the_process_group(no_bwrap, tmp_path):
    with pytest.warns(UnisolatedWarning):
        runner = make_runner()
    result = runner.run("sleep 300 & sleep 301", tmp_path, timeout=1)
    assert result.timed_out and result.seconds < 3


def test_with_bwrap_make_runner_isolates():
    if local.bwrap_path() is None:
        pytest.skip("bubblewrap (bwrap) is not installed")
    assert isinstance(make_runner(strict=True), BwrapRunner)


def test_unisolated_runner_ignores_read_only_binds(no_bwrap, tmp_path):
    history = tmp_path / "history"
    history.mkdir()
    config = SandboxConfig(ro_binds=((history, tmp_path / "tree" / ".git"),))
    with pytest.warns(UnisolatedWarning):
        runner = make_runner(config)
    result = runner.run("echo ran", tmp_path)
    assert result.exit_code == 0 and result.output == "ran\n" and not result.isolated
    assert not (tmp_path / "tree").exists()  # nothing is bound, nothing is created
