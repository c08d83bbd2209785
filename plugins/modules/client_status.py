#!/usr/bin/python
# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: client_status
short_description: Read the sources an NTP client daemon uses and their NTS state
version_added: 0.1.0
description:
  - Asks the running chronyd (C(chronyc -c sources) and C(chronyc -c authdata)) or NTPsec
    ntpd (C(ntpq -c associations) and each association's variables) on the host which sources
    it has, which one it synchronises to, whether each is NTS-authenticated and how many NTS
    cookies it holds.
  - Returns one record per source with the same keys for both daemons, so a play can wait
    until a client has synchronised over NTS to a given server (see the examples).
  - The module only reads; it never reports a change.
author:
  - ntsops developers (@ntsops)
attributes:
  check_mode:
    description: Runs the same read-only queries in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is nothing to diff.
    support: none
options:
  implementation:
    description:
      - The client daemon to ask.
      - V(auto) asks chronyd when C(chronyc) is on the E(PATH), else NTPsec's ntpd when C(ntpq) is.
    type: str
    choices: [auto, chrony, ntpsec]
    default: auto
notes:
  - The daemon must be running; when it does not answer, the module fails with the command's output.
  - For chrony the module runs C(chronyc -c) twice, with C(-N) (names as configured) and with C(-n)
    (numeric addresses), each with both commands in one session. For NTPsec it runs C(ntpq -n) twice,
    for the association list and for the variables of every association.
seealso:
  - module: ntsops.nts.endpoint_check
"""

EXAMPLES = r"""
- name: Wait until chronyd holds NTS cookies from time.example.net and synchronises to it
  ntsops.nts.client_status:
  register: client
  until: >-
    client.sources | selectattr('name', 'eq', 'time.example.net') | selectattr('nts')
    | selectattr('selected') | selectattr('cookies', 'gt', 0) | list | length > 0
  retries: 30
  delay: 2

- name: Show which source the client uses
  ansible.builtin.debug:
    msg: "{{ client.selected }}"
"""

RETURN = r"""
implementation:
  description: The daemon that answered.
  returned: always
  type: str
  sample: chrony
sources:
  description: One record per source the daemon knows.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The source as configured (a host name or an address; chrony C(-N), NTPsec's C(srchost)).
      type: str
      sample: time.example.net
    address:
      description: The address the daemon uses for the source now.
      type: str
      sample: 192.0.2.10
    mode:
      description: V(server), V(peer) or V(refclock) (chrony only).
      type: str
      sample: server
    selected:
      description: Whether the daemon synchronises to this source now.
      type: bool
    state:
      description:
        - The daemon's own word for the source, chrony's state (C(*), C(+), C(-), C(?), C(x), C(~)) or
          NTPsec's condition (C(sys.peer), C(candidate), C(outlier), C(reject), ...).
      type: str
      sample: "*"
    stratum:
      description: Stratum of the source; null when not known yet.
      type: int
      sample: 2
    poll:
      description: Polling interval as a power of two seconds.
      type: int
      sample: 6
    reach:
      description: Reachability register of the last eight polls as a number (255 all answered, 0 none).
      type: int
      sample: 255
    last_rx:
      description: Seconds since the last valid response; null when there was none.
      type: float
      sample: 12
    offset:
      description: Offset of the source from the local clock in seconds (NTP sign); null when not measured.
      type: float
      sample: -0.000123
    nts:
      description: Whether the source is authenticated with NTS.
      type: bool
    cookies:
      description: NTS cookies the daemon holds for the source; null for a source without NTS.
      type: int
      sample: 8
    naks:
      description: NTS NAKs chronyd received from the source; null without NTS and for NTPsec (it does not say).
      type: int
      sample: 0
selected:
  description: The record of the source the daemon synchronises to; null when none is selected.
  returned: always
  type: dict
"""

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ntsops.nts.plugins.module_utils._check import daemon_status


def _run(module: AnsibleModule, argv: list[str], data: str | None = None) -> str:
    rc, out, err = module.run_command(argv, data=data, check_rc=False)
    if rc != 0:
        module.fail_json(msg=f"{' '.join(argv)} failed (rc {rc}): {(err or out).strip()}", rc=rc)
    return str(out)


def _chrony(module: AnsibleModule, chronyc: str) -> list[dict[str, Any]]:
    # Both commands in one chronyc session: the rows describe the same moment.
    commands = "sources\nauthdata\n"
    named = _run(module, [chronyc, "-c", "-N"], data=commands)
    numeric = _run(module, [chronyc, "-c", "-n"], data=commands)
    return daemon_status.chrony_client_sources(
        daemon_status.chronyc_sources(named),
        daemon_status.chronyc_authdata(named),
        daemon_status.chronyc_sources(numeric),
    )


def _ntpsec(module: AnsibleModule, ntpq: str) -> list[dict[str, Any]]:
    associations = daemon_status.ntpq_associations(_run(module, [ntpq, "-n", "-c", "associations"]))
    if not associations:
        return []
    argv = [ntpq, "-n"]
    for assoc in associations:
        argv += ["-c", f"rv {assoc['assid']} {','.join(daemon_status.NTPQ_PEER_VARIABLES)}"]
    return daemon_status.ntpsec_client_sources(associations, daemon_status.ntpq_variables(_run(module, argv)),
                                               now=time.time())


def main() -> None:
    module = AnsibleModule(
        argument_spec={"implementation": {"type": "str", "choices": ["auto", "chrony", "ntpsec"], "default": "auto"}},
        supports_check_mode=True,
    )
    implementation = module.params["implementation"]
    if implementation == "auto":
        implementation = "chrony" if module.get_bin_path("chronyc") else "ntpsec" if module.get_bin_path("ntpq") else ""
        if not implementation:
            module.fail_json(msg="neither chronyc nor ntpq was found on the PATH")
    if implementation == "chrony":
        sources = _chrony(module, module.get_bin_path("chronyc", required=True))
    else:
        sources = _ntpsec(module, module.get_bin_path("ntpq", required=True))
    selected = next((source for source in sources if source["selected"]), None)
    module.exit_json(changed=False, implementation=implementation, sources=sources, selected=selected)


if __name__ == "__main__":
    main()
