#!/usr/bin/python
# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cookie_check
short_description: Prove that NTS cookies survive a server restart, certificate renewal or key rotation
version_added: 0.1.0
description:
  - With O(step=save), runs NTS-KE on every address of O(name) (as M(ntsops.nts.endpoint_check) does) and
    keeps, per address, one cookie with the keys it belongs to in O(state_file).
  - With O(step=verify), sends one NTS-protected NTP request with each saved cookie and reports whether
    the server still accepts it.
  - A server that kept its cookie keys across the change (chrony C(ntsdumpdir), NTPsec C(nts cookie),
    ntpd-rs C(key-storage-path)) accepts the old cookie; one that lost them answers with an NTS NAK, and
    then every client it serves needs NTS-KE at once. Run O(step=save) before the restart, renewal or
    rotation and O(step=verify) after it.
  - The module fails when an address cannot be saved, or when a saved cookie is not accepted; RV(problems)
    names each address.
author:
  - ntsops developers (@ntsops)
requirements:
  - cryptography >= 45 (AES-SIV with the empty plaintext of every NTS request fails in older versions)
extends_documentation_fragment:
  - ntsops.nts._attributes
  - ntsops.nts._tls_check
  - ntsops.nts._tls_check.nts_ke_target
attributes:
  check_mode:
    support: full
    details: With O(step=save) it runs NTS-KE but does not write O(state_file); O(step=verify) only reads.
  diff_mode:
    support: none
    details: The state file holds secrets, so no diff is shown.
options:
  step:
    description: Save cookies now, or verify the cookies saved earlier.
    type: str
    choices: [save, verify]
    required: true
  state_file:
    description:
      - Where the saved cookies and their keys are kept, on the host the module runs on.
      - It holds session keys and cookies, which let whoever reads it make requests in a client's name until
        the server's keys rotate out, so it is written with mode 0600 and should be removed when done.
    type: path
    required: true
  addresses:
    description: With O(step=save), these addresses instead of resolving O(name).
    type: list
    elements: str
notes:
  - NTS servers decrypt cookies without keeping state, so one saved cookie may be verified any number of times.
  - chrony keeps four server keys, the current one, two older ones and one for the future (nts_ke_server.c
    C(MAX_SERVER_KEYS), C(FUTURE_KEYS)), and rotates them every C(ntsrotate) seconds (a week by default), so a
    cookie saved more than two rotations before the check is refused even when the keys were kept.
seealso:
  - module: ntsops.nts.endpoint_check
"""

EXAMPLES = r"""
- name: Keep a cookie of every address before the restart
  ntsops.nts.cookie_check:
    name: time.example.net
    step: save
    state_file: /run/ntsops/cookies-time.example.net.json
    ca_path: /etc/ssl/private-ca.pem
  delegate_to: localhost

- name: Restart chronyd to load the renewed certificate
  ansible.builtin.systemd_service:
    name: chrony
    state: restarted

- name: The old cookies must still be accepted (no NTS-KE herd)
  ntsops.nts.cookie_check:
    name: time.example.net
    step: verify
    state_file: /run/ntsops/cookies-time.example.net.json
  delegate_to: localhost
"""

RETURN = r"""
ok:
  description: True when every address was saved (O(step=save)) or accepted its saved cookie (O(step=verify)).
  returned: always
  type: bool
problems:
  description: Every finding, one line each, starting with the address.
  returned: always
  type: list
  elements: str
  sample: ["203.0.113.7: NTP 203.0.113.7 port 123 answered the saved cookie with an NTS NAK: ..."]
saved:
  description: The addresses whose cookie was saved.
  returned: when O(step=save)
  type: list
  elements: str
  sample: ["203.0.113.7", "2001:db8::7"]
saved_at:
  description: When the verified cookies were saved (UTC, ISO 8601).
  returned: when O(step=verify)
  type: str
  sample: "2026-12-02T18:30:00+00:00"
addresses:
  description: One entry per saved cookie.
  returned: when O(step=verify)
  type: list
  elements: dict
  contains:
    address:
      description: The NTS-KE address the cookie came from.
      type: str
    ntp_address:
      description: The NTP server the cookie was sent to (negotiated, or the NTS-KE address).
      type: str
    ntp_port:
      description: Its NTP port.
      type: int
    accepted:
      description: True when the server answered the old cookie with an authenticated response.
      type: bool
    nak:
      description: True when it answered with an NTS NAK (its cookie keys are gone).
      type: bool
  sample:
    - {address: 203.0.113.7, ntp_address: 203.0.113.7, ntp_port: 123, accepted: true, nak: false}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ntsops.nts.plugins.module_utils._check.cookie_continuity import (
    load_state,
    save_cookies,
    state_text,
    verify_cookies,
)
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import CheckOptions
from ansible_collections.ntsops.nts.plugins.module_utils._check.module_args import NTS_KE_TARGET_ARGS
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError


def _write_private(module: AnsibleModule, path: str, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start, then move it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    module.atomic_move(temporary, path)
    os.chmod(path, 0o600)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **NTS_KE_TARGET_ARGS,
            "step": {"type": "str", "required": True, "choices": ["save", "verify"]},
            "state_file": {"type": "path", "required": True},
            "addresses": {"type": "list", "elements": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    path = params["state_file"]
    try:
        if params["step"] == "save":
            options = CheckOptions(
                name=params["name"],
                port=params["port"],
                ca_path=params["ca_path"],
                timeout=params["timeout"],
                aead=tuple(params["aead"]),
            )
            saved = save_cookies(options, addresses=params["addresses"])
            result = {"ok": not saved["problems"], "saved": saved["saved"], "problems": saved["problems"]}
            if saved["problems"]:
                module.fail_json(msg="cookie_check could not save: " + "; ".join(saved["problems"]), **result)
            if not module.check_mode:
                _write_private(module, path, state_text(saved["state"]))
            module.exit_json(changed=True, **result)
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            module.fail_json(msg=f"cannot read the cookie state {path}: {exc.strerror}", ok=False, problems=[])
        result = verify_cookies(load_state(text, params["name"]), timeout=params["timeout"])
    except NtsopsError as exc:
        module.fail_json(msg=str(exc), ok=False, problems=[str(exc)])
    if not result["ok"]:
        module.fail_json(msg="cookie continuity check failed: " + "; ".join(result["problems"]), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
