"""Change an interface's addresses and time how long until both DNS servers serve them.

Runs inside the lab namespace (the test starts it with `ip netns exec`). The clock
starts just before `ip -batch` replaces the addresses and stops when every listed
server answers the A and AAAA queries with exactly the new addresses. Prints one
JSON object: {"seconds": ..., "polls": ...}; exits 1 on timeout.

Run: python address_change.py NAME PORT SERVERS(comma) INTERFACE OLD4 NEW4 OLD6 NEW6 TIMEOUT_S

An IPv6 prefix renumbering, IPv4 untouched (as a provider's prefix delegation does it):

    python address_change.py renumber NAME PORT SERVERS INTERFACE OLD6 NEW6 HOLD_S DAD TIMEOUT_S

deprecates OLD6 (preferred_lft 0), watches for HOLD_S seconds with no preferred
address, then adds NEW6 (with duplicate address detection when DAD is 1, so it is
tentative first) and times from that add until every server serves AAAA NEW6 only.
Every distinct AAAA answer seen meanwhile is reported ("aaaa_seen"), so a caller can
check that the record never went empty. OLD6 stays on the interface, deprecated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import dns.flags
import dns.message
import dns.query
import dns.rdatatype


def serves(server: str, port: int, name: str, rdtype: str, want: str) -> bool:
    query = dns.message.make_query(name, rdtype)
    query.flags &= ~dns.flags.RD
    try:
        answer = dns.query.udp(query, server, port=port, timeout=0.2)
    except Exception:  # noqa: BLE001 - a lost or odd answer only means "not yet"
        return False
    got = {r.address for rrset in answer.answer if rrset.rdtype == dns.rdatatype.from_text(rdtype) for r in rrset}
    return got == {want}


def aaaa(server: str, port: int, name: str) -> tuple[str, ...] | None:
    """The AAAA addresses served now, sorted; None when there was no usable answer."""
    query = dns.message.make_query(name, "AAAA")
    query.flags &= ~dns.flags.RD
    try:
        answer = dns.query.udp(query, server, port=port, timeout=0.2)
    except Exception:  # noqa: BLE001 - a lost or odd answer is not an observation
        return None
    return tuple(sorted(r.address for rrset in answer.answer if rrset.rdtype == dns.rdatatype.AAAA for r in rrset))


def renumber(argv: list[str]) -> int:
    name, port, servers, interface, old6, new6, hold, dad, timeout = argv
    seen: set[tuple[str, ...]] = set()

    def observe() -> bool:
        answers = [aaaa(server, int(port), name) for server in servers.split(",")]
        seen.update(a for a in answers if a is not None)
        return all(a == (new6,) for a in answers)

    subprocess.run(
        ["ip", "-6", "addr", "change", f"{old6}/64", "dev", interface, "preferred_lft", "0"], check=True, timeout=10
    )
    hold_until = time.monotonic() + float(hold)
    while time.monotonic() < hold_until:
        observe()
        time.sleep(0.05)
    add = ["ip", "-6", "addr", "add", f"{new6}/64", "dev", interface] + ([] if dad == "1" else ["nodad"])
    start = time.monotonic()
    subprocess.run(add, check=True, timeout=10)
    shown = subprocess.run(
        ["ip", "-o", "-6", "addr", "show", "dev", interface, "to", new6],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    tentative = "tentative" in shown.stdout
    deadline = start + float(timeout)
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        if observe():
            seconds: float | None = time.monotonic() - start
            break
        time.sleep(0.005)
    else:
        seconds = None
    print(json.dumps({"seconds": seconds, "polls": polls, "tentative_at_add": tentative, "aaaa_seen": sorted(seen)}))
    return 0 if seconds is not None else 1


def main() -> int:
    if sys.argv[1] == "renumber":
        return renumber(sys.argv[2:])
    name, port, servers, interface, old4, new4, old6, new6, timeout = sys.argv[1:10]
    batch = (
        f"address del {old4}/24 dev {interface}\n"
        f"address add {new4}/24 dev {interface}\n"
        f"address del {old6}/64 dev {interface}\n"
        f"address add {new6}/64 dev {interface} nodad\n"
    )
    start = time.monotonic()
    subprocess.run(["ip", "-batch", "-"], input=batch, text=True, check=True, timeout=10)
    deadline = start + float(timeout)
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        if all(
            serves(server, int(port), name, "A", new4) and serves(server, int(port), name, "AAAA", new6)
            for server in servers.split(",")
        ):
            print(json.dumps({"seconds": time.monotonic() - start, "polls": polls}))
            return 0
        time.sleep(0.005)
    print(json.dumps({"seconds": None, "polls": polls}))
    return 1


if __name__ == "__main__":
    sys.exit(main())
