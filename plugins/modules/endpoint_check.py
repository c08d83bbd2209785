#!/usr/bin/python
# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: endpoint_check
short_description: Verify an NTS server on every address its name resolves to
version_added: 0.1.0
description:
  - Checks an NTS (RFC 8915) server the way chrony and NTPsec clients use it, on every
    A and AAAA address of O(name), concurrently.
  - For each address it opens TCP to the NTS-KE port with TCP_NODELAY, runs a TLS 1.3
    handshake with ALPN C(ntske/1) and SNI, verifies the certificate chain against the
    trust store and the certificate name against O(name), runs NTS-KE, and, unless
    O(ntp_exchange=false), one NTS-protected NTPv4 exchange with a fresh cookie.
  - Every finding becomes one line in RV(problems) that starts with the address. The
    module fails when any address has a problem, and its message lists them.
  - The module only reads; it never reports a change.
author:
  - ntsops developers (@ntsops)
requirements:
  - cryptography >= 45 for the NTP exchange (AES-SIV with the empty plaintext of every NTS request fails
    in older versions); cryptography >= 38 with O(ntp_exchange=false)
extends_documentation_fragment:
  - ntsops.nts._attributes
  - ntsops.nts._attributes.read_only
  - ntsops.nts._tls_check
options:
  name:
    description:
      - The NTS-KE host name clients are configured with. An IP address is allowed;
        the certificate must then carry it as an IP subject alternative name.
    type: str
    required: true
  port:
    description: The NTS-KE TCP port.
    type: int
    default: 4460
  addresses:
    description:
      - Check these addresses instead of resolving O(name).
      - Useful to check a new address before DNS points at it.
    type: list
    elements: str
  timeout:
    description: Seconds allowed for each step (TCP connect, TLS handshake, NTS-KE, NTP exchange).
  min_cert_days:
    description:
      - Report a problem when the served certificate expires in fewer days than this.
      - Not used when O(min_cert_fraction) is set.
  min_cert_fraction:
    description:
      - Report a problem when less than this fraction of the served certificate's lifetime (notBefore to
        notAfter) is left, instead of O(min_cert_days).
      - A fixed number of days suits no lifetime; renewal clients renew at a third left, so V(0.1667) (a sixth)
        means several renewals have failed, for a 6-day certificate as for a 90-day one.
    type: float
  ntp_exchange:
    description: Run one NTS-protected NTP exchange after NTS-KE and check that authenticated time flows.
    type: bool
    default: true
  aead:
    description: AEAD algorithm ids to offer, in order of preference (15 is AEAD_AES_SIV_CMAC_256).
    type: list
    elements: int
    default: [15]
  expect_cookies:
    description: Report a problem when NTS-KE returns fewer cookies than this.
    type: int
    default: 8
  ntp_address:
    description:
      - Send the NTP exchange to this IP address instead of the server NTS-KE named, with the
        cookies NTS-KE returned (cookies are not bound to an address).
      - Useful to check a new address of the same server before NTS-KE announces it.
    type: str
notes:
  - The NTP exchange goes to the server and port named in the NTS-KE response when it
    has Server or Port Negotiation records, else to the same address on port 123.
  - A server that answers with stratum 0 and a valid authenticator (NTPsec while it is
    not synchronised) is authenticated but reported as not synchronised; an NTS NAK is
    reported as a rejected cookie.
seealso:
  - module: ntsops.nts.cert_check
"""

EXAMPLES = r"""
- name: Check every address of time.example.net
  ntsops.nts.endpoint_check:
    name: time.example.net
  delegate_to: localhost

- name: Check a new address before DNS points at it, with a private CA
  ntsops.nts.endpoint_check:
    name: time.example.net
    addresses:
      - 203.0.113.7
      - 2001:db8::7
    ca_path: /etc/ssl/private-ca.pem
    min_cert_days: 21
  delegate_to: localhost
"""

RETURN = r"""
ok:
  description: True when every address passed every check.
  returned: always
  type: bool
problems:
  description: Every finding, one line each, starting with the address.
  returned: always
  type: list
  elements: str
  sample: ["203.0.113.7: certificate expires in 3 days (minimum 14)", "2001:db8::7: TCP 4460 refused"]
addresses:
  description: One entry per checked address.
  returned: always
  type: list
  elements: dict
  contains:
    address:
      description: The address checked.
      type: str
    ok:
      description: True when this address passed every check.
      type: bool
    problems:
      description: The findings for this address.
      type: list
      elements: str
    tls:
      description: TLS version, cipher, agreed ALPN protocol and handshake time (ms); null when TLS failed.
      type: dict
    cert:
      description: >-
        Subject, subject alternative names, issuer, not_before, not_after, days_left,
        lifetime_days, lifetime_left (fraction of the lifetime still to come), sha256
        fingerprint and key_type of the served certificate.
      type: dict
    ke:
      description: >-
        NTS-KE result: next_protocol, aead, aead_name, cookies (count), cookie_sizes,
        server and port (negotiated, or null), warnings, errors and ms.
      type: dict
    ntp:
      description: >-
        NTP exchange: address, port, authenticated, nak, stratum, leap, refid, offset and
        delay (seconds), cookies returned, ms; null when not run.
      type: dict
  sample:
    - address: 203.0.113.7
      ok: true
      problems: []
      tls: {version: TLSv1.3, cipher: TLS_AES_256_GCM_SHA384, alpn: ntske/1, handshake_ms: 1.4}
      cert:
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
      ke: {next_protocol: 0, aead: 15, aead_name: AEAD_AES_SIV_CMAC_256, cookies: 8, cookie_sizes: [104],
           server: null, port: null, warnings: [], errors: [], ms: 1.6}
      ntp: {address: 203.0.113.7, port: 123, authenticated: true, nak: false, stratum: 2, leap: 0,
            refid: 192.0.2.1, offset: 0.0001, delay: 0.0004, cookies: 1, ms: 0.3}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import CheckOptions, check_endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "port": {"type": "int", "default": 4460},
            "addresses": {"type": "list", "elements": "str"},
            "ca_path": {"type": "path"},
            "timeout": {"type": "float", "default": 5},
            "min_cert_days": {"type": "int", "default": 14},
            "min_cert_fraction": {"type": "float"},
            "ntp_exchange": {"type": "bool", "default": True},
            "aead": {"type": "list", "elements": "int", "default": [15]},
            "expect_cookies": {"type": "int", "default": 8},
            "ntp_address": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    options = CheckOptions(
        name=params["name"],
        port=params["port"],
        ca_path=params["ca_path"],
        timeout=params["timeout"],
        min_cert_days=params["min_cert_days"],
        min_cert_fraction=params["min_cert_fraction"],
        ntp_exchange=params["ntp_exchange"],
        aead=tuple(params["aead"]),
        expect_cookies=params["expect_cookies"],
        ntp_address=params["ntp_address"],
    )
    try:
        result = check_endpoint(options, addresses=params["addresses"])
    except NtsopsError as exc:
        module.fail_json(msg=str(exc), ok=False, problems=[str(exc)], addresses=[])
    if not result["ok"]:
        module.fail_json(msg="NTS endpoint check failed: " + "; ".join(result["problems"]), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
