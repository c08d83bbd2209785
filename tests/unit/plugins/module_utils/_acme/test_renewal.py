"""The renewal margin: a third of the issued lifetime, written where certbot reads it."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._acme import renewal

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

CERTBOT_CONF = """# renew_before_expiry = 30 days
version = 2.1.0
archive_dir = /etc/letsencrypt/archive/time.example.net
cert = /etc/letsencrypt/live/time.example.net/cert.pem

# Options used in the renewal process
[renewalparams]
account = 0123
authenticator = dns-rfc2136
"""


@pytest.mark.parametrize(
    ("lifetime", "margin"),
    [
        (datetime.timedelta(days=6), 2 * 86400),
        (datetime.timedelta(days=90), 30 * 86400),
        (datetime.timedelta(days=47), 47 * 86400 // 3),
        (datetime.timedelta(seconds=2), 1),  # never below one second
    ],
)
def test_margin_is_a_third_of_the_lifetime(lifetime: datetime.timedelta, margin: int) -> None:
    assert renewal.margin_seconds(T0, T0 + lifetime) == margin


def test_a_lifetime_that_is_not_positive_is_refused() -> None:
    with pytest.raises(renewal.RenewalError, match="lifetime is not positive"):
        renewal.margin_seconds(T0, T0)


def test_interval_text_is_what_certbot_parses() -> None:
    # certbot's add_time_interval hands "N seconds" to parsedatetime.
    assert renewal.interval_text(172800) == "172800 seconds"
    with pytest.raises(renewal.RenewalError):
        renewal.interval_text(0)


def test_interval_goes_above_the_first_section_and_replaces_only_the_comment_free_line() -> None:
    assert renewal.current_interval(CERTBOT_CONF) is None  # the commented default does not count
    once = renewal.with_interval(CERTBOT_CONF, "172800 seconds")
    assert renewal.current_interval(once) == "172800 seconds"
    assert once.index("renew_before_expiry = 172800 seconds") < once.index("[renewalparams]")
    twice = renewal.with_interval(once, "200 seconds")
    assert twice.count("\nrenew_before_expiry =") == 1 and renewal.current_interval(twice) == "200 seconds"
    assert "# renew_before_expiry = 30 days" in twice and "authenticator = dns-rfc2136" in twice


def test_a_key_below_a_section_is_not_taken_for_the_top_level_one() -> None:
    text = "version = 2\n[renewalparams]\nrenew_before_expiry = 1 days\n"
    assert renewal.current_interval(text) is None
    assert renewal.with_interval(text, "5 seconds").startswith("version = 2\nrenew_before_expiry = 5 seconds\n[")


@pytest.mark.parametrize("bad", ["", "1 days\n[x]"])
def test_bad_interval_or_empty_file_is_refused(bad: str) -> None:
    with pytest.raises(renewal.RenewalError):
        renewal.with_interval(CERTBOT_CONF if bad else "\n", bad or "5 seconds")
