"""Two real BIND 9 servers on loopback for the dynamic DNS tests.

Everything runs inside a network namespace the test creates (`LabNamespace`): the
namespace's own loopback gets the two server addresses (named only listens on
addresses an interface has, and the host's loopback is not ours to change).
`BindPair` starts a primary and a secondary `named` for the zone `example.test`
(plus `locked.test`, which no key may update) on 127.53.0.1 and 127.53.0.2,
port 5300. The secondary follows the primary by NOTIFY and IXFR. Neither
server recurses. The primary has a statistics channel, so tests can count how many
UPDATE messages reached it. Every process is stopped by its PID, also on failure.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAMED = "/usr/sbin/named"
ZONE = "example.test"
LOCKED_ZONE = "locked.test"
KEY_NAME = "ntsops-ddns"
OTHER_KEY_NAME = "ntsops-other"
START_TIMEOUT = 15.0


def _secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


PRIMARY_ADDRESS = "127.53.0.1"
SECONDARY_ADDRESS = "127.53.0.2"
# A racing proxy in front of the primary (see racing_proxy.py).
PROXY_ADDRESS = "127.53.0.3"
PORT = 5300
STATS_PORT = 8053
NETNS_PREFIX = "ntsops-ddns-"
# The documentation and benchmarking space these tests publish (inside the namespace
# only); the address policy (plugins/module_utils/_dns/policy.py) refuses it unless allowed.
LAB_ALLOW_PREFIXES = ["192.0.2.0/24", "198.51.100.0/24", "198.18.5.0/24", "2001:db8::/32"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class LabNamespace:
    """A network namespace with loopback up and the server addresses on it; removed with its processes."""

    def __init__(self, suffix: str = "") -> None:
        self.name = f"{NETNS_PREFIX}{os.getpid()}{suffix}"
        self.started: list[int] = []

    def create(self) -> None:
        reap_leftovers()
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=20)
        self.ip("link", "set", "lo", "up")
        for address in (PRIMARY_ADDRESS, SECONDARY_ADDRESS, PROXY_ADDRESS):
            self.ip("addr", "add", f"{address}/32", "dev", "lo")
        # `ip netns exec` mounts these over /etc/resolv.conf and /etc/hosts for our processes only,
        # so zone and primary discovery (system resolver, SOA MNAME) stay inside the lab.
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "resolv.conf").write_text(f"nameserver {PRIMARY_ADDRESS}\noptions timeout:1 attempts:1\n")
        (self.etc / "hosts").write_text(
            f"127.0.0.1 localhost\n{PRIMARY_ADDRESS} ns1.{ZONE}\n{SECONDARY_ADDRESS} ns2.{ZONE}\n"
        )

    @property
    def etc(self) -> Path:
        return Path("/etc/netns") / self.name

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "-n", self.name, *args], capture_output=True, text=True, timeout=20, check=check)

    def argv(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: list[str], timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(argv), check=False, capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload,no-any-return]

    def popen(self, argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        # `ip netns exec` execs the command, so this PID is the command's own.
        process = subprocess.Popen(self.argv(argv), start_new_session=True, **kw)  # type: ignore[call-overload]
        self.started.append(process.pid)
        return process  # type: ignore[no-any-return]

    def delete(self) -> None:
        _stop_pids(self.started)
        remaining = subprocess.run(
            ["ip", "netns", "pids", self.name], check=False, capture_output=True, text=True, timeout=20
        )
        # Only processes inside our own namespace: every one of them was started by this test.
        _stop_pids([int(p) for p in remaining.stdout.split() if p.isdigit()])
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, timeout=20, check=False)
        shutil.rmtree(self.etc, ignore_errors=True)


def _stop_pids(pids: list[int], grace: float = 5.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_pid_alive(p) for p in pids):
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    for pid in pids:
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def reap_leftovers() -> None:
    """Remove namespaces of earlier runs whose test process is gone (a killed run cannot clean up)."""
    listing = subprocess.run(["ip", "netns", "list"], check=False, capture_output=True, text=True, timeout=20)
    for line in listing.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(NETNS_PREFIX):
            continue
        owner = name[len(NETNS_PREFIX) :].split("-")[0]
        if owner.isdigit() and not _pid_alive(int(owner)):
            stale = LabNamespace()
            stale.name = name
            stale.delete()


def key_text(name: str, secret: str, algorithm: str = "hmac-sha256") -> str:
    return f'key "{name}" {{\n\talgorithm {algorithm};\n\tsecret "{secret}";\n}};\n'


@dataclass
class NamedProcess:
    name: str
    directory: Path
    address: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.directory / "named.log"

    def start(self, netns: LabNamespace, port: int) -> None:
        stderr = (self.directory / "stderr.log").open("wb")
        # -f: foreground, so the PID we hold is named itself; -n 1: one worker thread (shared 2-core host).
        self.process = netns.popen(
            [NAMED, "-f", "-n", "1", "-c", str(self.directory / "named.conf")],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        stderr.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"named {self.name} exited: {self.log_text()[-3000:]}")
            if netns.run(
                ["dig", "+norec", "+short", "+time=1", "+tries=1", "-p", str(port), f"@{self.address}", ZONE, "SOA"],
                timeout=10,
            ).stdout.strip():
                return
            time.sleep(0.05)
        raise RuntimeError(f"named {self.name} did not answer within {START_TIMEOUT} s: {self.log_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log_text(self) -> str:
        parts = []
        for path in (self.log, self.directory / "stderr.log"):
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)


@dataclass
class BindPair:
    """A primary and a secondary named for example.test on two loopback addresses."""

    root: Path
    netns: LabNamespace
    primary_address: str = PRIMARY_ADDRESS
    secondary_address: str = SECONDARY_ADDRESS
    port: int = PORT
    stats_port: int = STATS_PORT
    key_secret: str = field(default_factory=_secret)
    other_key_secret: str = field(default_factory=_secret)
    primary: NamedProcess | None = None
    secondary: NamedProcess | None = None

    @property
    def key_file(self) -> Path:
        return self.root / "ddns.key"

    def start(self) -> None:
        self.key_file.write_text(key_text(KEY_NAME, self.key_secret))
        self.key_file.chmod(0o600)
        primary_dir, secondary_dir = self.root / "primary", self.root / "secondary"
        primary_dir.mkdir()
        secondary_dir.mkdir()
        (primary_dir / "named.conf").write_text(self._primary_conf(primary_dir))
        for zone in (ZONE, LOCKED_ZONE):
            (primary_dir / f"{zone}.db").write_text(self._zone_text(zone))
        (secondary_dir / "named.conf").write_text(self._secondary_conf(secondary_dir))
        self.primary = NamedProcess("primary", primary_dir, self.primary_address)
        self.secondary = NamedProcess("secondary", secondary_dir, self.secondary_address)
        try:
            self.primary.start(self.netns, self.port)
            self.secondary.start(self.netns, self.port)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for server in (self.secondary, self.primary):
            if server is not None:
                server.stop()

    def _zone_text(self, zone: str) -> str:
        return (
            f"$TTL 300\n"
            f"@ IN SOA ns1.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60\n"
            f"@ IN NS ns1.{ZONE}.\n"
            f"@ IN NS ns2.{ZONE}.\n"
            + (f"ns1 IN A {self.primary_address}\nns2 IN A {self.secondary_address}\n" if zone == ZONE else "")
            + "alias IN CNAME ns1\n"
        )

    def _common_options(self, directory: Path, address: str) -> str:
        return (
            f'\tdirectory "{directory}";\n'
            f'\tpid-file "{directory}/named.pid";\n'
            f'\tsession-keyfile "{directory}/session.key";\n'
            f'\tmanaged-keys-directory "{directory}";\n'
            f"\tlisten-on port {self.port} {{ {address}; }};\n"
            # Port 53 as well, for discovery through the system resolver and the SOA MNAME.
            f"\tlisten-on port 53 {{ {address}; }};\n"
            "\tlisten-on-v6 { none; };\n"
            "\trecursion no;\n"
            "\tdnssec-validation no;\n"
            f"\tnotify-source {address};\n"
            f"\ttransfer-source {address};\n"
            f"\tquery-source address {address};\n"
        )

    def _logging(self, directory: Path) -> str:
        return (
            "logging {\n"
            f'\tchannel main {{ file "{directory}/named.log"; print-time yes; severity info; print-category yes; }};\n'
            "\tcategory default { main; };\n"
            "\tcategory update { main; };\n"
            "\tcategory update-security { main; };\n"
            "\tcategory xfer-in { main; };\n"
            "\tcategory xfer-out { main; };\n"
            "\tcategory notify { main; };\n"
            "};\n"
            # No rndc control channel: nothing listens on 953.
            "controls { };\n"
        )

    def _primary_conf(self, directory: Path) -> str:
        zones = (
            f'zone "{ZONE}" {{\n'
            "\ttype primary;\n"
            f'\tfile "{directory}/{ZONE}.db";\n'
            "\tupdate-policy {\n"
            f"\t\tdeny {KEY_NAME} name locked-name.{ZONE}. ANY;\n"
            f"\t\tgrant {KEY_NAME} zonesub A AAAA;\n"
            f"\t\tgrant {OTHER_KEY_NAME} zonesub A AAAA;\n"
            "\t};\n"
            "\tnotify explicit;\n"
            f"\talso-notify {{ {self.secondary_address} port {self.port}; }};\n"
            f"\tallow-transfer {{ {self.secondary_address}; }};\n"
            "};\n"
            f'zone "{LOCKED_ZONE}" {{\n'
            "\ttype primary;\n"
            f'\tfile "{directory}/{LOCKED_ZONE}.db";\n'
            "\tallow-update { none; };\n"
            "};\n"
        )
        return (
            key_text(KEY_NAME, self.key_secret)
            + key_text(OTHER_KEY_NAME, self.other_key_secret)
            + "options {\n"
            + self._common_options(directory, self.primary_address)
            # Send NOTIFY at once after an update (BIND waits 5 s by default).
            + "\tnotify-delay 0;\n"
            + "};\n"
            + f"statistics-channels {{ inet {self.primary_address} port {self.stats_port} "
            + "allow { 127.0.0.0/8; }; };\n"
            + self._logging(directory)
            + zones
        )

    def _secondary_conf(self, directory: Path) -> str:
        return (
            "options {\n"
            + self._common_options(directory, self.secondary_address)
            + "};\n"
            + self._logging(directory)
            + f'zone "{ZONE}" {{\n'
            "\ttype secondary;\n"
            f'\tfile "{directory}/{ZONE}.db";\n'
            "\tmasterfile-format text;\n"
            f"\tprimaries {{ {self.primary_address} port {self.port}; }};\n"
            f"\tallow-notify {{ {self.primary_address}; }};\n"
            "};\n"
        )

    def update_count(self) -> int:
        """How many UPDATE messages reached the primary (its statistics channel)."""
        url = f"http://{self.primary_address}:{self.stats_port}/json/v1/server"
        code = (
            "import json, urllib.request; "
            f"print(json.load(urllib.request.urlopen({url!r}, timeout=5))['opcodes'].get('UPDATE', 0))"
        )
        result = self.netns.run([sys.executable, "-c", code], timeout=30)
        if result.returncode != 0:
            raise RuntimeError(f"statistics channel: {result.stderr}")
        return int(result.stdout.strip())

    def dig(self, server: str, name: str, rdtype: str) -> list[str]:
        """What ``server`` answers now (rdata text, sorted), asked without recursion."""
        result = self.netns.run(
            ["dig", "+norec", "+short", "+time=1", "+tries=1", "-p", str(self.port), f"@{server}", name, rdtype],
            timeout=10,
        )
        return sorted(line for line in result.stdout.splitlines() if line and not line.startswith(";"))


@contextlib.contextmanager
def bind_pair(root: str | None = None) -> Iterator[BindPair]:
    """A namespace with a primary and a secondary named; everything is removed on exit."""
    directory = Path(tempfile.mkdtemp(prefix="ntsops-bind-", dir=root))
    netns = LabNamespace()
    netns.create()
    pair = BindPair(directory, netns)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()
        netns.delete()
        shutil.rmtree(directory, ignore_errors=True)


REPO_ROOT = Path(__file__).resolve().parents[3]
VENV_BIN = REPO_ROOT / ".venv" / "bin"


@dataclass
class AnsibleRun:
    status: str
    result: dict[str, Any]
    stdout: str
    stderr: str
    seconds: float

    @property
    def failed(self) -> bool:
        return self.status.startswith("FAILED") or bool(self.result.get("failed"))


def run_ddns_record(
    netns: LabNamespace, args: dict[str, Any], check: bool = False, diff: bool = False, timeout: float = 120
) -> AnsibleRun:
    """Run ntsops.nts.ddns_record through `ansible localhost -m`, inside the lab namespace.

    The lab's documentation prefixes are allowed unless ``args`` says otherwise.
    """
    args = {"allow_prefixes": LAB_ALLOW_PREFIXES, **args}
    argv = [
        str(VENV_BIN / "ansible"),
        "localhost",
        "-m",
        "ntsops.nts.ddns_record",
        "-a",
        json.dumps(args),
        "-e",
        f"ansible_python_interpreter={VENV_BIN / 'python'}",
    ]
    if check:
        argv.append("--check")
    if diff:
        argv.append("--diff")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    )
    start = time.monotonic()
    completed = netns.run(argv, timeout=timeout, env=env, cwd=str(REPO_ROOT))
    seconds = time.monotonic() - start
    match = re.search(r"^localhost \| ([A-Z!]+) => (\{.*)", completed.stdout, re.M | re.S)
    if match is None:
        raise RuntimeError(f"no result from ansible: {completed.stdout}\n{completed.stderr}")
    decoder = json.JSONDecoder()
    result, _end_index = decoder.raw_decode(match.group(2))
    return AnsibleRun(match.group(1), result, completed.stdout, completed.stderr, seconds)


# The launcher the ddns_agent role installs; with PYTHONPATH=.collections it runs the checkout's core.
AGENT_LAUNCHER = REPO_ROOT / "roles" / "ddns_agent" / "files" / "ntsops-ddns-agent"


@dataclass
class AgentLab:
    """A veth interface in the lab namespace and an agent publishing its addresses."""

    pair: BindPair
    name: str
    interface: str = "ddns0"
    config_path: Path | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def add_interface(self, ipv4: str, ipv6: str) -> None:
        netns = self.pair.netns
        # A veth pair (this kernel may lack the dummy driver); both ends stay inside the namespace.
        netns.ip("link", "add", self.interface, "type", "veth", "peer", "name", f"{self.interface}p")
        netns.ip("link", "set", f"{self.interface}p", "up")
        netns.ip("link", "set", self.interface, "up")
        netns.ip("addr", "add", f"{ipv4}/24", "dev", self.interface)
        netns.ip("addr", "add", f"{ipv6}/64", "dev", self.interface, "nodad")

    def write_config(self, **settings: Any) -> Path:
        key_copy = self.pair.root / "agent-tsig.key"
        key_copy.write_text(self.pair.key_file.read_text())
        key_copy.chmod(0o600)
        config = {
            "name": self.name,
            "server": self.pair.primary_address,
            "port": self.pair.port,
            "key_file": str(key_copy),
            "ttl": 30,
            "sources": {"ipv4": {"interface": self.interface}, "ipv6": {"interface": self.interface}},
            "reconcile_interval": 60,
            "timeout": 2,
            "propagation_timeout": 10,
            "allow_prefixes": LAB_ALLOW_PREFIXES,
        }
        config.update(settings)
        self.config_path = self.pair.root / f"agent-{self.name}.json"
        self.config_path.write_text(json.dumps(config))
        return self.config_path

    def argv(self, *extra: str) -> list[str]:
        return [sys.executable, str(AGENT_LAUNCHER), "--config", str(self.config_path), *extra]

    def env(self) -> dict[str, str]:
        return dict(os.environ, PYTHONPATH=str(REPO_ROOT / ".collections"), PYTHONUNBUFFERED="1")

    def start(self) -> None:
        self.log_path = self.pair.root / f"agent-{self.name}.log"
        with self.log_path.open("wb") as log:
            self.process = self.pair.netns.popen(self.argv(), stdout=log, stderr=subprocess.STDOUT, env=self.env())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def wait_served(self, rdtype: str, want: list[str], timeout: float = 20) -> float:
        """Seconds until both servers answer exactly ``want``; raises on timeout."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if all(self.pair.dig(s, self.name, rdtype) == want for s in (PRIMARY_ADDRESS, SECONDARY_ADDRESS)):
                return time.monotonic() - start
            time.sleep(0.1)
        raise AssertionError(f"{self.name} {rdtype} not {want} on both servers within {timeout} s:\n{self.log()}")

    def change_and_measure(self, old4: str, new4: str, old6: str, new6: str, timeout: float = 20) -> float:
        """Replace the interface's addresses; seconds until both servers serve the new ones."""
        script = Path(__file__).resolve().parent / "address_change.py"
        servers = f"{PRIMARY_ADDRESS},{SECONDARY_ADDRESS}"
        result = self.pair.netns.run(
            [
                sys.executable,
                str(script),
                self.name,
                str(self.pair.port),
                servers,
                self.interface,
                old4,
                new4,
                old6,
                new6,
                str(timeout),
            ],
            timeout=timeout + 30,
        )
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        if result.returncode != 0 or measured["seconds"] is None:
            raise AssertionError(f"no propagation within {timeout} s: {result.stderr}\n{self.log()}")
        return float(measured["seconds"])

    def renumber_and_measure(
        self, old6: str, new6: str, hold: float = 0.0, dad: bool = True, timeout: float = 20
    ) -> dict[str, Any]:
        """Deprecate old6, wait ``hold`` s, add new6; address_change.py's figures (seconds, AAAA answers seen)."""
        script = Path(__file__).resolve().parent / "address_change.py"
        servers = f"{PRIMARY_ADDRESS},{SECONDARY_ADDRESS}"
        argv = [sys.executable, str(script), "renumber", self.name, str(self.pair.port), servers, self.interface]
        argv += [old6, new6, str(hold), "1" if dad else "0", str(timeout)]
        result = self.pair.netns.run(argv, timeout=hold + timeout + 30)
        lines = result.stdout.strip().splitlines()
        if not lines:
            raise AssertionError(f"address_change.py renumber failed: {result.stderr}\n{self.log()}")
        measured: dict[str, Any] = json.loads(lines[-1])
        measured["aaaa_seen"] = [tuple(a) for a in measured["aaaa_seen"]]
        if result.returncode != 0 or measured["seconds"] is None:
            raise AssertionError(f"AAAA {new6} not served within {timeout} s: {measured}\n{self.log()}")
        return measured


def ansible_env() -> dict[str, str]:
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    )


def run_playbook(playbook: Path, *options: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """ansible-playbook from the repository root (so ansible.cfg finds the collection), on this host."""
    return subprocess.run(
        [
            str(VENV_BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={VENV_BIN / 'python'}",
            str(playbook),
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO_ROOT),
        env=ansible_env(),
        check=False,
    )
