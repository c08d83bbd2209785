# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

# This doc fragment is private to the collection: it may change at any time.

from __future__ import annotations


class ModuleDocFragment(object):
    # What each attribute means; every module uses it, and a module or one of the
    # variables below says how far it supports each.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
"""

    # Use with DOCUMENTATION for a module that only reads.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: Runs the same read-only checks in check mode and never reports a change.
  diff_mode:
    support: N/A
    details: The module changes nothing, so there is nothing to diff.
"""
