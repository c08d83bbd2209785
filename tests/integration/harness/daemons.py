"""Real chronyd and NTPsec ntpd as NTS servers (and chronyd as a client) for tests.

Safety: every daemon runs under `capsh --drop=cap_sys_time`, so it cannot set the
clock whatever its configuration says; chronyd also gets `-x`. Each daemon has a
private directory (config, pidfile, chronyc socket, ntsdumpdir, logs) and is
stopped by its PID. ntpd binds every address it sees, so it runs only inside a
namespace created by harness.netns.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ansible_collections.ntsops.nts.plugins.module_utils._check import daemon_status

from .ca import IssuedCert
from .netns import Host, register_process, unregister_process

REPO = Path(__file__).resolve().parents[3]
DAEMONS = REPO / ".cache" / "daemons"
CHRONYD = DAEMONS / "chrony" / "usr" / "sbin" / "chronyd"
CHRONYC = DAEMONS / "chrony" / "usr" / "bin" / "chronyc"
NTPD = DAEMONS / "ntpsec" / "usr" / "sbin" / "ntpd"


class DaemonError(RuntimeError):
    """A daemon did not start, answer or stop as expected; message includes its log."""


def no_clock_argv(argv: Sequence[str]) -> list[str]:
    """Wrap `argv` so it runs without CAP_SYS_TIME (not even in its bounding set)."""
    return ["capsh", "--drop=cap_sys_time", "--", "-c", "exec " + shlex.join(argv)]


def free_port(host: str = "127.0.0.1", type_: int = socket.SOCK_STREAM) -> int:
    """A port free on `host` right now for TCP and UDP (small race; fine for tests)."""
    for _unused in range(50):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, type_) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        other = socket.SOCK_DGRAM if type_ == socket.SOCK_STREAM else socket.SOCK_STREAM
        try:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, other) as s:
                s.bind((host, port))
        except OSError:
            continue
        return port
    raise DaemonError(f"no free port on {host}")


def wait_tcp(address: str, port: int, host: Host | None, timeout: float = 10.0) -> float:
    """Wait until TCP `address:port` accepts (from inside `host`'s namespace); returns seconds."""
    start = time.monotonic()
    deadline = start + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = host.socket(family) if host else socket.socket(family)
        sock.settimeout(0.5)
        try:
            sock.connect((address, port))
            return time.monotonic() - start
        except OSError as exc:
            last = exc
        finally:
            sock.close()
        time.sleep(0.05)
    raise TimeoutError(f"{address}:{port} did not accept TCP within {timeout} s ({last})")


def wait_ntp_stratum(host: Host | None, address: str, port: int, deadline: float,
                     alive: Callable[[], None] = lambda: None, *, unsynchronised_ok: bool = False) -> int:
    """Poll `address:port` with plain NTP (from inside `host`'s namespace) until the server
    claims a stratum (LI != 3, stratum > 0: NTPsec's orphan mode has settled); returns it.
    With `unsynchronised_ok` any answer will do, for a server that never claims one
    (ntpd-rs with no source answers LI 3, stratum 16).
    `alive` raises when the daemon died. TimeoutError at `deadline` (time.monotonic())."""
    # 48-byte NTPv4 client request (LI 0, VN 4, mode 3) with a non-zero transmit time.
    request = bytes([0x23]) + bytes(39) + (0x0123456789ABCDEF).to_bytes(8, "big")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = host.socket(family, socket.SOCK_DGRAM) if host else socket.socket(family, socket.SOCK_DGRAM)
    with contextlib.closing(sock):
        sock.settimeout(0.5)
        while time.monotonic() < deadline:
            alive()
            with contextlib.suppress(OSError):
                sock.sendto(request, (address, port))
                reply = sock.recv(512)
                if len(reply) >= 48 and (unsynchronised_ok or (reply[0] >> 6 != 3 and reply[1] != 0)):
                    return reply[1]
            time.sleep(0.2)
    raise TimeoutError(f"{address} port {port} claimed no stratum in time")


class _Daemon:
    """Common process handling: start with capsh, stop by PID, log access."""

    name = "daemon"

    def __init__(self, workdir: Path, host: Host | None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o700)
        self.host = host
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr_path = self.workdir / f"{self.name}.stderr"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _argv(self) -> list[str]:
        raise NotImplementedError

    def _spawn(self) -> None:
        argv = no_clock_argv(self._argv())
        if self.host is not None:
            argv = self.host.exec_argv(argv)
        with open(self.stderr_path, "ab") as err:
            # `ip netns exec`, capsh and bash all exec, so proc.pid is the daemon's pid
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         start_new_session=True)

    def _register(self) -> None:
        # called once the daemon answers: by then ip/capsh/bash have exec'd into it
        if self.proc is not None:
            register_process(self.proc.pid)

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        with contextlib.suppress(OSError):
            text = self.stderr_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM by PID, SIGKILL after `timeout`; idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        unregister_process(proc.pid)
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def _check_running(self) -> None:
        if not self.alive():
            code = self.proc.returncode if self.proc else None
            raise DaemonError(f"{self.name} exited ({code}):\n{self.log_tail()}")

    def __enter__(self) -> _Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Chronyd(_Daemon):
    """chronyd 4.3 with a private config; base for the server and the client."""

    name = "chronyd"

    def __init__(self, workdir: Path, host: Host | None) -> None:
        super().__init__(workdir, host)
        self.conf_path = self.workdir / "chronyd.conf"
        self.socket_path = self.workdir / "chronyd.sock"
        self.pid_path = self.workdir / "chronyd.pid"
        self.dump_dir = self.workdir / "ntsdump"
        self.log_dir = self.workdir / "log"

    def _common_conf(self) -> list[str]:
        self.dump_dir.mkdir(exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        return [
            f"pidfile {self.pid_path}",
            f"bindcmdaddress {self.socket_path}",
            "cmdport 0",
            f"ntsdumpdir {self.dump_dir}",
            f"logdir {self.log_dir}",
            f"driftfile {self.workdir / 'drift'}",
        ]

    def _argv(self) -> list[str]:
        # -d: foreground, log to stderr; -x: never touch the clock; -u root: Debian's
        # default user _chrony need not exist here, and the daemon is confined anyway
        return [str(CHRONYD), "-d", "-x", "-u", "root", *self._family_flags(), "-f", str(self.conf_path)]

    def _family_flags(self) -> list[str]:
        return []

    def chronyc(self, *args: str, timeout: float = 5.0, check: bool = True) -> str:
        """Run `chronyc -h <socket> args` (the Unix socket reaches across namespaces)."""
        argv = [str(CHRONYC), "-h", str(self.socket_path), "-n", *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise DaemonError(f"chronyc {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def _wait_socket(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running()
            if self.socket_path.exists():
                out = subprocess.run([str(CHRONYC), "-h", str(self.socket_path), "-n", "tracking"],
                                     capture_output=True, text=True, timeout=5, check=False)
                if out.returncode == 0:
                    return
            time.sleep(0.05)
        raise DaemonError(f"chronyd command socket not ready within {timeout} s:\n{self.log_tail()}")


class ChronyServer(Chronyd):
    """chronyd serving NTS (NTS-KE on `ntsport`, NTP on `port`) from `local stratum`.

    `host=None` runs on loopback in the root namespace with free ports (so Port
    Negotiation is sent); inside a namespace it uses 123/4460 on the host's addresses.
    """

    def __init__(
        self,
        workdir: Path,
        cert: IssuedCert,
        *,
        host: Host | None = None,
        addresses: Sequence[str] | None = None,
        port: int | None = None,
        ntsport: int | None = None,
        stratum: int = 3,
        extra_conf: Sequence[str] = (),
    ) -> None:
        super().__init__(workdir, host)
        self.cert = cert
        if addresses is None:
            addresses = list(host.addresses) if host else ["127.0.0.1", "::1"]
        self.addresses = list(addresses)
        if not self.addresses:
            raise ValueError("ChronyServer needs at least one address to bind")
        loop = host is None
        self.port = port if port is not None else (free_port(self.addresses[0], socket.SOCK_DGRAM) if loop else 123)
        self.ntsport = ntsport if ntsport is not None else (free_port(self.addresses[0]) if loop else 4460)
        self.stratum = stratum
        self.extra_conf = list(extra_conf)

    @property
    def address(self) -> str:
        return self.addresses[0]

    def _bind_lines(self) -> list[str]:
        # chrony binds one IPv4 and one IPv6 address; with only an IPv4 bindaddress
        # NTS-KE would still listen on [::] (chrony's nts_ke_server.c opens one listener
        # per family), so such a server runs with -4
        # (and an IPv6-only one with -6), letting many servers share one namespace
        v4 = [a for a in self.addresses if ":" not in a]
        v6 = [a for a in self.addresses if ":" in a]
        if len(v4) > 1 or len(v6) > 1:
            raise ValueError("chronyd binds at most one IPv4 and one IPv6 address")
        return [f"bindaddress {a}" for a in v4 + v6]

    def write_conf(self) -> None:
        lines = self._common_conf() + self._bind_lines()
        lines += [
            f"port {self.port}",
            f"ntsport {self.ntsport}",
            f"ntsservercert {self.cert.chain_path}",
            f"ntsserverkey {self.cert.key_path}",
            f"local stratum {self.stratum}",
            "allow all",
            *self.extra_conf,
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def _family_flags(self) -> list[str]:
        has_v4 = any(":" not in a for a in self.addresses)
        has_v6 = any(":" in a for a in self.addresses)
        if has_v4 and not has_v6:
            return ["-4"]
        if has_v6 and not has_v4:
            return ["-6"]
        return []

    def start(self, timeout: float = 10.0) -> ChronyServer:
        self.write_conf()
        self._spawn()
        try:
            self._wait_socket(timeout)
            wait_tcp(self.address, self.ntsport, self.host, timeout)
        except BaseException:
            self.stop()
            raise
        self._register()
        return self

    def restart(self, timeout: float = 10.0, drop_keys: bool = False) -> ChronyServer:
        """Stop and start again, re-reading the certificate files (chronyd reads them only
        at start). The ntsdumpdir keeps the cookie keys, so old cookies stay valid, unless
        `drop_keys`: then every old cookie gets an NTS NAK."""
        self.stop()
        if drop_keys:
            for path in self.dump_dir.glob("*"):
                path.unlink()
        return self.start(timeout)

    def serverstats(self) -> dict[str, int]:
        """`chronyc serverstats` as {label: count}, e.g. 'NTS-KE connections accepted'."""
        return daemon_status.chronyc_serverstats(self.chronyc("serverstats"))


class ChronyClient(Chronyd):
    """chronyd as an NTS client of `server_name` (resolved inside its namespace)."""

    def __init__(
        self,
        workdir: Path,
        host: Host,
        server_name: str,
        ca_path: Path,
        *,
        poll: int = 0,
        port: int | None = None,
        ntsport: int | None = None,
        extra_conf: Sequence[str] = (),
        server_options: str = "",
    ) -> None:
        super().__init__(workdir, host)
        self.server_name = server_name
        self.ca_path = Path(ca_path)
        self.poll = poll
        self.ntp_port = port
        self.ntsport = ntsport
        self.extra_conf = list(extra_conf)
        self.server_options = server_options

    def write_conf(self) -> None:
        opts = f"iburst nts minpoll {self.poll} maxpoll {self.poll}"
        if self.ntp_port is not None:
            opts += f" port {self.ntp_port}"
        if self.ntsport is not None:
            opts += f" ntsport {self.ntsport}"
        lines = [
            *self._common_conf(),
            f"server {self.server_name} {opts} {self.server_options}".rstrip(),
            f"ntstrustedcerts {self.ca_path}",
            "port 0",  # a client only: serve nothing
            *self.extra_conf,
        ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> ChronyClient:
        self.write_conf()
        self._spawn()
        try:
            self._wait_socket(timeout)
        except BaseException:
            self.stop()
            raise
        self._register()
        return self

    def sources(self) -> list[dict[str, str]]:
        """`chronyc -c sources` rows keyed as daemon_status.CHRONY_SOURCE_FIELDS (mode, state, name, ...)."""
        return daemon_status.chronyc_sources(self.chronyc("-c", "sources"))

    def authdata(self) -> list[dict[str, str]]:
        """`chronyc -c authdata` rows keyed as daemon_status.CHRONY_AUTHDATA_FIELDS (name, mode, ..., cookies)."""
        return daemon_status.chronyc_authdata(self.chronyc("-c", "authdata"))

    def tracking(self) -> dict[str, str]:
        """`chronyc tracking` as {label: value text}."""
        out: dict[str, str] = {}
        for line in self.chronyc("tracking").splitlines():
            label, sep, value = line.partition(":")
            if sep:
                out[label.strip()] = value.strip()
        return out

    def wait_synced(self, timeout: float = 20.0, min_reach: int = 1) -> dict[str, str]:
        """Wait until the source is selected ('*') and reached `min_reach` times; returns its row."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            self._check_running()
            rows = self.sources()
            for row in rows:
                reach = int(row.get("reach", "0") or "0", 8)
                if row.get("state") == "*" and bin(reach).count("1") >= min_reach:
                    return row
            time.sleep(0.2)
        raise DaemonError(f"chronyd client not synchronised within {timeout} s: sources={rows} "
                          f"authdata={self.authdata()}\n{self.log_tail()}")


class NtpsecServer(_Daemon):
    """NTPsec 1.2.2 ntpd serving NTS inside `host`'s namespace (NTS-KE fixed at 4460).

    With no upstream, NTPsec answers unsynchronised (stratum 0, LI 3). `orphan`
    (default 6) adds `tos orphan N orphanwait 0`, so it claims stratum N a few
    seconds after start (start() waits for that) and a real client will
    synchronise to it; pass orphan=None to see stratum 0.
    """

    name = "ntpd"
    ntsport = 4460
    port = 123

    def __init__(self, workdir: Path, cert: IssuedCert, host: Host, *, orphan: int | None = 6,
                 extra_conf: Sequence[str] = ()) -> None:
        if host is None:
            raise ValueError("ntpd binds every address it sees: run it in a namespace only")
        super().__init__(workdir, host)
        self.cert = cert
        self.orphan = orphan
        self.extra_conf = list(extra_conf)
        self.conf_path = self.workdir / "ntp.conf"
        self.pid_path = self.workdir / "ntpd.pid"
        self.cookie_path = self.workdir / "ntskeys"
        self.log_path = self.workdir / "ntpd.log"
        self.stats_dir = self.workdir / "stats"

    @property
    def address(self) -> str:
        return self.host.address  # type: ignore[union-attr]

    @property
    def addresses(self) -> list[str]:
        return list(self.host.addresses)  # type: ignore[union-attr]

    def write_conf(self) -> None:
        self.stats_dir.mkdir(exist_ok=True)
        lines = [
            "disable kernel",  # do not discipline the kernel clock (CAP_SYS_TIME is dropped anyway)
            "disable ntp",  # no clock steering at all
            f"statsdir {self.stats_dir}/",
            f"driftfile {self.workdir / 'drift'}",
            "nts enable",
            f"nts cert {self.cert.chain_path}",
            f"nts key {self.cert.key_path}",
            f"nts cookie {self.cookie_path}",
            # no `limited`: rate limiting would drop benchmark and retry traffic
            "restrict default nomodify noquery",
            "restrict 127.0.0.1",
            "restrict ::1",
        ]
        if self.orphan is not None:
            lines.append(f"tos orphan {self.orphan} orphanwait 0")
        lines += self.extra_conf
        self.conf_path.write_text("\n".join(lines) + "\n")

    def _argv(self) -> list[str]:
        # -n: do not fork; -g/-x irrelevant: the clock is never touched (no capability)
        return [str(NTPD), "-n", "-c", str(self.conf_path), "-p", str(self.pid_path),
                "-l", str(self.log_path)]

    def log_tail(self, lines: int = 40) -> str:
        text = super().log_tail(lines)
        with contextlib.suppress(OSError):
            text += "\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return text

    def start(self, timeout: float = 15.0) -> NtpsecServer:
        self.write_conf()
        self._spawn()
        try:
            deadline = time.monotonic() + timeout
            while True:
                self._check_running()
                try:
                    wait_tcp(self.address, self.ntsport, self.host, timeout=0.5)
                    break
                except TimeoutError as exc:
                    if time.monotonic() > deadline:
                        raise DaemonError(f"ntpd NTS-KE not answering within {timeout} s:\n{self.log_tail()}") from exc
            if self.orphan is not None:
                self._wait_orphan_stratum(deadline)
        except BaseException:
            self.stop()
            raise
        self._register()
        return self

    def _wait_orphan_stratum(self, deadline: float) -> None:
        try:
            wait_ntp_stratum(self.host, self.address, self.port, deadline, self._check_running)
        except TimeoutError as exc:
            raise DaemonError(f"ntpd did not reach its orphan stratum in time:\n{self.log_tail()}") from exc

    def restart(self, timeout: float = 15.0) -> NtpsecServer:
        self.stop()
        return self.start(timeout)

    def reload(self) -> None:
        """SIGHUP: NTPsec re-reads its certificate and key."""
        if self.proc is None:
            raise DaemonError("ntpd is not running")
        os.kill(self.proc.pid, signal.SIGHUP)


# chrony nts_ke_server.c: DUMP_IDENTIFIER, SERVER_COOKIE_SIV (AES-SIV-CMAC-256 = 15),
# MAX_SERVER_KEYS 4 with the key's index in the 2 low bits of its id, 32-byte keys.
KEYS_HEADER = "NKS0"
COOKIE_AEAD = 15
SERVER_KEYS = 4


class MovableChronyServer(ChronyServer):
    """chronyd with no bindaddress, so one process answers on every address of its namespace."""

    def _bind_lines(self) -> list[str]:
        return []

    def write_fresh_keys(self) -> None:
        """A new ntskeys file: every cookie issued so far fails once chronyd loads it."""
        lines = [KEYS_HEADER, f"{COOKIE_AEAD} 0.0"]
        for index in range(SERVER_KEYS):
            key_id = (secrets.randbits(32) & ~(SERVER_KEYS - 1)) | index
            lines.append(f"{key_id:08X} {secrets.token_hex(32)}")
        tmp = self.dump_dir / "ntskeys.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        tmp.chmod(0o600)
        tmp.replace(self.dump_dir / "ntskeys")


class NtpsecClient(_Daemon):
    """NTPsec 1.2.2 ntpd as an NTS client of `server_name`, alone in its namespace (it binds
    every address). Its peerstats file gets one line per valid (authenticated) sample."""

    name = "ntpd-client"

    def __init__(self, workdir: Path, host: Host, ca_path: Path, poll: int, server_name: str) -> None:
        super().__init__(workdir, host)
        self.conf_path = self.workdir / "ntp.conf"
        self.log_path = self.workdir / "ntpd.log"
        self.stats_dir = self.workdir / "stats"
        self.ca_path = ca_path
        self.poll = poll
        self.server_name = server_name

    @property
    def peerstats(self) -> Path:
        return self.stats_dir / "peerstats"

    def _argv(self) -> list[str]:
        return [str(NTPD), "-n", "-c", str(self.conf_path), "-p", str(self.workdir / "ntpd.pid"),
                "-l", str(self.log_path)]

    def start(self) -> NtpsecClient:
        self.stats_dir.mkdir(exist_ok=True)
        self.conf_path.write_text("\n".join([
            "disable kernel",
            f"driftfile {self.workdir / 'drift'}",
            f"statsdir {self.stats_dir}/",
            "statistics peerstats",
            "filegen peerstats file peerstats type none enable",
            f"nts ca {self.ca_path}",
            f"server {self.server_name} nts iburst minpoll {self.poll} maxpoll {self.poll}",
            "restrict default nomodify noquery",
            "restrict 127.0.0.1",
            "",
        ]))
        self._spawn()
        self._register()
        return self

    def log_tail(self, lines: int = 40) -> str:
        text = super().log_tail(lines)
        with contextlib.suppress(OSError):
            text += "\n" + "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return text
