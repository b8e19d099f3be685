"""Live output: both runners hand a command's output on while it runs, within the output cap,
and a command killed mid-stream (the app's cancel path) returns at once. Order is shown by
the command waiting for a file the receiver writes, never by timing."""

from __future__ import annotations

import shutil
import threading
import warnings

import pytest
from evoagent.agent.session import kill_sandboxed
from evoagent.sandbox.bwrap import BwrapRunner
from evoagent.sandbox.capture import STOP_NOTE, LiveStream
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.limits import Limits
from evoagent.sandbox.local import LocalRunner

WAIT_FOR_GO = "echo first; while [ ! -e go ]; do sleep 0.05; done; echo second"


@pytest.fixture(params=["local", "bwrap"])
def make(request, tmp_path):
    """A runner factory for the working directory `tmp_path` (writable in the sandbox)."""

    def factory(**limits) -> LocalRunner | BwrapRunner:
        config = SandboxConfig(writable=(tmp_path,), limits=Limits(**{"timeout": 30, **limits}))
        if request.param == "local":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return LocalRunner(config)
        if shutil.which("bwrap") is None:
            pytest.skip("bubblewrap (bwrap) is not installed")
        return BwrapRunner(config)

    return factory


def test_output_arrives_while_the_command_runs(make, tmp_path):
    pieces: list[str] = []

    def receive(text: str) -> None:
        pieces.append(text)
        if "first" in "".join(pieces):
            (tmp_path / "go").touch()  # the command goes on only once this was received

    result = make().run(WAIT_FOR_GO, tmp_path, on_output=receive)
    assert not result.timed_out and result.exit_code == 0
    assert result.output == "first\nsecond\n"
    assert "".join(pieces) == result.output
    assert pieces[0].startswith("first")


def test_streaming_stops_at_the_cap_and_says_so_once(make, tmp_path):
    command = "head -c 5000 /dev/zero | tr '\\0' x; echo; echo done"
    pieces: list[str] = []
    streamed = make(output_bytes=1000).run(command, tmp_path, on_output=pieces.append)
    plain = make(output_bytes=1000).run(command, tmp_path)
    text = "".join(pieces)
    assert len(text) <= 1000
    assert text.count(STOP_NOTE) == 1 and text.endswith(STOP_NOTE)
    assert text.startswith("x" * (1000 - len(STOP_NOTE)))
    # The result is what it is without a receiver: the same head and tail, the same code.
    assert streamed.truncated and streamed.output == plain.output
    assert streamed.exit_code == plain.exit_code == 0


def test_a_command_killed_mid_stream_returns(make, tmp_path):
    runner = make(timeout=120)
    streaming = threading.Event()
    results: list = []

    def receive(text: str) -> None:
        streaming.set()

    worker = threading.Thread(target=lambda: results.append(runner.run(
        "while :; do echo tick; sleep 0.05; done", tmp_path, on_output=receive)))
    worker.start()
    assert streaming.wait(60), "no output streamed"
    assert kill_sandboxed(tmp_path) == 1  # what the session's cancel does
    worker.join(60)
    assert not worker.is_alive(), "the run did not return after the kill"
    [result] = results
    assert result.exit_code < 0 and not result.timed_out
    assert "tick" in result.output


def test_a_failing_receiver_stops_the_stream_not_the_command(make, tmp_path):
    calls: list[str] = []

    def receive(text: str) -> None:
        calls.append(text)
        raise RuntimeError("front end gone")

    result = make().run("echo one; sleep 0.3; echo two", tmp_path, on_output=receive)
    assert result.exit_code == 0 and result.output == "one\ntwo\n"
    assert len(calls) == 1 and calls[0].startswith("one")


def test_split_characters_and_invalid_bytes_decode_like_the_result():
    pieces: list[str] = []
    stream = LiveStream(pieces.append, cap=1000, interval=0)
    for data in (b"caf\xc3", b"\xa9 ", b"\xff!", b"\xe2\x82"):
        stream.feed(data)
    stream.close()
    assert "".join(pieces) == "café \ufffd!\ufffd"
    assert pieces[0] == "caf"  # the half character waited for its end
