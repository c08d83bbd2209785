#!/usr/bin/python
# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: chrony_ntskeys
short_description: Stage and switch chronyd's NTS server cookie keys for a planned move
version_added: 0.1.0
description:
  - Reads and rewrites the C(ntskeys) file chronyd keeps in its C(ntsdumpdir) (four cookie keys, the
    current one sealing new cookies). chronyd reads the file when it starts, and on C(chronyc rekey)
    when C(ntsrotate 0) is set; with C(ntsrotate) above 0 it writes the file itself at every rotation
    and when it stops, so change the file only while chronyd runs with C(ntsrotate 0) or is stopped.
  - V(staged) makes a fresh key current and keeps the previous current key and the one before it, so
    cookies issued before stay valid and every cookie issued afterwards is sealed with the new key.
  - V(switched) keeps only the current key (and the future key after it) and replaces the others. The
    cookies issued before the staging stop decoding, those issued after it keep working.
  - V(read) only reads and checks the file.
  - No key material is returned; the file keeps its owner, group and mode (0600 for chronyd's user).
author:
  - ntsops developers (@ntsops)
attributes:
  check_mode:
    description: Reads and checks the file and reports what would change, without writing.
    support: full
  diff_mode:
    description: The file holds secrets, so no diff is shown.
    support: none
options:
  path:
    description: The ntskeys file (chronyd's C(ntsdumpdir) plus C(/ntskeys)).
    type: path
    default: /var/lib/chrony/ntskeys
  state:
    description: V(read), V(staged) or V(switched), see the description.
    type: str
    choices: [read, staged, switched]
    default: read
  expect_current_id:
    description:
      - With V(switched), the hexadecimal id V(staged) returned as RV(current_id). The module fails,
        writing nothing, when the current key is another one (the set changed since it was staged).
    type: str
notes:
  - V(staged) and V(switched) create fresh random keys every time they run, so they always report a change.
seealso:
  - name: chrony nts_ke_server.c (key slots, save_keys and load_keys)
    description: How chronyd saves, loads and selects its server keys.
    link: https://gitlab.com/chrony/chrony/-/blob/master/nts_ke_server.c
"""

EXAMPLES = r"""
- name: Stage a new current cookie key while keeping the old ones (chronyd runs with ntsrotate 0)
  ntsops.nts.chrony_ntskeys:
    state: staged
  register: staged

- name: Load it
  ansible.builtin.command: chronyc rekey
  changed_when: true

- name: Later, void every cookie issued before the staging
  ntsops.nts.chrony_ntskeys:
    state: switched
    expect_current_id: "{{ staged.current_id }}"
"""

RETURN = r"""
format:
  description: The file format, V(NKS0) (chrony up to 4.3) or V(NKS1) (4.4 and later).
  returned: always
  type: str
  sample: NKS0
ids:
  description: The key ids in the file after the change (oldest first, the future key last), hexadecimal.
  returned: always
  type: list
  elements: str
  sample: ["6B1C2A02", "0F3E9D43", "A0B1C2D0", "11223341"]
current_id:
  description: The id of the key that seals new cookies after the change.
  returned: always
  type: str
  sample: A0B1C2D0
previous_current_id:
  description: The id of the key that sealed new cookies before the change.
  returned: always
  type: str
  sample: 0F3E9D43
kept_ids:
  description: The ids that were in the file before and still are.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._nts import ntskeys


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "default": "/var/lib/chrony/ntskeys"},
            "state": {"type": "str", "choices": ["read", "staged", "switched"], "default": "read"},
            "expect_current_id": {"type": "str"},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    state = module.params["state"]
    try:
        try:
            with open(path, encoding="ascii") as handle:
                before = ntskeys.parse(handle.read())
        except (OSError, UnicodeDecodeError) as exc:
            raise ntskeys.NtsKeysError(f"cannot read {path}: {exc}") from exc
        if state == "staged":
            after = ntskeys.stage(before)
        elif state == "switched":
            expect = module.params["expect_current_id"]
            try:
                expect_id = None if expect is None else int(expect, 16)
            except ValueError:
                raise ntskeys.NtsKeysError(f"expect_current_id {expect!r} is not hexadecimal") from None
            after = ntskeys.switch(before, expect_id)
        else:
            after = before
    except NtsopsError as exc:
        module.fail_json(msg=f"{path}: {exc}")
    changed = after != before
    if changed and not module.check_mode:
        stat = os.stat(path)
        temp = f"{path}.ntsops.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(ntskeys.render(after))
        os.chown(temp, stat.st_uid, stat.st_gid)
        os.chmod(temp, stat.st_mode & 0o7777)
        os.replace(temp, path)
    module.exit_json(
        changed=changed, format=after.format, ids=after.ids, current_id=f"{after.current.id:08X}",
        previous_current_id=f"{before.current.id:08X}",
        kept_ids=[key_id for key_id in after.ids if key_id in before.ids],
    )


if __name__ == "__main__":
    main()
