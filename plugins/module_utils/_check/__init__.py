"""Checks of an NTS endpoint and its certificate files, and how results are reported.

Private to the ntsops.nts collection: not a public API, may change in any release.
"""
