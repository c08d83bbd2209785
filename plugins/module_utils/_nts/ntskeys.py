# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""chronyd's saved NTS server cookie keys (the ``ntskeys`` file in ``ntsdumpdir``).

What chronyd does with the keys (chrony nts_ke_server.c, 4.3 to 4.6):

* it holds ``MAX_SERVER_KEYS`` (4) keys; a key's slot is the low ``KEY_ID_INDEX_BITS``
  (2) bits of its 32-bit id, and a cookie carries the id of the key that sealed it,
  so a cookie decodes (``NKS_DecodeCookie``) only while a key with exactly that id
  sits in its slot;
* new cookies are sealed with the current key only (``NKS_GenerateCookie``), and the
  slot after it holds one "future" key (``FUTURE_KEYS``) not used yet;
* ``save_keys()`` writes the four keys oldest first, the future key last, and
  ``load_keys()`` makes the key BEFORE the last line's slot current; both at start
  and, when ``ntsrotate 0``, on ``chronyc rekey`` (``NKS_ReloadKeys``); with
  ``ntsrotate`` above 0 chronyd also saves them at every rotation and when it stops,
  and ignores ``chronyc rekey``.

File formats: ``NKS0`` (chrony up to 4.3): a line ``<AEAD> <age>``, the AEAD being 15
(AEAD_AES_SIV_CMAC_256) for every key, then ``<id> <hex key>`` lines; ``NKS1`` (4.4
and later, which still read ``NKS0``): a line ``<age>``, then ``<id> <hex key>
<AEAD>`` lines, and exactly four keys whose slots follow each other.

The planned move uses two transitions, one poll of the slowest client apart, after the
new address is announced and DNS is fresh (docs/recovery-model.md, "The key change
in two steps"):

* ``stage()``: a fresh key becomes current (and a fresh future key follows it) while
  the previous current key and the one before it stay loaded. No cookie stops
  decoding; every cookie issued from then on, by NTS-KE or in an NTP response
  (nts_ntp_server.c: one new cookie for each one used), is sealed with the new key.
* ``switch()``: every key except the staged current one and its future key is
  replaced, so the cookies issued before the staging stop decoding. A client that
  re-keyed after the staging holds only new cookies and is not NAKed (a NAK before
  its first valid response after NTS-KE leaves chrony's NTS-KE back-off armed,
  nts_ntp_client.c, so it would fall silent); every other client gets one NAK and
  re-keys at once, learning the new address.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError

# nts_ke_server.c: KEY_ID_INDEX_BITS, MAX_SERVER_KEYS, FUTURE_KEYS, DUMP_IDENTIFIER.
KEY_ID_INDEX_BITS = 2
MAX_SERVER_KEYS = 1 << KEY_ID_INDEX_BITS
FUTURE_KEYS = 1
FORMATS = ("NKS0", "NKS1")
# siv.h / nts_ke.h AEAD ids and their key lengths (SIV_GetKeyLength).
KEY_LENGTHS = {15: 32, 30: 16}  # AEAD_AES_SIV_CMAC_256, AEAD_AES_128_GCM_SIV
# 4.3's only server cookie AEAD (SERVER_COOKIE_SIV).
NKS0_AEAD = 15


class NtsKeysError(NtsopsError):
    """The ntskeys file cannot be read or does not hold what a transition needs."""


@dataclass(frozen=True)
class ServerKey:
    id: int
    key: bytes
    aead: int

    @property
    def slot(self) -> int:
        return self.id % MAX_SERVER_KEYS


@dataclass(frozen=True)
class KeySet:
    """The keys in file order (oldest first, the future key last)."""

    format: str
    age: float
    keys: tuple[ServerKey, ...]

    @property
    def current(self) -> ServerKey:
        """The key that seals new cookies: the one in the slot before the last line's (load_keys)."""
        slot = (self.keys[-1].slot + MAX_SERVER_KEYS - FUTURE_KEYS) % MAX_SERVER_KEYS
        return next(key for key in self.keys if key.slot == slot)

    @property
    def ids(self) -> list[str]:
        return [f"{key.id:08X}" for key in self.keys]


def _header(fmt: str, line: str) -> tuple[int, float]:
    """(AEAD of the keys, or 0 when each line names its own; key age) from the second line."""
    words = line.split()
    try:
        if fmt == "NKS0" and len(words) == 2 and int(words[0]) == NKS0_AEAD:
            return NKS0_AEAD, float(words[1])
        if fmt == "NKS1" and len(words) == 1:
            return 0, float(words[0])
    except ValueError:
        pass
    raise NtsKeysError(f"bad ntskeys header line {line!r}")


def _key_line(fmt: str, number: int, line: str, default_aead: int) -> ServerKey:
    words = line.split()
    if len(words) != (2 if fmt == "NKS0" else 3):
        raise NtsKeysError(f"ntskeys line {number}: expected {'id key' if fmt == 'NKS0' else 'id key aead'}")
    try:
        key_id = int(words[0], 16)
        key = bytes.fromhex(words[1])
        aead = default_aead if fmt == "NKS0" else int(words[2])
    except ValueError:
        raise NtsKeysError(f"ntskeys line {number}: not hexadecimal") from None
    if not 0 <= key_id < 2**32 or KEY_LENGTHS.get(aead) != len(key):
        raise NtsKeysError(f"ntskeys line {number}: key id or key length does not fit AEAD {aead}")
    return ServerKey(key_id, key, aead)


def parse(text: str) -> KeySet:
    """A KeySet from the file's text; raises NtsKeysError unless it is a complete set chronyd wrote."""
    lines = text.splitlines()
    if not lines or lines[0] not in FORMATS:
        raise NtsKeysError(f"not an ntskeys file (first line {lines[0][:8] if lines else ''!r}, expected NKS0 or NKS1)")
    fmt = lines[0]
    default_aead, age = _header(fmt, lines[1] if len(lines) > 1 else "")
    keys = [_key_line(fmt, number, line, default_aead) for number, line in enumerate(lines[2:], start=3)]
    if len(keys) != MAX_SERVER_KEYS:
        raise NtsKeysError(f"ntskeys holds {len(keys)} keys; chronyd saves {MAX_SERVER_KEYS}")
    for index in range(1, len(keys)):
        if (keys[index].slot - keys[index - 1].slot) % MAX_SERVER_KEYS != 1:
            raise NtsKeysError("ntskeys keys are not in slot order (not written by chronyd's save_keys)")
    return KeySet(fmt, age, tuple(keys))


def render(keyset: KeySet) -> str:
    """The file text, as save_keys() writes it."""
    if keyset.format == "NKS0":
        lines = ["NKS0", f"{NKS0_AEAD} {keyset.age:.1f}"]
        lines += [f"{key.id:08X} {key.key.hex().upper()}" for key in keyset.keys]
    else:
        lines = ["NKS1", f"{keyset.age:.1f}"]
        lines += [f"{key.id:08X} {key.key.hex().upper()} {key.aead}" for key in keyset.keys]
    return "\n".join(lines) + "\n"


def _fresh(slot: int, aead: int, randbytes: Callable[[int], bytes]) -> ServerKey:
    # generate_key(): a random id with the slot in its low bits, a random key.
    high = int.from_bytes(randbytes(4), "big") & (-1 << KEY_ID_INDEX_BITS) & 0xFFFFFFFF
    return ServerKey(high | slot, randbytes(KEY_LENGTHS[aead]), aead)


def _ordered(keys: dict[int, ServerKey], future_slot: int) -> tuple[ServerKey, ...]:
    """The four keys oldest first with the future key last (save_keys order)."""
    return tuple(keys[(future_slot + 1 + i) % MAX_SERVER_KEYS] for i in range(MAX_SERVER_KEYS))


def stage(keyset: KeySet, randbytes: Callable[[int], bytes] = os.urandom) -> KeySet:
    """A fresh current key and future key; the current key and the one before it stay."""
    current = keyset.current
    new_slot = (current.slot + 1) % MAX_SERVER_KEYS
    keys = {key.slot: key for key in keyset.keys}
    keys[new_slot] = _fresh(new_slot, current.aead, randbytes)
    future = (new_slot + FUTURE_KEYS) % MAX_SERVER_KEYS
    keys[future] = _fresh(future, current.aead, randbytes)
    return replace(keyset, age=0.0, keys=_ordered(keys, future))


def switch(keyset: KeySet, expect_current: int | None = None,
           randbytes: Callable[[int], bytes] = os.urandom) -> KeySet:
    """Only the current key and its future key stay; the others are replaced.

    ``expect_current``: the id stage() made current; a different current key means
    the file is not the staged set (chronyd rotated or was given other keys), and
    switching it would void the cookies of clients already told the new address.
    """
    current = keyset.current
    if expect_current is not None and current.id != expect_current:
        raise NtsKeysError(
            f"the current cookie key is {current.id:08X}, not the staged {expect_current:08X}: "
            "the key set changed since it was staged")
    future = (current.slot + FUTURE_KEYS) % MAX_SERVER_KEYS
    keys = {key.slot: key for key in keyset.keys}
    for slot in range(MAX_SERVER_KEYS):
        if slot not in (current.slot, future):
            keys[slot] = _fresh(slot, current.aead, randbytes)
    return replace(keyset, keys=_ordered(keys, future))
