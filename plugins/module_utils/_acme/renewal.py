# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""When certbot renews: one third of the issued lifetime before expiry, set per lineage.

certbot reads ``renew_before_expiry`` from the top of a lineage's renewal file
(``renewal/NAME.conf``, configobj syntax) and adds it to the current time with
parsedatetime (certbot/_internal/storage.py ``add_time_interval``), which takes
"N seconds". The margin follows the certificate actually issued, so a 6-day
certificate renews with 2 days left and a 90-day one with 30.
"""

from __future__ import annotations

import datetime
import re

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

# The fraction of the lifetime left when renewal starts (cert_check warns at the same point).
RENEW_FRACTION_LEFT = 1 / 3
_KEY = "renew_before_expiry"
_LINE = re.compile(r"^\s*renew_before_expiry\s*=")


class RenewalError(NtsopsError):
    """A certificate lifetime or renewal file that cannot give a margin."""


def margin_seconds(not_before: datetime.datetime, not_after: datetime.datetime) -> int:
    """Seconds before notAfter at which renewal starts: a third of the lifetime, at least one."""
    lifetime = (not_after - not_before).total_seconds()
    if lifetime <= 0:
        raise RenewalError(
            f"the certificate's lifetime is not positive (notBefore {not_before.isoformat()},"
            f" notAfter {not_after.isoformat()}); no renewal margin can follow from it"
        )
    return max(1, int(lifetime * RENEW_FRACTION_LEFT))


def interval_text(seconds: int) -> str:
    """The value certbot's parser reads back as exactly ``seconds``."""
    if seconds < 1:
        raise RenewalError(f"a renewal margin must be at least one second, got {seconds}")
    return f"{seconds} seconds"


def current_interval(conf_text: str) -> str | None:
    """The renew_before_expiry of a renewal file, or None when it has none at the top."""
    for line in conf_text.splitlines():
        if line.lstrip().startswith("["):
            return None
        if _LINE.match(line):
            return line.split("=", 1)[1].strip()
    return None


def with_interval(conf_text: str, interval: str) -> str:
    """The renewal file with renew_before_expiry set to ``interval`` (top-level, before any section)."""
    if "\n" in interval or not interval.strip():
        raise RenewalError(f"renew_before_expiry must be one line, got {interval!r}")
    lines = conf_text.splitlines()
    new_line = f"{_KEY} = {interval}"
    for index, line in enumerate(lines):
        if line.lstrip().startswith("["):
            lines.insert(index, new_line)
            break
        if _LINE.match(line):
            lines[index] = new_line
            break
    else:
        if not any(line.strip() for line in lines):
            raise RenewalError("the renewal file is empty; certbot has not written this lineage yet")
        lines.insert(0, new_line)
    return "\n".join(lines) + "\n"
