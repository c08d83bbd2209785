"""NTS wire formats (RFC 8915): NTS-KE records and NTS-protected NTP packets; no I/O.

Private to the ntsops.nts collection: not a public API, may change in any release.
"""
