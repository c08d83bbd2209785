"""What each hostile peer (harness/hostile.py) must make a checker report.

One table for every test that points a checker at the hostile peers: the words the
problem line must contain. ``{port}`` stands for the peer's NTS-KE port.
"""

EXPECTED_PROBLEM = {
    "refuse": "TCP {port} refused",
    "silent": "TLS handshake timed out",
    "tls12_only": "does not offer TLS 1.3",
    "no_alpn": "agreed no ALPN protocol",
    "untrusted_ca": "not trusted",
    "wrong_name": "does not cover localhost",
    "expired_cert": "certificate has expired",
    "error_record": "NTS-KE Error record: Bad Request (1)",
    "unknown_critical_record": "critical",
    "truncated_record": "truncated record",
    "length_overrun": "truncated record",
    "never_ending_records": "NTS-KE response timed out",
    "no_cookies": "returned 0 cookies, expected 8",
    "bad_authenticator": "authenticator does not verify",
    "nts_nak": "NTS NAK",
    "silent_ntp": "NTP response from port",
}
