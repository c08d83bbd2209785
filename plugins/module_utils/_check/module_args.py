# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by the modules that talk to an NTS-KE server.

Plain data, no Ansible import: endpoint_check and cookie_check merge these into their
AnsibleModule argument specs; plugins/doc_fragments/_tls_check.py documents them
(DOCUMENTATION and NTS_KE_TARGET).
"""

from __future__ import annotations

from typing import Any

# name, port, aead: the server and what to offer it (fragment _tls_check.nts_ke_target);
# ca_path, timeout: how to trust and how long to wait (fragment _tls_check).
NTS_KE_TARGET_ARGS: dict[str, dict[str, Any]] = {
    "name": {"type": "str", "required": True},
    "port": {"type": "int", "default": 4460},
    "aead": {"type": "list", "elements": "int", "default": [15]},
    "ca_path": {"type": "path"},
    "timeout": {"type": "float", "default": 5},
}
