# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``ntsops`` command line: the same core as the collection's modules and filters.

Run from a checkout, the collection is found through ``<repo root>/.collections``
(``make link``) when ``ansible_collections.ntsops.nts`` is not importable otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import ansible_collections.ntsops.nts.plugins.module_utils._errors  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / ".collections"))
