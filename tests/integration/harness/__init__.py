"""Integration-test harness: real NTS servers and hostile peers in network namespaces.

Modules:
- ca: TestCA(dir).issue(name, dns=[...], ips=[...], days=, not_before=) -> IssuedCert
  (cert_path, key_path 0600, chain_path, sha256, not_before, not_after, ca_path);
  issue_expired(), issue_expiring(name, days_left). Re-issuing a name overwrites its
  files (a "renewed certificate").
- netns: Network() context -> add_host(role, [cidr...], hosts={name: [addr...]}) -> Host
  (ns, addresses, run/popen/exec_argv, socket(), call(), set_hosts, set_resolver,
  add_address, remove_address); reap_leftovers() for crashed runs.
- daemons: ChronyServer, NtpsecServer, ChronyClient (start/stop/restart by PID, no
  CAP_SYS_TIME), chronyc helpers (serverstats, sources, authdata, tracking, wait_synced);
  MovableChronyServer (one chronyd on every address of its namespace, fresh ntskeys)
  and NtpsecClient (NTPsec ntpd as an NTS client, peerstats per valid sample).
- watch: Counters (nftables SYN/NTP counters per address, in or out; go_dark),
  ValidSamples (chronyd via chronyc ntpdata) and NtpsecSamples (peerstats).
- hostile: HostileServer(behaviour, ca=..., ...) - see hostile.BEHAVIOURS.
- ntswire: the harness's own record/NTP encoders and a tiny NTS client.
- lab: the Daemons factory and the NtsLab layout used by tests/integration/conftest.py.

Host addresses come from 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32 (not
192.0.2.0/24: this machine's root namespace uses it for its real uplink).
"""
