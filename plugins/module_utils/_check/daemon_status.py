# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parse what an NTP client daemon says about its sources: ``chronyc -c`` and NTPsec's ``ntpq``.

Pure functions over command output text; nothing here runs a command. The
client_status module, scripts/lab_drill.py and the integration harness run
chronyc or ntpq their own way and pass the text in.

Two layers: the raw rows (every field as the daemon printed it, keyed by name,
as :func:`chronyc_sources`, :func:`chronyc_authdata` and :func:`ntpq_variables`
return them), and :func:`chrony_client_sources` / :func:`ntpsec_client_sources`,
which turn them into one typed record per source, the same keys for both
daemons.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

# chronyc -c sources (chrony's client.c, process_cmd_sources): one CSV row per source.
CHRONY_SOURCE_FIELDS = (
    "mode", "state", "name", "stratum", "poll", "reach", "last_rx",
    "adjusted_offset", "measured_offset", "error",
)
# chronyc -c authdata: name, mode (NTS, SK or -), key id, key type (the AEAD id for NTS),
# key length in bits, seconds since the last NTS-KE, NTS-KE attempts, NAKs, cookies held,
# cookie length.
CHRONY_AUTHDATA_FIELDS = (
    "name", "mode", "key_id", "key_type", "key_length", "last_ke_ago", "ke_attempts",
    "nak", "cookies", "cookie_length",
)
# chronyc -c ntpdata (client.c, process_cmd_ntpdata): "NTP tests" is three fields, the
# addresses and the reference ID are each followed by their refid or name. chrony 4.4 and
# later append the four kernel and hardware timestamping counts; the fields before them
# are the same from 4.3 to 4.6, so rows are read from the start, never from the end.
CHRONY_NTPDATA_FIELDS = (
    "remote_address", "remote_refid", "remote_port", "local_address", "local_refid", "leap", "version",
    "mode", "stratum", "poll", "poll_s", "precision", "precision_s", "root_delay", "root_dispersion",
    "reference_id", "reference_name", "reference_time", "offset", "peer_delay", "peer_dispersion",
    "response_time", "jitter_asymmetry", "tests_packet", "tests_sample", "tests_delay", "interleaved",
    "authenticated", "tx_timestamping", "rx_timestamping", "total_tx", "total_rx", "total_valid_rx",
    "total_good_rx", "total_kernel_tx", "total_kernel_rx", "total_hw_tx", "total_hw_rx",
)
# chrony 4.3's row ends with total_good_rx.
_CHRONY_NTPDATA_MIN_FIELDS = CHRONY_NTPDATA_FIELDS.index("total_good_rx") + 1
# ntpq -c associations (NTPsec's ntpclients/ntpq.py): the columns of its table.
NTPQ_ASSOCIATION_FIELDS = ("ind", "assid", "status", "conf", "reach", "auth", "condition", "last_event", "cnt")
# The peer variables client_status reads with ``ntpq -c "rv ASSID ..."``.
NTPQ_PEER_VARIABLES = (
    "srcadr", "srchost", "hmode", "stratum", "hpoll", "reach", "rec", "offset", "keyid", "ntscookies",
)
_NTPSEC_HOST_MODES = {"1": "peer", "2": "peer", "3": "server"}
_CHRONY_SOURCE_MODES = {"^": "server", "=": "peer", "#": "refclock"}
_CHRONY_AUTH_MODES = {"NTS", "SK", "-"}

# One ``name=value`` of ntpq's readvar output; a value runs to the next ", name=" or the end.
# Values may hold spaces (rec's "hex ISO", flash's "00 ok"), never "name="; ntpq writes
# the filter arrays as "filtdelay =\t0.20\t...".
_NTPQ_VARIABLE = re.compile(
    r"([A-Za-z_][\w.]*)[ \t]*=(?!=)[ \t]*(.*?)(?=,?\s+[A-Za-z_][\w.]*[ \t]*=|,?[ \t]*$)", re.MULTILINE
)


def _chronyc_rows(text: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The sources and authdata rows in ``chronyc -c`` output (either command, or both in one run)."""
    sources: list[dict[str, str]] = []
    authdata: list[dict[str, str]] = []
    for line in text.splitlines():
        fields = line.strip().split(",")
        if len(fields) < 7:
            continue  # an error message or an empty line
        # A source row starts with its mode (^ = #); an authdata row with the source's name.
        if fields[0] in _CHRONY_SOURCE_MODES:
            sources.append(dict(zip(CHRONY_SOURCE_FIELDS, fields, strict=False)))
        elif fields[1] in _CHRONY_AUTH_MODES:
            authdata.append(dict(zip(CHRONY_AUTHDATA_FIELDS, fields, strict=False)))
    return sources, authdata


def chronyc_sources(text: str) -> list[dict[str, str]]:
    """``chronyc -c sources`` rows keyed by :data:`CHRONY_SOURCE_FIELDS`, values as printed."""
    return _chronyc_rows(text)[0]


def chronyc_authdata(text: str) -> list[dict[str, str]]:
    """``chronyc -c authdata`` rows keyed by :data:`CHRONY_AUTHDATA_FIELDS`, values as printed."""
    return _chronyc_rows(text)[1]


def chronyc_ntpdata(text: str) -> list[dict[str, str]]:
    """``chronyc -c ntpdata`` rows keyed by :data:`CHRONY_NTPDATA_FIELDS`, values as printed.

    Other lines (sources or authdata rows, errors) are left out: an ntpdata row has at
    least chrony 4.3's fields and a Yes or No where ``authenticated`` is.
    """
    rows = []
    for line in text.splitlines():
        fields = line.strip().split(",")
        if len(fields) >= _CHRONY_NTPDATA_MIN_FIELDS and fields[27] in ("Yes", "No"):
            rows.append(dict(zip(CHRONY_NTPDATA_FIELDS, fields, strict=False)))
    return rows


def _labelled_counts(text: str) -> dict[str, int]:
    """``label : count`` lines as {label: count}; lines with another value (a float, text) are left out."""
    stats: dict[str, int] = {}
    for line in text.splitlines():
        label, sep, value = line.partition(":")
        if sep and value.strip().isdigit():
            stats[label.strip()] = int(value.strip())
    return stats


def chronyc_serverstats(text: str) -> dict[str, int]:
    """``chronyc serverstats`` (the labelled form) as {label: count}, e.g. 'NTS-KE connections accepted'."""
    return _labelled_counts(text)


def ntpq_ntsinfo(text: str) -> dict[str, int]:
    """NTPsec's ``ntpq -c ntsinfo`` as {label: count}, e.g. 'NTS KE serves good' (ntpclients/ntpq.py do_ntsinfo)."""
    return _labelled_counts(text)


def ntpq_variables(text: str) -> list[dict[str, str]]:
    """ntpq ``readvar`` output (``rv &N var,...`` or ``mrv``), one dict per association.

    ntpq prints ``name=value`` pairs separated by commas and wraps long lines; a
    new association starts where a variable repeats (or at its ``associd=``
    header), so several ``rv`` commands in one run, or their output joined on one
    line, come apart into one dict each.
    """
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for name, value in _NTPQ_VARIABLE.findall(text):
        if name in current or (name == "associd" and current):
            records.append(current)
            current = {}
        current[name] = value.strip()
    if current:
        records.append(current)
    return records


def ntpq_associations(text: str) -> list[dict[str, str]]:
    """The table of ``ntpq -c associations``: ind, assid, status, conf, reach, auth, condition, ..."""
    rows: list[dict[str, str]] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 7 and fields[0].isdigit() and fields[1].isdigit():
            rows.append(dict(zip(NTPQ_ASSOCIATION_FIELDS, fields, strict=False)))
    return rows


def ntpq_timestamp(value: str | None) -> float | None:
    """Unix time of an ntpq timestamp variable such as ``rec``, printed as
    ``e9a1b2c3.1a2b3c4d 2026-12-02T13:50:00.123Z`` (NTP hex, then ISO 8601 UTC)."""
    for word in str(value).split():
        if word.endswith("Z"):
            try:
                return datetime.fromisoformat(word[:-1] + "+00:00").timestamp()
            except ValueError:
                return None
    return None


def ntpsec_client_sources(
    associations: Sequence[Mapping[str, str]], variables: Sequence[Mapping[str, str]], now: float
) -> list[dict[str, Any]]:
    """One typed record per NTPsec association (see :func:`source_record` for the keys).

    ``associations`` are :func:`ntpq_associations` rows, ``variables`` the
    :func:`ntpq_variables` of ``rv ASSID`` :data:`NTPQ_PEER_VARIABLES` for each, in
    the same order; ``now`` turns the time of the last response into its age.
    """
    records = []
    for assoc, var in zip(associations, variables, strict=False):
        received = ntpq_timestamp(var.get("rec"))
        offset_ms = _float(var.get("offset"))
        reach = _int(var.get("reach"), 8)
        # NTS and symmetric keys both make the association authentic ("ok"); NTS has no key id.
        nts = assoc.get("auth") == "ok" and not _int(var.get("keyid"))
        records.append(source_record(
            name=var.get("srchost", "").strip('"') or var.get("srcadr", ""),
            address=var.get("srcadr"),
            mode=_NTPSEC_HOST_MODES.get(var.get("hmode", ""), var.get("hmode", "")),
            selected=assoc.get("condition") == "sys.peer",
            state=assoc.get("condition", ""),
            stratum=_int(var.get("stratum")),
            poll=_int(var.get("hpoll")),
            reach=reach,
            last_rx=None if received is None or not reach else round(now - received, 3),
            offset=None if offset_ms is None else round(offset_ms / 1000, 9),  # ntpq prints milliseconds
            nts=nts,
            cookies=_int(var.get("ntscookies")) if nts else None,
            naks=None,
        ))
    return records


def _int(text: str | None, base: int = 10) -> int | None:
    try:
        return int(str(text), base)
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    try:
        return float(str(text))
    except ValueError:
        return None


def chrony_client_sources(
    sources: Sequence[Mapping[str, str]],
    authdata: Sequence[Mapping[str, str]] = (),
    addresses: Sequence[Mapping[str, str]] = (),
) -> list[dict[str, Any]]:
    """One typed record per chrony source (see :func:`source_record` for the keys).

    ``sources`` and ``authdata`` are rows of one chronyc run; ``addresses``
    optionally the sources rows of a second run with ``-n`` when the first used
    ``-N`` (names as configured), matched by position.
    """
    auth = {row.get("name"): row for row in authdata}
    numeric = [row.get("name") for row in addresses] if len(addresses) == len(sources) else []
    records = []
    for index, row in enumerate(sources):
        entry = auth.get(row.get("name"), {})
        nts = entry.get("mode") == "NTS"
        records.append(source_record(
            name=row.get("name", ""),
            address=numeric[index] if numeric else row.get("name"),
            mode=_CHRONY_SOURCE_MODES.get(row.get("mode", ""), row.get("mode", "")),
            selected=row.get("state") == "*",
            state=row.get("state", ""),
            stratum=_int(row.get("stratum")),
            poll=_int(row.get("poll")),
            reach=_int(row.get("reach"), 8),
            last_rx=_int(row.get("last_rx")),
            offset=_float(row.get("adjusted_offset")),
            nts=nts,
            cookies=_int(entry.get("cookies")) if nts else None,
            naks=_int(entry.get("nak")) if nts else None,
        ))
    return records


def source_record(
    *,
    name: str,
    address: str | None,
    mode: str,
    selected: bool,
    state: str,
    stratum: int | None,
    poll: int | None,
    reach: int | None,
    last_rx: float | None,
    offset: float | None,
    nts: bool,
    cookies: int | None,
    naks: int | None,
) -> dict[str, Any]:
    """The record both daemons' sources become.

    name: as configured (chrony ``-N``, NTPsec's srchost) or the address;
    address: the one in use; mode: server, peer or refclock (chrony);
    selected: the daemon synchronises to it now; state: the daemon's own word
    for it (chrony's ``*+-?x~``, NTPsec's condition such as ``sys.peer`` or
    ``candidate``); reach: the reachability register as a number (0: no valid
    response among the last eight polls); last_rx: seconds since the last valid
    response; offset: seconds, NTP sign; nts: the source is NTS-authenticated;
    cookies: NTS cookies held for it; naks: NTS NAKs received (chrony only);
    None where the daemon does not say.
    """
    return {
        "name": name, "address": address, "mode": mode, "selected": selected, "state": state,
        "stratum": stratum, "poll": poll, "reach": reach, "last_rx": last_rx, "offset": offset,
        "nts": nts, "cookies": cookies, "naks": naks,
    }
