# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TSIG keys (RFC 8945): from a secret, or from a key file as ``tsig-keygen`` writes it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._dns.dnspython import dns, require_dnspython
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsInputError

TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha224", "hmac-sha384", "hmac-sha512", "hmac-sha1", "hmac-md5")


@dataclass(frozen=True)
class TsigKey:
    name: str
    secret: str = field(repr=False)
    algorithm: str = "hmac-sha256"

    def to_dnspython(self) -> Any:
        require_dnspython()
        try:
            return dns.tsig.Key(self.name, self.secret, self.algorithm)
        except (ValueError, TypeError, dns.exception.DNSException) as exc:
            # binascii.Error (bad base64) is a ValueError; the message never contains the secret.
            problem = type(exc).__name__
            raise DdnsInputError(f"TSIG key {self.name!r}: the secret is not valid base64 ({problem})") from None


_KEY_BLOCK = re.compile(r'key\s+"?([A-Za-z0-9._-]+)"?\s*\{(.*?)\}\s*;', re.S)
_KEY_ALGORITHM = re.compile(r"algorithm\s+\"?([A-Za-z0-9-]+)\"?\s*;")
_KEY_SECRET = re.compile(r'secret\s+"([A-Za-z0-9+/=\s]+)"\s*;')
_COMMENTS = re.compile(r"(#|//)[^\n]*|/\*.*?\*/", re.S)


def parse_bind_key(text: str, key_name: str | None = None) -> TsigKey:
    """Read a key statement as written by ``tsig-keygen`` (BIND's named.conf syntax)."""
    keys = {}
    for match in _KEY_BLOCK.finditer(_COMMENTS.sub("", text)):
        name, body = match.group(1), match.group(2)
        algorithm = _KEY_ALGORITHM.search(body)
        secret = _KEY_SECRET.search(body)
        if algorithm is None or secret is None:
            raise DdnsInputError(f"key {name!r} in the key file lacks an algorithm or a secret statement")
        keys[name.rstrip(".")] = TsigKey(name, "".join(secret.group(1).split()), algorithm.group(1).lower())
    if not keys:
        raise DdnsInputError('no key statement (key "name" { algorithm ...; secret "..."; };) in the key file')
    if key_name is None:
        if len(keys) > 1:
            raise DdnsInputError(f"the key file holds several keys ({', '.join(sorted(keys))}); set key_name")
        return next(iter(keys.values()))
    try:
        return keys[key_name.rstrip(".")]
    except KeyError:
        raise DdnsInputError(f"no key named {key_name!r} in the key file (found: {', '.join(sorted(keys))})") from None


def load_key_file(path: str | Path, key_name: str | None = None) -> TsigKey:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DdnsInputError(f"cannot read TSIG key file {str(path)!r}: {exc.strerror}") from None
    return parse_bind_key(text, key_name)


def make_key(
    key_name: str | None, key_secret: str | None, key_algorithm: str = "hmac-sha256", key_file: str | None = None
) -> TsigKey | None:
    """Build the TSIG key from a secret or a BIND key file; None means unsigned updates."""
    if key_file:
        if key_secret:
            raise DdnsInputError("give key_secret or key_file, not both")
        return load_key_file(key_file, key_name)
    if key_secret:
        if not key_name:
            raise DdnsInputError("key_secret needs key_name")
        if key_algorithm not in TSIG_ALGORITHMS:
            raise DdnsInputError(f"unknown TSIG algorithm {key_algorithm!r}; use one of {', '.join(TSIG_ALGORITHMS)}")
        return TsigKey(key_name, key_secret, key_algorithm)
    if key_name:
        raise DdnsInputError("key_name needs key_secret or key_file")
    return None
