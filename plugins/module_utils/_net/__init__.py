"""Network I/O: name resolution, connect, TLS, deadlines, NTS-KE and NTS-NTP exchanges.

Private to the ntsops.nts collection: not a public API, may change in any release.
"""
