# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""dnspython, imported in this one place so that the subpackage imports without it.

Every other file takes ``dns`` from here and calls ``require_dnspython()`` before it
uses it, so a host without the library gets one clear error instead of an
ImportError while Ansible loads the module.
"""

from __future__ import annotations

from ansible_collections.ntsops.nts.plugins.module_utils._errors import MissingDependencyError

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.opcode
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdataset
    import dns.rdatatype
    import dns.resolver
    import dns.tsig
    import dns.update

    HAS_DNSPYTHON = True
except ImportError:  # pragma: no cover - reported when used
    dns = None  # type: ignore[assignment]
    HAS_DNSPYTHON = False

__all__ = ["HAS_DNSPYTHON", "dns", "require_dnspython"]


def require_dnspython() -> None:
    if not HAS_DNSPYTHON:
        raise MissingDependencyError("dnspython", "for dynamic DNS updates")
