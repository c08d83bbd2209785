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
  - ntsops.nts._tls_check.cert_days
  - ntsops.nts._tls_check.nts_ke_target
options:
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
  server_addresses:
    description:
      - The addresses the server itself has. The name's A and AAAA records (as the resolver returns them, also
        when O(addresses) is given) are compared with them per family, in RV(records).
      - A record at an address not in this list is a problem (a client that picks it fails); so is an address
        of the list that is not published, and a family of the list with no record at all (the record set
        lacks a family the server serves).
      - The list is taken as complete for both families; mutually exclusive with O(gather_server_addresses).
    type: list
    elements: str
  gather_server_addresses:
    description:
      - Compare the records with this host's own addresses (C(ip -o addr show), every interface), selected as
        the ntsops.nts.ddns_agent role selects what to publish; run the module on the server for this.
      - Deprecated and tentative addresses count as the server's; temporary, link-local, unique local and
        other refused ones do not. A family with no such address on the host is not compared (its public
        IPv4 address may be a NAT's).
    type: bool
    default: false
  allow_prefixes:
    description:
      - With O(gather_server_addresses), prefixes whose non-global addresses count as the server's (a lab in
        documentation space), as for ntsops.nts.ddns_record.
    type: list
    elements: str
    default: []
notes:
  - The NTP exchange goes to the server and port named in the NTS-KE response when it
    has Server or Port Negotiation records, else to the same address on port 123.
  - A server that answers with a valid authenticator but leap indicator 3, stratum 0
    (NTPsec while it is not synchronised) or stratum 16 and above (ntpd-rs with no
    source) is authenticated but reported as not synchronised; an NTS NAK is reported
    as a rejected cookie. The refid is shown as text at stratum 0, 1 and 16 and above
    (hex when not printable), as an IPv4 address at stratum 2 to 15.
seealso:
  - module: ntsops.nts.cert_check
  - module: ntsops.nts.ddns_record
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

- name: On the server, check that A and AAAA are exactly the addresses it has
  ntsops.nts.endpoint_check:
    name: time.example.net
    gather_server_addresses: true
"""

RETURN = r"""
records:
  description:
    - The name's published records against the server's addresses, per family (V(ipv4), V(ipv6)); only with
      O(server_addresses) or O(gather_server_addresses).
  returned: when the server's addresses are known
  type: dict
  contains:
    name:
      description: The name compared.
      type: str
    ipv4:
      description: >-
        published (addresses the name resolves to), server (the server's, null when unknown), verdict
        (match, missing, stale or unknown), missing (server addresses not published) and stale (published
        addresses the server does not have).
      type: dict
    ipv6:
      description: The same for AAAA.
      type: dict
    missing:
      description: Whether an address or a family of the server is not published.
      type: bool
    stale:
      description: Whether a record points at an address the server does not have.
      type: bool
    problems:
      description: One line per finding, starting with the name; also in RV(problems).
      type: list
      elements: str
  sample:
    name: time.example.net
    ipv4: {published: [203.0.113.7], server: [203.0.113.7], verdict: match, missing: [], stale: []}
    ipv6: {published: [], server: ["2001:db8::7"], verdict: missing, missing: ["2001:db8::7"], stale: []}
    missing: true
    stale: false
    problems: ["time.example.net: no AAAA record, but the server has ipv6 2001:db8::7"]
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
from ansible_collections.ntsops.nts.plugins.module_utils._check.module_args import NTS_KE_TARGET_ARGS
from ansible_collections.ntsops.nts.plugins.module_utils._check.published import FAMILIES, gather_server_addresses
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **NTS_KE_TARGET_ARGS,
            "addresses": {"type": "list", "elements": "str"},
            "min_cert_days": {"type": "int", "default": 14},
            "min_cert_fraction": {"type": "float"},
            "ntp_exchange": {"type": "bool", "default": True},
            "expect_cookies": {"type": "int", "default": 8},
            "ntp_address": {"type": "str"},
            "server_addresses": {"type": "list", "elements": "str"},
            "gather_server_addresses": {"type": "bool", "default": False},
            "allow_prefixes": {"type": "list", "elements": "str", "default": []},
        },
        mutually_exclusive=[("server_addresses", "gather_server_addresses")],
        supports_check_mode=True,
    )
    params = module.params
    server_addresses, server_families = params["server_addresses"], FAMILIES
    try:
        if params["gather_server_addresses"]:
            server_addresses, server_families = gather_server_addresses(params["allow_prefixes"])
    except NtsopsError as exc:
        module.fail_json(msg=str(exc), ok=False, problems=[str(exc)], addresses=[])
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
        server_addresses=tuple(server_addresses) if server_addresses is not None else None,
        server_families=tuple(server_families),
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
