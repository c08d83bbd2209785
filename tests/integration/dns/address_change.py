"""Change an interface's addresses and time how long until both DNS servers serve them.

Runs inside the lab namespace (the test starts it with `ip netns exec`). The clock
starts just before `ip -batch` replaces the addresses and stops when every listed
server answers the A and AAAA queries with exactly the new addresses. Prints one
JSON object: {"seconds": ..., "polls": ...}; exits 1 on timeout.

Run: python address_change.py NAME PORT SERVERS(comma) INTERFACE OLD4 NEW4 OLD6 NEW6 TIMEOUT_S
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


def main() -> int:
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
