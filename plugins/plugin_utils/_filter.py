# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the collection's filters call the core: one place that turns its errors into AnsibleFilterError.

Private to the ntsops.nts collection: not a public API, may change in any release.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def call_core(name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """function(*args, **kwargs); a core error or a wrong argument becomes 'ntsops.nts.NAME: reason'."""
    try:
        return function(*args, **kwargs)
    except (NtsopsError, TypeError) as exc:
        # TypeError: a missing or misspelled keyword argument in the template.
        raise AnsibleFilterError(f"ntsops.nts.{name}: {exc}") from exc
