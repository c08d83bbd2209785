# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cookie continuity: is a cookie issued before a restart, renewal or key rotation still accepted?

``save_cookies`` runs NTS-KE on every address and keeps, per address, one cookie with
the keys and AEAD it belongs to and the NTP server it is for. ``verify_cookies``
later sends one NTS-protected NTP request with each saved cookie. A server that kept
its cookie keys (chrony ``ntsdumpdir``, NTPsec ``nts cookie``, ntpd-rs
``key-storage-path``) answers with an authenticated response; one that lost them
answers with an NTS NAK, and every client it serves then needs NTS-KE at once: an
NTS-KE herd. Servers decrypt cookies statelessly, so a saved cookie may be verified
again and again.

The saved state holds the session keys and a cookie: whoever has it can make
requests in that client's name until the server's keys rotate out. The state is
written by the caller with owner-only permissions; nothing secret is returned.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible_collections.ntsops.nts.plugins.module_utils._check import cert_info
from ansible_collections.ntsops.nts.plugins.module_utils._check.endpoint import (
    MAX_PARALLEL_ADDRESSES,
    CheckOptions,
    EndpointCheckError,
    Resolver,
    resolve_addresses,
)
from ansible_collections.ntsops.nts.plugins.module_utils._errors import NtsopsError
from ansible_collections.ntsops.nts.plugins.module_utils._net import nts_session, tls
from ansible_collections.ntsops.nts.plugins.module_utils._net.deadline import NtsStepError
from ansible_collections.ntsops.nts.plugins.module_utils._net.resolve import address_family
from ansible_collections.ntsops.nts.plugins.module_utils._nts import ntp as nts_ntp
from ansible_collections.ntsops.nts.plugins.module_utils._nts import records as nts_records

STATE_FORMAT = "ntsops-cookie-state"
STATE_VERSION = 1
_ENTRY_KEYS = ("address", "ntp_address", "ntp_port", "aead", "c2s_key", "s2c_key", "cookie")

Exchange = Callable[[str, int, nts_session.KeResult, float], nts_session.NtpResult]


class CookieStateError(NtsopsError):
    """The saved cookie state cannot be used (missing, malformed, or for another name)."""


def _save_one(address: str, options: CheckOptions, context: Any) -> dict[str, Any]:
    """NTS-KE against one address; the entry to keep, or the problem line."""
    server_name = None if cert_info.is_ip_address(options.name) else options.name
    session = None
    try:
        session = tls.open_tls(address, options.port, server_name, options.ca_path, options.timeout, context=context)
        problems = list(session.verify_errors)
        mismatch = cert_info.name_mismatch(session.chain[0], options.name) if session.chain else "no certificate"
        if mismatch:
            problems.append(mismatch)
        if problems:
            # A client would not trust this server, so its cookies say nothing.
            return {"address": address, "problem": f"{address}: " + "; ".join(problems)}
        ke = nts_session.key_exchange(session, options.aead, options.timeout)
    except NtsStepError as exc:
        return {"address": address, "problem": f"{address}: {exc}"}
    except NtsopsError as exc:
        return {"address": address, "problem": f"{address}: {type(exc).__name__}: {exc}"}
    finally:
        if session is not None:
            session.close()
    response = ke.response
    if response.errors or response.aead is None or not response.cookies:
        codes = ", ".join(nts_records.error_name(code) for code in response.errors) or "no AEAD or no cookie"
        return {"address": address, "problem": f"{address}: NTS-KE gave no usable cookie ({codes})"}
    try:
        ntp_address = (
            nts_session.resolve_ntp_server(response.server, address_family(address)) if response.server else address
        )
    except NtsStepError as exc:
        return {"address": address, "problem": f"{address}: {exc}"}
    return {
        "address": address,
        "ntp_address": ntp_address,
        "ntp_port": response.port if response.port is not None else nts_ntp.NTP_PORT,
        "aead": response.aead,
        "c2s_key": ke.c2s_key.hex(),
        "s2c_key": ke.s2c_key.hex(),
        "cookie": response.cookies[0].hex(),
    }


def save_cookies(
    options: CheckOptions,
    addresses: Sequence[str] | None = None,
    resolver: Resolver = resolve_addresses,
    now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
) -> dict[str, Any]:
    """NTS-KE on every address; returns ``state`` (to write, secret) and ``problems``."""
    options.validate()
    targets = list(dict.fromkeys(addresses)) if addresses else resolver(options.name)
    for address in targets:
        if not cert_info.is_ip_address(address):
            raise EndpointCheckError(f"addresses must be IP addresses, got {address!r}")
    if not targets:
        raise EndpointCheckError(f"{options.name} has no A or AAAA records")
    context = tls.make_client_context(options.ca_path)
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_ADDRESSES, len(targets))) as pool:
        results = list(pool.map(lambda address: _save_one(address, options, context), targets))
    problems = [result["problem"] for result in results if "problem" in result]
    entries = [result for result in results if "problem" not in result]
    state = {
        "format": STATE_FORMAT,
        "version": STATE_VERSION,
        "name": options.name,
        "saved_at": now().isoformat(timespec="seconds"),
        "entries": entries,
    }
    return {"state": state, "saved": [entry["address"] for entry in entries], "problems": problems}


def state_text(state: Mapping[str, Any]) -> str:
    """The state as the file holds it."""
    return json.dumps(state, indent=1, sort_keys=True) + "\n"


def _hex(entry: Mapping[str, Any], key: str, where: str) -> bytes:
    value = entry.get(key)
    try:
        data = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        data = b""
    if not data:
        raise CookieStateError(f"{where}: {key} must be a non-empty hex string")
    return data


def load_state(text: str, name: str | None = None) -> dict[str, Any]:
    """Parse and check a saved state; ``name``, when given, must be the name it was saved for."""
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise CookieStateError(f"the cookie state is not JSON: {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CookieStateError(f"the cookie state is not an {STATE_FORMAT} file")
    if state.get("version") != STATE_VERSION:
        raise CookieStateError(
            f"the cookie state has version {state.get('version')!r}; this code reads {STATE_VERSION}"
        )
    if name is not None and state.get("name") != name:
        raise CookieStateError(f"the cookie state was saved for {state.get('name')!r}, not {name!r}")
    entries = state.get("entries")
    if not isinstance(entries, list) or not entries:
        raise CookieStateError("the cookie state holds no saved cookie")
    for index, entry in enumerate(entries):
        where = f"entry {index + 1}"
        if not isinstance(entry, dict) or any(key not in entry for key in _ENTRY_KEYS):
            raise CookieStateError(f"{where} must have {', '.join(_ENTRY_KEYS)}")
        for key in ("address", "ntp_address"):
            if not cert_info.is_ip_address(entry[key]):
                raise CookieStateError(f"{where}: {key} must be an IP address, got {entry[key]!r}")
        port, aead = entry["ntp_port"], entry["aead"]
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise CookieStateError(f"{where}: ntp_port must be 1-65535, got {port!r}")
        if aead not in nts_records.AEAD_KEY_LENGTHS:
            raise CookieStateError(f"{where}: aead {aead!r} is not one this code can use")
        for key in ("c2s_key", "s2c_key", "cookie"):
            _hex(entry, key, where)
    return state


def _verify_one(entry: Mapping[str, Any], timeout: float, exchange: Exchange) -> dict[str, Any]:
    cookie = _hex(entry, "cookie", entry["address"])
    ke = nts_session.KeResult(
        response=nts_records.KeResponse(aead=entry["aead"], cookies=[cookie]),
        c2s_key=_hex(entry, "c2s_key", entry["address"]),
        s2c_key=_hex(entry, "s2c_key", entry["address"]),
        ms=0.0,
    )
    result: dict[str, Any] = {
        "address": entry["address"],
        "ntp_address": entry["ntp_address"],
        "ntp_port": entry["ntp_port"],
        "accepted": False,
        "nak": False,
    }
    where = f"{entry['address']}: NTP {entry['ntp_address']} port {entry['ntp_port']}"
    try:
        answer = exchange(entry["ntp_address"], entry["ntp_port"], ke, timeout)
    except NtsStepError as exc:
        result["problem"] = f"{entry['address']}: {exc}"
        return result
    if answer.response.nak:
        result["nak"] = True
        result["problem"] = (
            f"{where} answered the saved cookie with an NTS NAK: the server lost its cookie keys, so every "
            f"client needs NTS-KE again"
        )
    elif answer.response.authenticated:
        result["accepted"] = True
    return result


def verify_cookies(
    state: Mapping[str, Any], timeout: float = 5.0, exchange: Exchange = nts_session.ntp_exchange
) -> dict[str, Any]:
    """One NTS-protected request per saved cookie; ``ok`` when the server accepted every one."""
    if not math.isfinite(timeout) or timeout <= 0:
        raise EndpointCheckError(f"timeout must be positive, got {timeout}")
    entries = state["entries"]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_ADDRESSES, len(entries))) as pool:
        results = list(pool.map(lambda entry: _verify_one(entry, timeout, exchange), entries))
    problems = [result.pop("problem") for result in results if "problem" in result]
    return {
        "ok": not problems,
        "name": state["name"],
        "saved_at": state.get("saved_at"),
        "addresses": results,
        "problems": problems,
    }
