# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter verify_prometheus: verify.yml's results as Prometheus exposition text, the ntsops check schema."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.ntsops.nts.plugins.module_utils._check.prometheus import verify_output


def verify_prometheus(results: Sequence[Mapping[str, Any]], timestamp: float | None = None) -> str:
    """The textfile for node_exporter from verify.yml's per-host results."""
    if not isinstance(results, Sequence) or not all(isinstance(result, Mapping) for result in results):
        raise AnsibleFilterError("ntsops.nts.verify_prometheus: expects a list of verify.yml result dictionaries")
    return verify_output(results, timestamp)


class FilterModule:
    """Prometheus filter for verify.yml."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"verify_prometheus": verify_prometheus}
