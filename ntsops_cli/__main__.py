# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``python -m ntsops_cli``."""

from __future__ import annotations

import sys

from ntsops_cli.main import main

sys.exit(main())
