# Copyright: ntsops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The server and client roles' ntp.toml templates render TOML that holds what was asked.

ntp-ctl validate checks the files on the hosts (molecule/ntpd-rs); this checks, for
inputs the scenario does not use (IPv6 bind addresses, an allow list, pools, several
servers), that the templates give valid TOML with the keys ntpd-rs 1.4.0 reads
(ntpd/src/daemon/config/server.rs, ntp_source.rs).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import jinja2
import yaml

ROOT = Path(__file__).resolve().parents[3]


def _render(role: str, variables: dict[str, Any]) -> dict[str, Any]:
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8"))
    # Configuration text, never markup: autoescape would corrupt it.
    environment = jinja2.Environment(  # noqa: S701
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True
    )
    # Stand-ins for the two Ansible filters the templates use.
    environment.filters["comment"] = lambda text: f"#\n# {text}\n#"
    environment.filters["to_json"] = json.dumps
    template = environment.from_string((ROOT / "roles" / role / "templates" / "ntp.toml.j2").read_text())
    text = template.render(**{"ansible_managed": "managed", **defaults, **variables})
    return tomllib.loads(text)


def _server(**overrides: Any) -> dict[str, Any]:
    variables = {
        "__nts_server_os": {"observation_path": "/run/ntpd-rs/observe"},
        "__nts_server_ntpdrs_listen": ["[::]"],
        "__nts_server_cert_file": "/etc/ntpd-rs/nts/server.crt",
        "__nts_server_key_file": "/etc/ntpd-rs/nts/server.key",
        "__nts_server_maxntsconnections": None,
        "__nts_server_ntpdrs_key_storage_path": "/var/lib/ntpd-rs/nts-keys",
        "nts_server_upstreams": [{"name": "192.168.0.1"}],
    }
    variables.update(overrides)
    return _render("server", variables)


def test_server_defaults_one_listener_each_and_the_key_storage() -> None:
    config = _server()
    assert [server["listen"] for server in config["server"]] == ["[::]:123"]
    assert [ke["listen"] for ke in config["nts-ke-server"]] == ["[::]:4460"]
    assert config["keyset"] == {"key-storage-path": "/var/lib/ntpd-rs/nts-keys", "key-rotation-interval": 604800}
    assert config["source"] == [{"mode": "server", "address": "192.168.0.1"}]
    assert "allowlist" not in config["server"][0]
    assert "concurrent-connections" not in config["nts-ke-server"][0]


def test_server_addresses_allow_list_limits_and_upstream_kinds() -> None:
    config = _server(
        __nts_server_ntpdrs_listen=["192.168.0.5", "[2001:db8::5]"],
        __nts_server_maxntsconnections=300,
        nts_server_allow=["192.168.0.0/16"],
        nts_server_ntpdrs_rate_limiting_cache_size=1000,
        nts_server_ntpdrs_rate_limiting_cutoff_ms=100,
        nts_server_ntpdrs_key_exchange_timeout_ms=2000,
        nts_server_ntpdrs_minimum_agreeing_sources=2,
        nts_server_ntp_server_name="ntp.example.net",
        nts_server_ntske_port=4461,
        nts_server_upstreams=[
            {"name": "pool.example.net", "pool": True, "count": 3},
            {"name": "nts.example", "nts": True},
        ],
    )
    assert [server["listen"] for server in config["server"]] == ["192.168.0.5:123", "[2001:db8::5]:123"]
    assert config["server"][1]["allowlist"] == {"filter": ["192.168.0.0/16"], "action": "ignore"}
    assert config["server"][0]["rate-limiting-cutoff-ms"] == 100
    ke = config["nts-ke-server"][1]
    assert (ke["listen"], ke["concurrent-connections"], ke["key-exchange-timeout-ms"], ke["ntp-server"]) == (
        "[2001:db8::5]:4461",
        300,
        2000,
        "ntp.example.net",
    )
    assert config["source"] == [
        {"mode": "pool", "address": "pool.example.net", "count": 3},
        {"mode": "nts", "address": "nts.example"},
    ]
    assert config["synchronization"] == {"minimum-agreeing-sources": 2}


def _client(**overrides: Any) -> dict[str, Any]:
    variables = {
        "__nts_client_os": {"observation_path": "/run/ntpd-rs/observe"},
        "__nts_client_trusted_certs_file": "/etc/ntpd-rs/nts-trusted.pem",
        "__nts_client_ntpdrs_minpoll": 6,
        "__nts_client_ntpdrs_maxpoll": 10,
    }
    variables.update(overrides)
    return _render("client", variables)


def test_client_sources_ports_ca_and_poll_limits() -> None:
    config = _client(
        nts_client_servers=[{"name": "time.example.net"}, {"name": "2001:db8::7", "port": 4461}],
        nts_client_trusted_certs_src="files/ca.pem",
        nts_client_ntpdrs_minimum_agreeing_sources=1,
    )
    assert config["source"] == [
        {"mode": "nts", "address": "time.example.net", "certificate-authority": "/etc/ntpd-rs/nts-trusted.pem"},
        {"mode": "nts", "address": "[2001:db8::7]:4461", "certificate-authority": "/etc/ntpd-rs/nts-trusted.pem"},
    ]
    assert config["source-defaults"] == {"poll-interval-limits": {"min": 6, "max": 10}, "initial-poll-interval": 6}
    assert config["synchronization"] == {"minimum-agreeing-sources": 1}


def test_client_without_ca_and_a_plain_pool() -> None:
    config = _client(nts_client_servers=[{"name": "pool.example.net", "pool": True, "nts": False}])
    assert config["source"] == [{"mode": "pool", "address": "pool.example.net"}]
    assert config["synchronization"] == {}
