"""TSIG keys: BIND key files, secrets, and the errors for bad ones."""

from __future__ import annotations

from typing import Any

import pytest
from ansible_collections.ntsops.nts.plugins.module_utils._dns.errors import DdnsInputError
from ansible_collections.ntsops.nts.plugins.module_utils._dns.tsig import (
    TsigKey,
    load_key_file,
    make_key,
    parse_bind_key,
)
from ansible_collections.ntsops.nts.tests.unit.plugins.module_utils._dns.dns_fakes import SECRET


def test_parse_bind_key_as_written_by_tsig_keygen() -> None:
    text = f'# comment\nkey "ddns-key" {{\n\talgorithm hmac-sha512;\n\tsecret "{SECRET}";\n}};\n'
    key = parse_bind_key(text)
    assert key == TsigKey("ddns-key", SECRET, "hmac-sha512")
    assert SECRET not in repr(key)


def test_parse_bind_key_picks_by_name_and_needs_a_name_among_several() -> None:
    text = f'key "a" {{ algorithm hmac-sha256; secret "{SECRET}"; }};\nkey b {{ algorithm hmac-sha1; secret "QUJD"; }};'
    assert parse_bind_key(text, "b").algorithm == "hmac-sha1"
    with pytest.raises(DdnsInputError, match="several keys"):
        parse_bind_key(text)
    with pytest.raises(DdnsInputError, match="no key named 'c'"):
        parse_bind_key(text, "c")


@pytest.mark.parametrize("text", ["", "options { };", 'key "x" { algorithm hmac-sha256; };'])
def test_parse_bind_key_rejects_files_without_a_usable_key(text: str) -> None:
    with pytest.raises(DdnsInputError):
        parse_bind_key(text)


def test_load_key_file_missing(tmp_path: Any) -> None:
    with pytest.raises(DdnsInputError, match="cannot read TSIG key file"):
        load_key_file(tmp_path / "nope.key")


def test_make_key_combinations(tmp_path: Any) -> None:
    assert make_key(None, None) is None
    assert make_key("k", SECRET, "hmac-sha384") == TsigKey("k", SECRET, "hmac-sha384")
    with pytest.raises(DdnsInputError, match="needs key_name"):
        make_key(None, SECRET)
    with pytest.raises(DdnsInputError, match="needs key_secret or key_file"):
        make_key("k", None)
    with pytest.raises(DdnsInputError, match="unknown TSIG algorithm"):
        make_key("k", SECRET, "hmac-sha3")
    path = tmp_path / "k.key"
    path.write_text(f'key "k" {{ algorithm hmac-sha256; secret "{SECRET}"; }};')
    with pytest.raises(DdnsInputError, match="not both"):
        make_key("k", SECRET, key_file=str(path))
    assert make_key(None, None, key_file=str(path)) == TsigKey("k", SECRET)


def test_bad_base64_secret_is_a_clear_error_without_the_secret() -> None:
    with pytest.raises(DdnsInputError, match="not valid base64") as caught:
        TsigKey("k", "not*base64!").to_dnspython()
    assert "not*base64!" not in str(caught.value)
