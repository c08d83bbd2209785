"""Client recovery model, planned moves, fleet simulation and server sizing.

Private to the ntsops.nts collection: not a public API, may change in any release.
"""
