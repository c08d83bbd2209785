"""The ntskeys transitions of the planned move, on files laid out as chronyd's save_keys() writes them."""

from __future__ import annotations

import itertools

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._nts import ntskeys

# As chrony 4.3 saves it with key 2 current: slots 0, 1, 2 (current), 3 (future).
NKS0 = "NKS0\n15 12.5\n" + "".join(f"{0x10000000 * (i + 1) + i:08X} {('%02X' % (i + 1)) * 32}\n" for i in range(4))
# As chrony 4.6 saves it with key 0 current: slots 2, 3, 0 (current), 1 (future).
NKS1 = "NKS1\n3.0\n" + "".join(f"{0xAB000000 + s:08X} {('%02X' % (s + 7)) * 16} 30\n" for s in (2, 3, 0, 1))


def counter_bytes() -> object:
    counter = itertools.count(1)
    return lambda n: bytes([next(counter) % 256]) * n


def test_parse_finds_the_current_key_as_load_keys_does() -> None:
    keyset = ntskeys.parse(NKS0)
    assert keyset.current.id == 0x30000002 and keyset.current.slot == 2
    assert ntskeys.parse(NKS1).current.id == 0xAB000000
    assert ntskeys.render(keyset) == NKS0
    assert ntskeys.render(ntskeys.parse(NKS1)) == NKS1


def test_stage_makes_a_fresh_key_current_and_keeps_the_two_before_it() -> None:
    before = ntskeys.parse(NKS0)
    staged = ntskeys.stage(before, counter_bytes())
    old = {key.id for key in before.keys}
    assert staged.current.slot == 3 and staged.current.id not in old
    kept = {key.id for key in staged.keys} & old
    assert kept == {0x20000001, 0x30000002}  # the old current key and the one before it
    # the file reloads to the same set, current key included
    assert ntskeys.parse(ntskeys.render(staged)) == staged
    assert staged.age == 0.0


def test_switch_keeps_only_the_staged_key_and_its_future_key() -> None:
    staged = ntskeys.stage(ntskeys.parse(NKS1), counter_bytes())
    switched = ntskeys.switch(ntskeys.parse(ntskeys.render(staged)), staged.current.id, counter_bytes())
    assert switched.current == staged.current
    assert {key.id for key in switched.keys} & {key.id for key in staged.keys} == {
        staged.current.id, staged.keys[-1].id}
    assert all(key.aead == 30 for key in switched.keys)
    assert ntskeys.parse(ntskeys.render(switched)) == switched


def test_switch_refuses_a_set_that_is_not_the_staged_one() -> None:
    with pytest.raises(ntskeys.NtsKeysError, match="not the staged"):
        ntskeys.switch(ntskeys.parse(NKS0), 0x12345670)


@pytest.mark.parametrize("text", [
    "", "NKS9\n", "NKS0\n16 1.0\n", NKS0.replace("NKS0\n15 12.5", "NKS0\n15"),
    "\n".join(NKS0.splitlines()[:5]) + "\n",  # three keys
    NKS0.replace("40000003", "40000001"),  # slots out of order
    NKS0.replace("01" * 32, "01" * 31),  # short key
])
def test_parse_rejects_what_chronyd_would_not_have_written(text: str) -> None:
    with pytest.raises(ntskeys.NtsKeysError):
        ntskeys.parse(text)
