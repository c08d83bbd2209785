# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host names to addresses, and an address's socket family: the one place that calls getaddrinfo."""

from __future__ import annotations

import socket
from collections.abc import Callable

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def address_family(address: str) -> int:
    """``AF_INET6`` for an IPv6 address literal, else ``AF_INET``."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def resolve_host(
    host: str,
    *,
    what: str = "",
    socktype: int = socket.SOCK_STREAM,
    error: Callable[[str], NtsopsError] = NtsopsError,
) -> list[str]:
    """Every address of ``host`` in resolver order, without duplicates.

    A failure raises ``error(message)``, the message starting with ``what`` and the
    name, so each caller keeps its own error class and wording.
    """
    try:
        infos = socket.getaddrinfo(host, None, type=socktype)
    except socket.gaierror as exc:
        raise error(f"{what}{host} does not resolve: {exc.strerror}") from exc
    except UnicodeError as exc:
        # getaddrinfo's IDNA codec refuses an empty or over-long label ("a..b").
        raise error(f"{what}{host!r} is not a valid host name") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
