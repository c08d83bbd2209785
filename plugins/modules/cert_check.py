#!/usr/bin/python
# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cert_check
short_description: Check the certificate and key files an NTS server serves
version_added: 0.1.0
description:
  - Checks, on the host that holds them, the certificate and private key an NTS server
    (chrony or NTPsec) is configured with, before clients meet them.
  - Both files must parse, the key must match the certificate, the chain in the file
    (plus O(ca_path) or the system trust store) must verify, every name in O(names) must
    be covered, at least O(min_cert_days) must be left, and key usage must suit a TLS server.
  - With O(served), it also fetches the certificate the server sends on its NTS-KE port
    and reports whether it is the one in the file. chronyd reads its certificate only
    when it starts, so a renewed file is not served until chronyd restarts.
  - The module only reads; it never reports a change and never prints key material.
author:
  - ntsops developers (@ntsops)
requirements:
  - cryptography >= 38 (Debian 12's python3-cryptography), on the host that holds the files
extends_documentation_fragment:
  - ntsops.nts._attributes
  - ntsops.nts._attributes.read_only
  - ntsops.nts._tls_check
  - ntsops.nts._tls_check.cert_days
options:
  cert_path:
    description: PEM file with the server certificate first, then any intermediates.
    type: path
    required: true
  key_path:
    description: PEM file with the unencrypted private key.
    type: path
    required: true
  names:
    description: The names (or addresses) clients use; each must be covered by the certificate.
    type: list
    elements: str
    default: []
  min_cert_days:
    description:
      - Report a problem when the certificate expires in fewer days than this.
      - O(min_days) is the earlier name of this option and stays an alias.
    aliases: [min_days]
  served:
    description:
      - C(host) or C(host:port) (port 4460 when omitted; C([v6]:port) for IPv6) of the
        running NTS-KE server whose served certificate must equal O(cert_path).
    type: str
  timeout:
    description: Seconds allowed for each step (TCP connect, TLS handshake) of fetching the served certificate.
seealso:
  - module: ntsops.nts.endpoint_check
"""

EXAMPLES = r"""
- name: Check the files before chronyd is restarted
  ntsops.nts.cert_check:
    cert_path: /etc/letsencrypt/live/time.example.net/fullchain.pem
    key_path: /etc/letsencrypt/live/time.example.net/privkey.pem
    names:
      - time.example.net
    min_cert_days: 21

- name: Check that the running server serves the renewed certificate
  ntsops.nts.cert_check:
    cert_path: /etc/chrony/nts/fullchain.pem
    key_path: /etc/chrony/nts/privkey.pem
    names: [time.example.net]
    served: localhost:4460
"""

RETURN = r"""
ok:
  description: True when there is no problem.
  returned: always
  type: bool
problems:
  description: Every finding, one line each.
  returned: always
  type: list
  elements: str
  sample: ["certificate expires in 3 days (minimum 14)"]
cert:
  description: >-
    Subject, subject alternative names, issuer, not_before, not_after, days_left,
    lifetime_days, lifetime_left (fraction of the lifetime still to come), sha256
    fingerprint and key_type of the certificate in O(cert_path).
  returned: when the certificate file could be read
  type: dict
  sample:
    subject: CN=time.example.net
    sans: ["DNS:time.example.net"]
    issuer: CN=Example CA
    not_before: "2026-10-01T00:00:00+00:00"
    not_after: "2026-12-30T00:00:00+00:00"
    days_left: 34
    lifetime_days: 90.0
    lifetime_left: 0.3778
    sha256: 5f1c0e3b6a4d...
    key_type: EC secp256r1
chain_length:
  description: Number of certificates in O(cert_path).
  returned: when the certificate file could be read
  type: int
served_matches:
  description: Whether the served certificate equals the file's; null without O(served) or when it could not be fetched.
  returned: always
  type: bool
served_sha256:
  description: SHA-256 fingerprint of the served certificate; null without O(served).
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ntsops.nts.plugins.module_utils._check.cert_files import check_files
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "cert_path": {"type": "path", "required": True},
            "key_path": {"type": "path", "required": True},
            "ca_path": {"type": "path"},
            "names": {"type": "list", "elements": "str", "default": []},
            "min_cert_days": {"type": "int", "default": 14, "aliases": ["min_days"]},
            "served": {"type": "str"},
            "timeout": {"type": "float", "default": 5},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = check_files(
            cert_path=params["cert_path"],
            key_path=params["key_path"],
            names=params["names"],
            ca_path=params["ca_path"],
            min_days=params["min_cert_days"],
            served=params["served"],
            timeout=params["timeout"],
        )
    except NtsopsError as exc:
        module.fail_json(msg=str(exc), ok=False, problems=[str(exc)], served_matches=None, served_sha256=None)
    if not result["ok"]:
        module.fail_json(msg="certificate check failed: " + "; ".join(result["problems"]), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
