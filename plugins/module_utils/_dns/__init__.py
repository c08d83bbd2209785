"""DNS: RFC 2136 updates with TSIG, propagation checks, and the address agent.

Private to the ntsops.nts collection: not a public API, may change in any release.
"""
