# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""certbot's output turned into one line that names the step and the cause.

certbot prints a failed challenge or an unreachable server over several lines
(and a traceback to its log); the operator and the alert need one line. The
patterns are the texts of certbot 2.1 (certbot/_internal/client.py, the
requests/urllib3 connection errors), of certbot-dns-rfc2136 2.1
(``_RFC2136Client.add_txt_record``: "Received response from server: RCODE",
"Encountered error adding TXT record: ...") with dnspython's TSIG errors, and of
the ACME problem types of RFC 8555 section 6.7 that a CA (Pebble, Boulder)
returns, which certbot 2.1 on Python 3.11 leaves to its log (``log_problem``).
Output and log are redacted of every secret the caller names before they are
matched, so no cause can quote one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# (cause, patterns): the first cause with a matching pattern wins, so the more
# specific come first. The cause is a fixed text, so it never echoes input.
_CAUSES: Sequence[tuple[str, str, Sequence[str]]] = (
    (
        "rate_limited",
        "the CA refused the order for its rate limit; the next timer run retries",
        (r"urn:ietf:params:acme:error:rateLimited", r"too many (certificates|new orders|failed authorizations)"),
    ),
    (
        "tsig_rejected",
        "the DNS server rejected the challenge TSIG key (wrong secret, unknown key name or algorithm)",
        (r"PeerBadSignature", r"peer didn't like the signature", r"PeerBadKey", r"peer didn't know the key",
         r"\bBADSIG\b", r"\bBADKEY\b", r"Received response from server: NOTAUTH", r"BadSignature",
         r"\bBadTSIG\b"),
    ),
    (
        "update_refused",
        "the DNS server refused the TXT update: the key's update-policy does not grant _acme-challenge TXT for this"
        " name",
        (r"Received response from server: REFUSED",),
    ),
    (
        "no_zone",
        "the DNS server answers no SOA for this name (wrong server, or the zone is not served there)",
        (r"Unable to determine base domain",),
    ),
    (
        "dns_unreachable",
        "the DNS server for the challenge did not answer (address, port or firewall)",
        (r"Encountered error (adding|deleting) TXT record: .*(timed out|refused|unreachable)",
         r"Encountered error when making query: .*(timed out|refused|unreachable)"),
    ),
    (
        "challenge_not_seen",
        "the CA did not see the challenge TXT record (not propagated to the servers it asks in time,"
        " or a different record is served)",
        (r"No TXT records? found for DNS challenge", r"Correct value not found for DNS challenge",
         r"Incorrect TXT record", r"Error retrieving TXT records for DNS challenge",
         r"urn:ietf:params:acme:error:(unauthorized|dns)", r"DNS problem: NXDOMAIN"),
    ),
    (
        "acme_unreachable",
        "the ACME server cannot be reached (down, wrong URL, or its TLS certificate is not trusted)",
        (r"Failed to establish a new connection", r"Connection refused", r"Max retries exceeded",
         r"Name or service not known", r"Read timed out", r"CERTIFICATE_VERIFY_FAILED",
         r"Unable to reach", r"Temporary failure in name resolution"),
    ),
    (
        "wrong_name",
        "the CA refused the name (not a name it issues for)",
        (r"urn:ietf:params:acme:error:(rejectedIdentifier|malformed)",),
    ),
)

_SECRET_MIN = 8
_MAX_LINE = 300
# certbot before 2.2 on Python 3.11 and later (Debian 12's certbot 2.1) prints every ACME
# problem document a CA returns for an order (rateLimited, rejectedIdentifier, ...) as
# "AttributeError: can't set attribute": the exception is immutable and contextlib cannot
# set its traceback (https://github.com/certbot/certbot/issues/9539, fixed in certbot 2.2).
# The problem itself is then only in certbot's log, as the traceback's last line of the
# exception raised.
_LOG_PROBLEM = re.compile(r"^acme\.messages\.Error: (.+)$", re.MULTILINE)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (and its base64 padding-free form) replaced."""
    for secret in sorted({s for s in secrets if s and len(s) >= _SECRET_MIN}, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
        stripped = secret.rstrip("=")
        if stripped != secret and len(stripped) >= _SECRET_MIN:
            text = text.replace(stripped, "<redacted>")
    return text


def classify(output: str) -> tuple[str, str] | None:
    """(reason code, cause) for a failed certbot run's output, or None when no known cause matches."""
    for code, cause, patterns in _CAUSES:
        for pattern in patterns:
            if re.search(pattern, output, re.IGNORECASE):
                return code, cause
    return None


def _last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.search(r"error|failed|refused|denied|could not|unable", line, re.IGNORECASE) and not line.startswith(
            ("Ask for help", "See the logfile", "Some challenges have failed")
        ):
            return line
    return lines[-1] if lines else "certbot printed nothing"


def log_problem(log_text: str) -> str | None:
    """The last ACME problem certbot's log shows raised (``<type> :: <title> :: <detail>``), or None."""
    found = _LOG_PROBLEM.findall(log_text)
    return found[-1].strip() if found else None


def explain(output: str, returncode: int, secrets: Iterable[str] = (), log_text: str = "") -> tuple[str, str]:
    """(reason code, one-line cause) of a failed certbot run.

    ``log_text`` is certbot's log of the same run: where the output does not name a
    known cause, the ACME problem the log shows raised does (see ``_LOG_PROBLEM``).
    """
    clean = redact(output, secrets)
    known = classify(clean)
    if known is not None:
        return known
    problem = log_problem(redact(log_text, secrets)) if log_text else None
    if problem is not None:
        known = classify(problem)
        if known is not None:
            return known
        line = f"the CA answered {problem}"
    else:
        line = _last_error_line(clean)
    if len(line) > _MAX_LINE:
        line = line[: _MAX_LINE - 3] + "..."
    return "certbot_failed", f"certbot exited with status {returncode}: {line}"


def message(step: str, cert_name: str, cause: str) -> str:
    """The one line an operator and the journal get."""
    return f"ntsops-acme: {step} of {cert_name} failed: {cause}"
