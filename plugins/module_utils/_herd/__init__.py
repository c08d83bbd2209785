"""NTS-KE load generation (herd tests) against a server the caller owns.

Private to the ntsops.nts collection: not a public API, may change in any release.
"""
