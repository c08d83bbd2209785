# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deadlines, the wait on a non-blocking socket, and the error every network step raises.

A step (tcp, tls, ke or ntp) that fails raises :class:`NtsStepError` naming the
step, with the error below it chained as ``__cause__``: an ``OSError`` carrying the
connect errno (``ConnectionRefusedError``, ``TimeoutError``, ...), a
``TimeoutError`` when the step's deadline ran out, a pyOpenSSL error, or an
``NtsProtocolError``. The message is for people; the cause is what a caller such as
the herd sorts failures by.
"""

from __future__ import annotations

import select
import socket
import time

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


class NtsStepError(NtsopsError):
    """One step of the exchange failed; ``step`` is tcp, tls, ke or ntp."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


class Deadline:
    """Seconds left until a fixed moment on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self.left() <= 0


def wait_ready(sock: socket.socket, for_write: bool, deadline: Deadline, step: str, what: str) -> None:
    """Wait until ``sock`` can be read (or written); past the deadline raise the step's timeout."""
    left = deadline.left()
    readers, writers = ([], [sock]) if for_write else ([sock], [])
    if left <= 0 or not any(select.select(readers, writers, [], left)):
        message = f"{what} timed out after {deadline.seconds:g} s"
        raise NtsStepError(step, message) from TimeoutError(message)
