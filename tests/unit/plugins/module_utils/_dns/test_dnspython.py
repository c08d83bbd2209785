"""Without dnspython the subpackage still imports, and using it is one clear error."""

from __future__ import annotations

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns import dnspython
from ansible_collections.ntsops.nts.plugins.module_utils._errors import MissingDependencyError


def test_require_dnspython_names_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    dnspython.require_dnspython()
    monkeypatch.setattr(dnspython, "HAS_DNSPYTHON", False)
    with pytest.raises(MissingDependencyError, match="'dnspython' is required for dynamic DNS updates"):
        dnspython.require_dnspython()
