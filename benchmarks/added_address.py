"""Which address of a two-address name real clients take at start-up, many times over.

The recovery model (plugins/module_utils/_model/added_address.py) says a restarting
chrony or NTPsec client takes the first address of the answer, so with a DNS server
that shuffles the records it takes an added address about 1 in 2 starts. This counts
it: one chronyd NTS server answers on two addresses of its namespace, BIND ``named``
(started by tests/integration/dns/ddns_lab.py's NamedProcess) serves the name with
both A records in random order (``rrset-order { order random; }``, TTL 0, no
recursion), and a chronyd 4.3 and an NTPsec 1.2.2 client, each in its own namespace
with that server as its resolver, are started N times; each start's first
authenticated response tells the address it took. ``dig`` from the client namespace
counts the DNS server's own first answers as the control.

Only 198.18.7.0/24, inside namespaces this script creates; every daemon runs
without CAP_SYS_TIME (chronyd also with -x). Run as root, under the shared lock:
``make bench-added-address`` (RUNS=N).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / ".collections"))
# appended: the harness folders must not shadow installed packages (dns is dnspython)
sys.path.append(str(REPO / "tests" / "integration"))
sys.path.append(str(REPO / "tests" / "integration" / "dns"))

from ansible_collections.ntsops.nts.plugins.module_utils._model.added_address import added_address
from ddns_lab import NamedProcess
from harness.ca import TestCA
from harness.daemons import ChronyClient, MovableChronyServer, NtpsecClient
from harness.lab import Daemons
from harness.netns import Host, Network, reap_leftovers
from harness.watch import chrony_first_address, ntpsec_first_address

ZONE = "added.test"
NAME = f"time.{ZONE}"
CURRENT = "198.18.7.30"
ADDED = "198.18.7.31"
DNS = "198.18.7.53"
RESULT_PATH = REPO / "benchmarks" / "results" / "added_address.json"


def start_named(host: Host, directory: Path) -> NamedProcess:
    directory.mkdir(parents=True)
    (directory / f"{ZONE}.db").write_text(
        "$TTL 0\n"
        f"@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 0\n"
        f"@ IN NS ns1.{ZONE}.\n"
        f"ns1 IN A {DNS}\n"
        f"time IN A {CURRENT}\n"
        f"time IN A {ADDED}\n"
    )
    (directory / "named.conf").write_text(
        "options {\n"
        f'\tdirectory "{directory}";\n'
        f'\tpid-file "{directory}/named.pid";\n'
        f'\tsession-keyfile "{directory}/session.key";\n'
        f'\tmanaged-keys-directory "{directory}";\n'
        f"\tlisten-on port 53 {{ {DNS}; }};\n"
        "\tlisten-on-v6 { none; };\n"
        "\trecursion no;\n"
        "\tdnssec-validation no;\n"
        # The shuffling DNS server of the model's 'random' order.
        "\trrset-order { order random; };\n"
        "};\n"
        f'logging {{ channel main {{ file "{directory}/named.log"; severity info; }};\n'
        "\tcategory default { main; }; };\n"
        "controls { };\n"
        f'zone "{ZONE}" {{ type primary; file "{directory}/{ZONE}.db"; }};\n'
    )
    named = NamedProcess("added", directory, DNS)
    # NamedProcess.start() waits for ddns_lab's own zone; this zone is checked here, and
    # NamedProcess stops it and reads its log.
    stderr = (directory / "stderr.log").open("wb")
    named.process = host.popen(
        ["/usr/sbin/named", "-f", "-n", "1", "-c", str(directory / "named.conf")],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )
    stderr.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if named.process.poll() is not None:
            raise RuntimeError(f"named exited: {named.log_text()[-2000:]}")
        if len(dig(host)) == 2:
            return named
        time.sleep(0.1)
    named.stop()
    raise RuntimeError(f"named did not answer: {named.log_text()[-2000:]}")


def dig(host: Host) -> list[str]:
    """The DNS server's answer for NAME, in its order."""
    out = host.run(["dig", "+short", "+time=1", "+tries=1", f"@{DNS}", NAME, "A"], check=False, timeout=10).stdout
    return [line for line in out.splitlines() if line and not line.startswith(";")]


def measure(network: Network, root: Path, runs: int) -> tuple[dict[str, Counter[str]], dict[str, list[float]]]:
    """Start each client kind `runs` times; the address of each start's first sample."""
    took: dict[str, Counter[str]] = {"chrony-4.3": Counter(), "ntpsec-1.2": Counter(), "dig": Counter()}
    seconds: dict[str, list[float]] = {"chrony-4.3": [], "ntpsec-1.2": []}
    ca = TestCA(root / "ca", "ntsops bench CA")
    daemons = Daemons(root, ca)
    named: NamedProcess | None = None
    try:
        server_host = network.add_host("addsrv", [f"{CURRENT}/24", f"{ADDED}/24"])
        cert = daemons.cert_for([NAME], [CURRENT, ADDED])
        server = MovableChronyServer(root / "server", cert, host=server_host, addresses=[CURRENT])
        daemons.started.append(server)
        server.start()
        dns_host = network.add_host("adddns", [f"{DNS}/24"])
        named = start_named(dns_host, root / "named")
        chrony_host = network.add_host("addc", ["198.18.7.41/24"])
        ntpsec_host = network.add_host("addn", ["198.18.7.42/24"])
        for host in (chrony_host, ntpsec_host):
            host.set_resolver([DNS])
        for run in range(runs):
            took["dig"][dig(chrony_host)[0]] += 1
            client = ChronyClient(root / f"chrony{run}", chrony_host, NAME, ca.cert_path, poll=1)
            daemons.started.append(client)
            start = time.monotonic()
            client.start()
            took["chrony-4.3"][chrony_first_address(client)] += 1
            seconds["chrony-4.3"].append(time.monotonic() - start)
            client.stop()
            ntpsec = NtpsecClient(root / f"ntpsec{run}", ntpsec_host, ca.cert_path, 1, NAME)
            daemons.started.append(ntpsec)
            start = time.monotonic()
            ntpsec.start()
            took["ntpsec-1.2"][ntpsec_first_address(ntpsec)] += 1
            seconds["ntpsec-1.2"].append(time.monotonic() - start)
            ntpsec.stop()
            print(f"run {run + 1}: " + ", ".join(f"{k} {dict(v)}" for k, v in took.items()), flush=True)
    finally:
        if named is not None:
            named.stop()
        daemons.stop_all()
    return took, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="starts per client kind (default 10)")
    parser.add_argument("--json", type=Path, default=RESULT_PATH)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces, daemons)", file=sys.stderr)
        return 2
    if not 1 <= args.runs <= 200:
        parser.error("--runs must be 1..200")
    reap_leftovers()
    with tempfile.TemporaryDirectory(prefix="ntsops-added-") as tmp, Network() as network:
        took, seconds = measure(network, Path(tmp), args.runs)
    model = added_address(["chrony-4.3", "ntpsec-1.2"], order="random")
    result = {
        "runs": args.runs,
        "took_added": {kind: took[kind][ADDED] for kind in took},
        "took": {kind: dict(count) for kind, count in took.items()},
        "model_chance_added": {c["client"]: c["triggers"]["restart"]["chance"] for c in model["clients"]},
        "start_to_first_sample_s": {k: [round(min(v), 2), round(max(v), 2)] for k, v in seconds.items() if v},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(result, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
