"""deadline: the monotonic deadline and the socket wait every step shares."""

from __future__ import annotations

import socket
import time

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import Deadline, NtsStepError, wait_ready


def test_deadline_counts_down_on_the_monotonic_clock() -> None:
    deadline = Deadline(0.2)
    first = deadline.left()
    assert 0.19 < first <= 0.2
    assert not deadline.expired()
    time.sleep(0.05)
    second = deadline.left()
    assert second < first - 0.04
    assert deadline.seconds == 0.2


def test_deadline_expires() -> None:
    deadline = Deadline(0.02)
    time.sleep(0.03)
    assert deadline.expired()
    assert deadline.left() < 0
    assert Deadline(0).expired()
    assert Deadline(-1).expired()


def test_wait_with_a_spent_deadline_raises_at_once() -> None:
    with socket.socket() as sock:
        deadline = Deadline(0.001)
        time.sleep(0.005)
        started = time.monotonic()
        with pytest.raises(NtsStepError, match=r"^NTS-KE response timed out after 0.001 s$") as excinfo:
            wait_ready(sock, False, deadline, "ke", "NTS-KE response")
        assert excinfo.value.step == "ke"
        assert time.monotonic() - started < 0.05
