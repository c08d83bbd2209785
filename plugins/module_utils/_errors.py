# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exception types shared by the ntsops core.

Every error the pure core raises derives from NtsopsError, so a module turns
exactly one exception type into ``fail_json`` in ``main()`` and a filter into
``AnsibleFilterError``.
"""

from __future__ import annotations


class NtsopsError(Exception):
    """Base class of every error ntsops raises on purpose."""


class NtsProtocolError(NtsopsError):
    """A peer sent bytes that do not follow RFC 8915 (or NTP, RFC 5905)."""


class MissingDependencyError(NtsopsError):
    """A Python library the operation needs is not installed."""

    def __init__(self, library: str, purpose: str, found: str | None = None) -> None:
        have = f"version {found} is installed" if found else "it is not installed"
        super().__init__(f"the Python library {library!r} is required {purpose}, but {have}")
        self.library = library
