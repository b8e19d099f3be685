"""A pytest plugin loaded into sandboxed test runs (`-p`): fails any test whose setup, call and
teardown take longer than EVOAGENT_TEST_TIMEOUT seconds, using SIGALRM on the main thread (the
same mechanism as pytest-timeout's signal method, without needing it installed)."""

import os
import signal

import pytest

LIMIT = float(os.environ.get("EVOAGENT_TEST_TIMEOUT", "0") or 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if LIMIT <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        pytest.fail(f"Timeout: test exceeded {LIMIT:g} s (evoagent per-test timeout)", False)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
