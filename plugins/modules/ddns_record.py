# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ddns_record
short_description: Keep a name's A and AAAA records exact by RFC 2136 dynamic update, TTL inside the recovery budget
description:
  - Reads the current A and AAAA RRsets of O(name) from the zone's primary, then sends B(one) dynamic update
    (RFC 2136) that changes every RRset that differs, so A and AAAA change together.
  - The update carries prerequisites that each changed RRset still holds exactly what was read. If another
    writer changed it in between, the server rejects the update and the module fails with both states in the
    message instead of overwriting.
  - Sends nothing when the records already match (addresses and TTL); in check mode never sends an update.
  - After an update it asks every server in the zone's NS set until all serve the new records
    (O(wait_for_propagation)).
  - The TTL can be given, or derived from O(budget), the client mix and update latency of the
    recovery model (as for the C(ntsops.nts.max_ttl) filter). A TTL above what the budget allows is refused.
  - Only timeouts are retried (O(retries) times). A retried update that had in fact landed is recognised.
version_added: 0.1.0
author:
  - ntsops developers (@ntsops)
requirements:
  - dnspython >= 2.0 on the host that runs the module
extends_documentation_fragment:
  - ntsops.nts._attributes
  - ntsops.nts._tsig
options:
  name:
    description: The owner name of the records, for example V(ntp.example.net). A trailing dot is optional.
    type: str
    required: true
  zone:
    description:
      - The zone to update. Default is the zone whose SOA covers O(name), found by asking O(server) (or the
        system resolver when O(server) is not given).
    type: str
  state:
    description:
      - V(present) makes the A and AAAA RRsets exactly O(ipv4) and O(ipv6).
      - V(absent) removes the RRsets of the families that are given (O(ipv4) and/or O(ipv6), any value,
        V([]) included); their contents do not matter.
    type: str
    choices: [present, absent]
    default: present
  ipv4:
    description:
      - IPv4 addresses for the A RRset. Omitted means the A RRset is left alone. An empty list removes it.
    type: list
    elements: str
  ipv6:
    description:
      - IPv6 addresses for the AAAA RRset. Omitted means the AAAA RRset is left alone. An empty list removes it.
    type: list
    elements: str
  allow_prefixes:
    description:
      - Only global unicast addresses are published. An address in a special-purpose range (link-local,
        unique local C(fc00::/7), documentation C(2001:db8::/32), C(3fff::/20), C(192.0.2.0/24),
        C(198.51.100.0/24), C(203.0.113.0/24), loopback, private RFC 1918, shared C(100.64.0.0/10),
        benchmarking C(198.18.0.0/15), and the rest of the IANA special-purpose registries) is refused with
        the reason, and nothing is sent.
      - This lists prefixes, for example V(["198.51.100.0/24", "2001:db8:5::/48"]), whose addresses are
        published all the same, for a lab or a test. Multicast and unspecified addresses are always refused.
      - The ntsops.nts.ddns_agent role applies the same policy (C(ddns_agent_allow_prefixes)).
    type: list
    elements: str
    default: []
  ttl:
    description:
      - TTL of the records in seconds. With O(budget) as well, it must not exceed what the budget allows.
      - One of O(ttl) and O(budget) is required with O(state=present).
    type: int
  budget:
    description:
      - The recovery budget from which the longest safe TTL is derived; used as the TTL when O(ttl) is omitted.
    type: dict
    suboptions:
      clients:
        description: 'The client mix, for example V([{"client": "chrony-4.3", "maxpoll": 10}]).'

        type: list
        elements: dict
        required: true
      update_latency:
        description: Seconds from an address change until the primary has the new records.
        type: float
        required: true
  allow_ttl_over_budget:
    description: Publish a TTL above the budget's maximum with a warning instead of failing.
    type: bool
    default: false
  server:
    description:
      - Address or host name of the primary to update. Default is the zone's SOA MNAME.
    type: str
  port:
    description: Port of the primary, also used to query the servers in the NS set.
    type: int
    default: 53
  protocol:
    description: Transport for queries and the update. V(udp) falls back to TCP on a truncated answer.
    type: str
    choices: [tcp, udp]
    default: tcp
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 5
  retries:
    description: How many times a timed-out message is sent again. No other error is retried.
    type: int
    default: 2
  wait_for_propagation:
    description: After an update (or when nothing changed), wait until every server in the NS set serves the records.
    type: bool
    default: true
  propagation_timeout:
    description: Seconds to wait for propagation before failing (the update itself stays applied).
    type: float
    default: 30
attributes:
  check_mode:
    support: full
    details: Reads the records and the NS set, reports what would change, sends no update.
  diff_mode:
    support: full
    details: The managed RRsets as zone-file lines before and after.
notes:
  - The servers in the NS set are all queried on O(port). Secondaries get the change by NOTIFY; BIND delays
    NOTIFY by C(notify-delay), 5 s by default, which counts against the update latency of the budget.
  - Value-dependent prerequisites compare addresses only (RFC 2136 section 3.2.5); a concurrent change of the
    TTL alone is not detected.
seealso:
  - name: RFC 2136
    description: Dynamic Updates in the Domain Name System.
    link: https://www.rfc-editor.org/rfc/rfc2136
  - module: community.general.nsupdate
"""

EXAMPLES = r"""
- name: Publish the NTS server's addresses, TTL derived from the recovery budget
  ntsops.nts.ddns_record:
    name: time.example.net
    ipv4: [192.0.2.10]
    ipv6: ["2001:db8::10"]
    budget:
      clients:
        - {client: chrony-4.3, maxpoll: 10}
      update_latency: 30
    server: 192.0.2.53
    key_name: ntsops-ddns
    key_secret: "{{ vault_ddns_secret }}"

- name: Move only the A record, key from a BIND key file on the host
  ntsops.nts.ddns_record:
    name: time.example.net
    ipv4: [198.51.100.7]
    ttl: 60
    key_file: /etc/bind/ntsops-ddns.key

- name: Publish a lab's documentation-range address (refused without allow_prefixes)
  ntsops.nts.ddns_record:
    name: time.lab.example.test
    ipv4: [198.51.100.7]
    ipv6: ["2001:db8:5::7"]
    allow_prefixes: [198.51.100.0/24, "2001:db8:5::/48"]
    ttl: 60
    key_file: /etc/bind/ntsops-ddns.key

- name: Remove the AAAA record
  ntsops.nts.ddns_record:
    name: time.example.net
    state: absent
    ipv6: []
    key_file: /etc/bind/ntsops-ddns.key
"""

RETURN = r"""
changed:
  description: Whether an update was (or in check mode would be) sent.
  returned: always
  type: bool
name:
  description: The owner name, absolute.
  returned: success
  type: str
  sample: time.example.net.
zone:
  description: The zone updated.
  returned: success
  type: str
  sample: example.net.
primary:
  description: The server updated, as address#port.
  returned: success
  type: str
  sample: 192.0.2.53#53
records:
  description: The managed RRsets before and after, per family (V(ipv4), V(ipv6)).
  returned: success
  type: dict
  contains:
    before:
      description: Addresses and TTL read from the primary (TTL null when the RRset does not exist).
      type: dict
      sample: {"ipv4": {"addresses": ["192.0.2.9"], "ttl": 300}}
    after:
      description: Addresses and TTL after the run.
      type: dict
      sample: {"ipv4": {"addresses": ["192.0.2.10"], "ttl": 60}}
ttl:
  description: The TTL published (for V(present)).
  returned: success
  type: int
  sample: 60
budget_max_ttl:
  description: The longest TTL the budget allows, when O(budget) was given.
  returned: success
  type: int
update_s:
  description: Seconds the update took, null when none was sent.
  returned: success
  type: float
propagation_s:
  description: Seconds until every server in the NS set served the records, null when not waited for.
  returned: success
  type: float
servers:
  description: One entry per address of every server in the NS set.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The name server's name.
      type: str
    address:
      description: The address asked.
      type: str
    answered:
      description: Whether it answered the SOA query.
      type: bool
    serial:
      description: The zone serial it serves.
      type: int
    up_to_date:
      description: Whether it serves exactly the expected records.
      type: bool
    error:
      description: Why it could not be checked, else null.
      type: str
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ntsops.nts.plugins.module_utils._dns.budget import choose_ttl
from ansible_collections.ntsops.nts.plugins.module_utils._dns.client import DnsClient, DnspythonTransport, Endpoint
from ansible_collections.ntsops.nts.plugins.module_utils._dns.dnspython import require_dnspython
from ansible_collections.ntsops.nts.plugins.module_utils._dns.ensure import EnsureResult, ensure_records
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import (
    DdnsInputError,
    DdnsPropagationError,
    DdnsUnreachableError,
)
from ansible_collections.ntsops.nts.plugins.module_utils._dns.policy import parse_allow_prefixes, require_publishable
from ansible_collections.ntsops.nts.plugins.module_utils._dns.records import desired_states
from ansible_collections.ntsops.nts.plugins.module_utils._dns.tsig import TSIG_ALGORITHMS, make_key
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def _endpoint(server: str | None, port: int, transport: DnspythonTransport) -> Endpoint | None:
    if not server:
        return None
    try:
        return Endpoint(ipaddress.ip_address(server).compressed, port)
    except ValueError:
        pass
    addresses = transport.host_addresses(server)
    if not addresses:
        raise DdnsUnreachableError(f"server {server!r} has no address")
    return Endpoint(addresses[0], port)


def run(module: AnsibleModule) -> dict[str, object]:
    p = module.params
    require_dnspython()
    if p["state"] == "present":
        ttl, limit, warnings = choose_ttl(p["ttl"], p["budget"], p["allow_ttl_over_budget"])
    else:
        ttl, limit, warnings = 0, None, []
    for warning in warnings:
        module.warn(warning)
    wanted = desired_states(p["state"], ttl, p["ipv4"], p["ipv6"])
    if not wanted:
        raise DdnsInputError("give ipv4 and/or ipv6 (an empty list removes that family's records)")
    allowed = parse_allow_prefixes(p["allow_prefixes"])
    for family, state in wanted.items():
        require_publishable(family, state.addresses, allowed)
    key = make_key(p["key_name"], p["key_secret"], p["key_algorithm"], p["key_file"])
    transport = DnspythonTransport()
    client = DnsClient(transport, key=key, timeout=p["timeout"], retries=p["retries"], tcp=p["protocol"] == "tcp")
    try:
        result = ensure_records(
            client,
            p["name"],
            wanted,
            ttl=ttl,
            server=_endpoint(p["server"], p["port"], transport),
            zone=p["zone"],
            check_mode=module.check_mode,
            wait=p["wait_for_propagation"],
            propagation_timeout=p["propagation_timeout"],
        )
    except DdnsPropagationError as exc:
        # The update is applied: report it as a change, with what each server serves.
        module.fail_json(msg=str(exc), **_output(module, exc.result, limit))
    return _output(module, result, limit)


def _output(module: AnsibleModule, result: EnsureResult, limit: int | None) -> dict[str, object]:
    output: dict[str, object] = result.as_dict()
    output["budget_max_ttl"] = limit
    if module._diff:
        output["diff"] = {
            "before_header": f"{result.plan.name} (serial {result.plan.zone.serial})",
            "after_header": result.plan.name,
            "before": result.plan.zone_text("before"),
            "after": result.plan.zone_text("after"),
        }
    return output


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "zone": {"type": "str"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "ipv4": {"type": "list", "elements": "str"},
            "ipv6": {"type": "list", "elements": "str"},
            "allow_prefixes": {"type": "list", "elements": "str", "default": []},
            "ttl": {"type": "int"},
            "budget": {
                "type": "dict",
                "options": {
                    "clients": {"type": "list", "elements": "dict", "required": True},
                    "update_latency": {"type": "float", "required": True},
                },
            },
            "allow_ttl_over_budget": {"type": "bool", "default": False},
            "server": {"type": "str"},
            "port": {"type": "int", "default": 53},
            "key_name": {"type": "str"},
            "key_secret": {"type": "str", "no_log": True},
            "key_algorithm": {"type": "str", "default": "hmac-sha256", "choices": list(TSIG_ALGORITHMS)},
            "key_file": {"type": "path"},
            "protocol": {"type": "str", "choices": ["tcp", "udp"], "default": "tcp"},
            "timeout": {"type": "float", "default": 5},
            "retries": {"type": "int", "default": 2},
            "wait_for_propagation": {"type": "bool", "default": True},
            "propagation_timeout": {"type": "float", "default": 30},
        },
        mutually_exclusive=[("key_secret", "key_file")],
        required_if=[("state", "present", ("ttl", "budget"), True)],
        required_one_of=[("ipv4", "ipv6")],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except NtsopsError as exc:
        module.fail_json(msg=str(exc), changed=False)


if __name__ == "__main__":
    main()
