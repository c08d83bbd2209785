"""certbot's output to one line naming the step and the cause; secrets never in it."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._acme import failures

SECRET = "c2VjcmV0LXRoYXQtaXMtd3Jvbmctc2VjcmV0LXdyb25nIQ=="

# Shapes of certbot 2.1 output (certbot/_internal/main.py, certbot-dns-rfc2136's _RFC2136Client).
CASES = [
    ("rate_limited", "An unexpected error occurred:\nurn:ietf:params:acme:error:rateLimited :: too many"
                     " certificates already issued for exact set of domains"),
    ("tsig_rejected", "Encountered exception during recovery: certbot.errors.PluginError: Encountered error adding"
                      " TXT record: The peer didn't like the signature we sent"),
    ("tsig_rejected", "certbot.errors.PluginError: Received response from server: NOTAUTH"),
    ("update_refused", "Encountered exception during recovery: certbot.errors.PluginError: Received response from"
                       " server: REFUSED"),
    ("no_zone", "Unable to determine base domain for _acme-challenge.time.example.net using names: [...]"),
    ("dns_unreachable", "Encountered error adding TXT record: The DNS operation timed out."),
    ("challenge_not_seen", "Certbot failed to authenticate some domains (authenticator: dns-rfc2136).\n"
                           "  Domain: time.example.net\n  Type:   unauthorized\n"
                           "  Detail: Correct value not found for DNS challenge"),
    ("acme_unreachable", "An unexpected error occurred:\nrequests.exceptions.ConnectionError: HTTPSConnectionPool("
                         "host='127.0.0.1', port=14000): Max retries exceeded with url: /dir (Caused by"
                         " NewConnectionError('Failed to establish a new connection: [Errno 111]"
                         " Connection refused'))"),
    ("wrong_name", "Error creating new order :: urn:ietf:params:acme:error:rejectedIdentifier :: name not allowed"),
]


@pytest.mark.parametrize(("reason", "output"), CASES, ids=[c[0] + str(i) for i, c in enumerate(CASES)])
def test_each_known_cause(reason: str, output: str) -> None:
    code, cause = failures.explain(output, 1)
    assert code == reason
    assert "\n" not in cause


def test_refused_update_is_not_taken_for_an_unreachable_acme_server() -> None:
    # "refused" appears in both; the DNS rcode text is the more specific.
    code, _cause = failures.explain("Received response from server: REFUSED\nConnection refused", 1)
    assert code == "update_refused"


def test_unknown_output_gives_its_last_error_line_redacted_and_short() -> None:
    output = f"Saving debug log\nSomething else\nError: the thing with {SECRET} broke\nSee the logfile x for details."
    code, cause = failures.explain(output, 3, [SECRET])
    assert code == "certbot_failed"
    assert cause.startswith("certbot exited with status 3: Error: the thing with <redacted> broke")
    assert SECRET not in cause and SECRET.rstrip("=") not in cause
    long_code, long_cause = failures.explain("error " + "x" * 1000, 1)
    assert long_code == "certbot_failed" and len(long_cause) < 400


# What certbot 2.1 prints on Python 3.11 for any ACME problem on an order (https://github.com/certbot/certbot/issues/9539),
# and the end of the same run's log.
CRASH_OUTPUT = ("Saving debug log to /var/log/letsencrypt/letsencrypt.log\nAn unexpected error occurred:\n"
                "AttributeError: can't set attribute\nAsk for help or search for solutions at"
                " https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log"
                " or re-run Certbot with -v for more details.\n")


def _log(problem: str) -> str:
    return ('  File "/usr/lib/python3/dist-packages/acme/client.py", line 575, in _check_response\n'
            "    raise messages.Error.from_json(jobj)\n"
            f"acme.messages.Error: {problem}\n\nDuring handling of the above exception, another exception occurred:\n"
            '  File "/usr/lib/python3/dist-packages/josepy/util.py", line 191, in __setattr__\n'
            '    raise AttributeError("can\'t set attribute")\nAttributeError: can\'t set attribute\n')


def test_problem_hidden_by_certbot_21_is_read_from_its_log() -> None:
    log = _log("urn:ietf:params:acme:error:rateLimited :: There were too many requests of a given type ::"
               " too many new orders recently")
    assert failures.explain(CRASH_OUTPUT, 1, log_text=log)[0] == "rate_limited"
    assert failures.explain(CRASH_OUTPUT, 1, log_text=_log(
        "urn:ietf:params:acme:error:rejectedIdentifier :: The server will not issue certificates for the"
        " identifier :: name not allowed"))[0] == "wrong_name"
    # Without the log, the crash is all there is to say.
    assert failures.explain(CRASH_OUTPUT, 1) == (
        "certbot_failed", "certbot exited with status 1: AttributeError: can't set attribute")


def test_unknown_problem_in_the_log_is_quoted_redacted() -> None:
    log = _log(f"urn:ietf:params:acme:error:badCSR :: The CSR is unacceptable :: key {SECRET} too weak")
    code, cause = failures.explain(CRASH_OUTPUT, 1, [SECRET], log)
    assert code == "certbot_failed"
    assert cause == ("certbot exited with status 1: the CA answered urn:ietf:params:acme:error:badCSR :: The CSR is"
                     " unacceptable :: key <redacted> too weak")


def test_log_lines_other_than_the_raised_problem_are_not_matched() -> None:
    # A debug log mentions refused connections and response bodies; only the raised problem counts.
    log = "DEBUG: Connection refused, retrying\nDEBUG: {\"type\": \"urn:ietf:params:acme:error:rateLimited\"}\n"
    assert failures.explain("Error: something else failed", 1, log_text=log) == (
        "certbot_failed", "certbot exited with status 1: Error: something else failed")


def test_empty_output() -> None:
    assert failures.explain("", 1) == ("certbot_failed", "certbot exited with status 1: certbot printed nothing")


def test_redact_removes_padding_free_forms_and_ignores_short_secrets() -> None:
    assert failures.redact(f"a {SECRET.rstrip('=')} b", [SECRET]) == "a <redacted> b"
    assert failures.redact("abc", ["ab"]) == "abc"  # too short to be a secret; redacting it would garble


def test_message_names_step_and_lineage() -> None:
    line = failures.message("renew", "time.example.net", "cause")
    assert line == "ntsops-acme: renew of time.example.net failed: cause"
