"""ntsops.nts.acme and the server role's certificate source ``acme`` for real, in one container.

The rig (harness/acme_rig.py): BIND, Pebble, certbot and the server role with
certificate source ``acme`` in one ``--network none`` container. The role runs at -vvv; no
secret may appear in its output.

Then, against the same real Pebble, BIND, certbot and chronyd: the renewal unit runs
(not due), a forced renewal is deployed (chronyd restarted, the new certificate served,
its cookie keys kept), and each failure gives one line naming the step and the cause,
exits non-zero, is recorded in the state file the exporter reads, and leaves the
previous certificate served: wrong TSIG secret, a key the update-policy does not allow
for the name, a failed restart in the deploy, a certificate for the wrong name, a
challenge the CA cannot see yet, and the ACME server down. Takes a few minutes;
skipped without root, podman or the ACME test image.

A challenge that does not propagate in time is made real with a second Pebble that
asks a secondary which gets no NOTIFY (the record is on the primary, not where the CA
looks). Rate-limited issuance and renewal are made real with a front before the same
Pebble (harness/acme_ratelimit.py: Pebble 2.4 has no rate limiter) that answers new
orders as a CA at its limit does. Last, short lifetimes: Debian 13's Pebble 2.6
(``certificateValidityPeriod``; Debian 12's 2.4 issues 5-year certificates only)
issues a 90-second certificate for the NTS name, and the timer's unforced renewal
renews it exactly when a third of its lifetime is left and deploys it.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from collections.abc import Iterator

import pytest
from harness.acme_rig import (
    CREDENTIALS,
    HOOK,
    IMAGE,
    KEY_NAME,
    LAUNCHER,
    NAME,
    OTHER,
    OTHER_KEY_NAME,
    PEBBLE_OPTIONS,
    PEBBLE_URL,
    RATELIMIT_FRONT,
    RATELIMIT_PORT,
    RATELIMIT_URL,
    SERVED_CERT,
    STATE,
    TEST_DIR,
    TLS_CA,
    ZONE,
    Box,
    Lab,
    Run,
    acme,
    exporter_metrics,
    file_sha256,
    missing,
    running_lab,
    served_sha256,
    state,
)
from harness.ca import TestCA

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[Lab]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    with running_lab(test_ca, tmp_path_factory.mktemp("acme"), "-vvv") as running:
        yield running


def one_failure_line(run: Run, step: str, cause: str, cert_name: str = NAME) -> str:
    lines = [line for line in run.stderr.splitlines() if line.startswith("ntsops-acme:")]
    assert run.code != 0, f"exit {run.code}: {run.stdout}{run.stderr}"
    assert lines, run.stdout + run.stderr
    assert f"ntsops-acme: {step} of {cert_name} failed: " in lines[-1], lines
    assert cause in lines[-1], lines
    return lines[-1]


def test_role_issues_the_first_certificate_before_chronyd_and_logs_no_secret(lab: Lab) -> None:
    result = lab.converge
    output = result.stdout + result.stderr
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    box = lab.box
    assert lab.secret not in output and lab.secret.rstrip("=") not in output
    account_key = json.loads(box.sh("cat /etc/letsencrypt/accounts/*/*/*/private_key.json"))
    for part in ("d", "p", "q"):
        if part in account_key:
            assert account_key[part] not in output, f"account key part {part} in the output"
    # Issued before chronyd was configured: the task order of the run.
    issue_at = output.find("TASK [ntsops.nts.acme : Obtain the first certificate]")
    configure_at = output.find("TASK [ntsops.nts.server : Configure the daemon]")
    assert 0 <= issue_at < configure_at, "the certificate was not obtained before the daemon was configured"

    assert box.sh(f"stat -c '%a %U' {CREDENTIALS} $(dirname {CREDENTIALS})").split() == ["600", "root", "700", "root"]
    live = f"/etc/letsencrypt/live/{NAME}/cert.pem"
    assert served_sha256(box) == file_sha256(box, live) == file_sha256(box, SERVED_CERT)
    lifetime = int(box.sh(f"python3 -c \"import json; print(int(json.load(open('{STATE}'))['lifetime_seconds']))\""))
    conf = box.sh(f"cat /etc/letsencrypt/renewal/{NAME}.conf")
    assert f"renew_before_expiry = {lifetime // 3} seconds" in conf, conf
    assert box.sh("systemctl is-enabled ntsops-acme-renew.timer").strip() == "enabled"
    assert state(box)["last_run"]["ok"] is True
    print(f"\n[acme] issued for {NAME}: lifetime {lifetime} s, renew_before_expiry {lifetime // 3} s")


def test_timer_unit_runs_and_a_forced_renewal_is_served_with_cookie_keys_kept(lab: Lab) -> None:
    box = lab.box
    assert lab.converge.returncode == 0
    box.sh("systemctl start ntsops-acme-renew.service")  # oneshot: returns when done, fails on non-zero
    assert "not due for renewal" in box.sh("journalctl -u ntsops-acme-renew.service --no-pager -o cat")

    before_served = served_sha256(box)
    before_pid = box.sh("systemctl show -p MainPID --value chrony").strip()
    keys_before = box.sh("cat /var/lib/chrony/ntskeys", check=False)
    renewed = acme(box, "renew", "--force")
    assert renewed.code == 0, renewed.stdout + renewed.stderr
    assert "renewed" in renewed.stdout
    after = served_sha256(box)
    assert after != before_served and after == file_sha256(box, f"/etc/letsencrypt/live/{NAME}/cert.pem")
    assert box.sh("systemctl show -p MainPID --value chrony").strip() != before_pid  # chronyd restarted
    keys_after = box.sh("cat /var/lib/chrony/ntskeys", check=False)
    # chronyd dumps its server keys at exit and reads them back at start (ntsdumpdir); the file's
    # second line holds the age of the current key, which moves on, the key lines must not.
    assert keys_before and keys_before.split("\n")[2:] == keys_after.split("\n")[2:], (keys_before, keys_after)
    recorded = state(box)
    assert recorded["last_deploy"]["ok"] is True and recorded["served_matches"] is True
    print(f"\n[acme] forced renewal deployed in {recorded['last_deploy']['seconds']:.1f} s")


def _with_credentials(box: Box, key_name: str, secret: str) -> None:
    box.sh(f"cp -p {CREDENTIALS} {CREDENTIALS}.good")
    box.sh(f"sed -i -e 's|^dns_rfc2136_name = .*|dns_rfc2136_name = {key_name}|' "
           f"-e 's|^dns_rfc2136_secret = .*|dns_rfc2136_secret = {secret}|' {CREDENTIALS}")


def _restore_credentials(box: Box) -> None:
    box.sh(f"mv {CREDENTIALS}.good {CREDENTIALS}")


def test_wrong_tsig_secret_is_one_line_and_the_old_certificate_stays(lab: Lab) -> None:
    box = lab.box
    before = served_sha256(box)
    wrong = base64.b64encode(secrets.token_bytes(32)).decode()
    _with_credentials(box, KEY_NAME, wrong)
    try:
        run = acme(box, "renew", "--force")
    finally:
        _restore_credentials(box)
    line = one_failure_line(run, "renew", "rejected the challenge TSIG key")
    assert wrong not in run.stdout + run.stderr
    assert served_sha256(box) == before
    assert state(box)["last_run"]["reason"] == "tsig_rejected"
    print(f"\n[acme] {line}")


def test_update_refused_by_policy_is_one_line_and_the_old_certificate_stays(lab: Lab) -> None:
    box = lab.box
    before = served_sha256(box)
    # A valid key, allowed only for another name's challenge record.
    _with_credentials(box, OTHER_KEY_NAME, lab.other_secret)
    try:
        run = acme(box, "renew", "--force")
    finally:
        _restore_credentials(box)
    line = one_failure_line(run, "renew", "refused the TXT update")
    assert lab.other_secret not in run.stdout + run.stderr
    assert served_sha256(box) == before
    recorded = state(box)
    assert recorded["last_run"]["reason"] == "update_refused" and recorded["consecutive_failures"] >= 2
    print(f"\n[acme] {line}")


def test_failed_restart_in_the_deploy_puts_the_old_certificate_back(lab: Lab) -> None:
    box = lab.box
    before = served_sha256(box)
    # chronyd's next start fails once (a real failed restart), the one after works. The "+"
    # runs the check outside the unit's sandbox, whose ProtectSystem=strict would stop the rm.
    box.sh("mkdir -p /run/systemd/system/chrony.service.d && touch /run/ntsops-fail-once && printf "
           "'[Service]\\nExecStartPre=+/bin/sh -c \"if [ -e /run/ntsops-fail-once ]; then rm /run/ntsops-fail-once;"
           " exit 1; fi\"\\n' > /run/systemd/system/chrony.service.d/fail-once.conf && systemctl daemon-reload")
    try:
        run = acme(box, "renew", "--force")
    finally:
        box.sh("rm -f /run/systemd/system/chrony.service.d/fail-once.conf /run/ntsops-fail-once && "
               "systemctl daemon-reload")
    line = one_failure_line(run, "deploy", "restart: systemctl restart chrony exited with status")
    assert "the previous certificate is served again" in line
    assert served_sha256(box) == before == file_sha256(box, SERVED_CERT)
    recorded = state(box)
    assert recorded["last_deploy"]["step"] == "restart" and recorded["last_deploy"]["previous_served_again"] is True
    # The next timer run retries the deploy of the certificate the lineage holds.
    retried = acme(box, "renew")
    assert retried.code == 0 and "deploy of the renewed certificate retried" in retried.stdout, retried
    assert served_sha256(box) == file_sha256(box, f"/etc/letsencrypt/live/{NAME}/cert.pem") != before
    print(f"\n[acme] {line}")


def _other_credentials(lab: Lab) -> str:
    """Credentials for OTHER's challenge record (its own key), for lineages besides NAME's."""
    path = f"{TEST_DIR}/other.ini"
    lab.box.write(path, (
        f"dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = 53\ndns_rfc2136_name = {OTHER_KEY_NAME}\n"
        f"dns_rfc2136_secret = {lab.other_secret}\ndns_rfc2136_algorithm = HMAC-SHA256\n"), "0600")
    return path


def test_certificate_for_the_wrong_name_is_not_deployed(lab: Lab) -> None:
    box = lab.box
    before = served_sha256(box)
    _other_credentials(lab)
    # Someone re-issues the lineage for another name; certbot replaces live/NAME and runs the hook.
    run = box.run(
        f"REQUESTS_CA_BUNDLE={TLS_CA} certbot --non-interactive certonly --cert-name {NAME} -d {OTHER} "
        f"--authenticator dns-rfc2136 --dns-rfc2136-credentials {TEST_DIR}/other.ini "
        f"--dns-rfc2136-propagation-seconds 1 --server {PEBBLE_URL} --deploy-hook {HOOK}")
    output = run.stdout + run.stderr
    assert "check: " in output and "does not" in output and OTHER in output, output[-3000:]
    assert served_sha256(box) == before
    assert state(box)["last_deploy"]["reason"] == "wrong_name"
    # The timer's path: the renewal of that lineage fails in the deploy, loudly, and nothing changes.
    renewal = acme(box, "renew", "--force")
    line = one_failure_line(renewal, "deploy", "nothing was changed")
    assert served_sha256(box) == before
    print(f"\n[acme] {line}")


def test_challenge_that_has_not_reached_the_server_the_ca_asks(lab: Lab) -> None:
    box = lab.box
    before = served_sha256(box)
    # A secondary that gets no NOTIFY and refreshes hourly, and a second Pebble that asks only it:
    # the TXT record is on the primary, but not where the CA looks within the propagation wait.
    box.write("/etc/bind/stale-secondary.conf", (
        'options { directory "/var/cache/bind-stale"; pid-file "/run/named-stale/named.pid";'
        ' session-keyfile "/run/named-stale/session.key"; listen-on port 5353 { 127.0.0.1; };'
        " listen-on-v6 { none; }; transfer-source 127.0.0.1; query-source address 127.0.0.1; recursion no;"
        " notify no; dnssec-validation no; };\n"
        f'zone "{ZONE}" {{ type secondary; file "/var/cache/bind-stale/db.{ZONE}"; primaries {{ 127.0.0.1; }}; }};\n'
        "controls { };\n"))
    box.sh("mkdir -p /var/cache/bind-stale /run/named-stale && chown bind:bind /var/cache/bind-stale /run/named-stale"
           " && systemd-run --unit named-stale named -f -u bind -c /etc/bind/stale-secondary.conf")
    box.sh(f"sed 's/:14000/:14001/;s/:15000/:15001/' {TEST_DIR}/pebble.json > {TEST_DIR}/pebble-stale.json && "
           f"systemd-run --unit pebble-stale {PEBBLE_OPTIONS} "
           f"pebble -config {TEST_DIR}/pebble-stale.json -dnsserver 127.0.0.1:5353")
    try:
        box.sh("for i in $(seq 50); do dig +short -p 5353 @127.0.0.1 acme.test SOA | grep -q ns1 && "
               "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 14001), 1)' 2>/dev/null && exit 0;"
               " sleep 0.2; done; exit 1")
        run = box.run(
            f"REQUESTS_CA_BUNDLE={TLS_CA} python3 {LAUNCHER} issue --cert-name propagation -d {OTHER} "
            f"--credentials {_other_credentials(lab)} --propagation-seconds 1 -- --server https://127.0.0.1:14001/dir "
            "--agree-tos --register-unsafely-without-email")
    finally:
        box.sh("systemctl stop pebble-stale named-stale", check=False)
    line = one_failure_line(run, "issue", "the CA did not see the challenge TXT record", cert_name="propagation")
    assert served_sha256(box) == before
    print(f"\n[acme] {line}")


def test_rate_limited_order_is_one_line_the_old_certificate_stays_and_the_next_run_retries(lab: Lab) -> None:
    box = lab.box
    before = served_sha256(box)
    credentials = _other_credentials(lab)
    flag = f"{TEST_DIR}/rate-limit-on"
    box.write(f"{TEST_DIR}/acme_ratelimit.py", RATELIMIT_FRONT.read_text())
    box.sh(f"touch {flag} && systemd-run --unit acme-ratelimit python3 {TEST_DIR}/acme_ratelimit.py "
           f"--listen-port {RATELIMIT_PORT} --upstream-port 14000 --cert {TEST_DIR}/pebble.crt "
           f"--key {TEST_DIR}/pebble.key --ca {TLS_CA} --flag {flag}")
    cert_name = "ratelimited"
    lineage_state = f"/var/lib/ntsops-acme/{cert_name}.json"
    live = f"/etc/letsencrypt/live/{cert_name}/cert.pem"
    issue = (f"REQUESTS_CA_BUNDLE={TLS_CA} python3 {LAUNCHER} issue --cert-name {cert_name} -d {OTHER} "
             f"--credentials {credentials} --propagation-seconds 1 -- --server {RATELIMIT_URL} "
             "--agree-tos --register-unsafely-without-email")
    try:
        box.sh("for i in $(seq 50); do python3 -c 'import socket; socket.create_connection("
               f"(\"127.0.0.1\", {RATELIMIT_PORT}), 1)' 2>/dev/null && exit 0; sleep 0.2; done; exit 1")
        # The first issuance of a lineage, refused by the CA's limit.
        refused = box.run(issue)
        line = one_failure_line(refused, "issue", "refused the order for its rate limit", cert_name=cert_name)
        assert json.loads(box.sh(f"cat {lineage_state}"))["last_run"]["reason"] == "rate_limited"
        assert box.sh(f"test -e {live} && echo present || echo absent").strip() == "absent"
        # The limit lifts: the next run (what the timer does) issues.
        box.sh(f"rm {flag}")
        issued = box.run(issue)
        assert issued.code == 0, issued.stdout + issued.stderr
        issued_sha = file_sha256(box, live)
        # A renewal refused by the limit keeps the lineage's certificate and says so in one line.
        box.sh(f"touch {flag}")
        renewal = box.run(f"REQUESTS_CA_BUNDLE={TLS_CA} python3 {LAUNCHER} renew --cert-name {cert_name} "
                          f"--credentials {credentials} --force")
        renew_line = one_failure_line(renewal, "renew", "refused the order for its rate limit", cert_name=cert_name)
        recorded = json.loads(box.sh(f"cat {lineage_state}"))
        assert recorded["last_run"]["reason"] == "rate_limited" and recorded["consecutive_failures"] == 1
        assert file_sha256(box, live) == issued_sha
        # Both refusals came from the front's limit, not from anything else on the way.
        journal = box.sh("journalctl -u acme-ratelimit --no-pager -o cat")
        assert journal.count("with 429 rateLimited") == 2, journal
    finally:
        box.sh("systemctl stop acme-ratelimit", check=False)
    assert served_sha256(box) == before
    print(f"\n[acme] {line}\n[acme] {renew_line}")


def test_acme_server_down_is_one_line_and_the_old_certificate_stays(lab: Lab) -> None:
    box = lab.box
    before = served_sha256(box)
    box.sh("systemctl stop pebble")
    started = time.monotonic()
    run = acme(box, "renew", "--force")
    line = one_failure_line(run, "renew", "the ACME server cannot be reached")
    assert served_sha256(box) == before
    assert state(box)["last_run"]["reason"] == "acme_unreachable"
    assert re.search(r"ntsops-acme: renew of \S+ failed", run.stderr)
    # What the alert NtsAcmeRenewalFailing fires on, from the exporter's /metrics.
    metrics = exporter_metrics(box)
    seen = time.monotonic() - started
    lineage = f'cert_name="{NAME}"'
    assert f"ntsops_acme_last_run_success{{{lineage}}} 0" in metrics, metrics
    assert f'ntsops_acme_last_failure_info{{{lineage},step="renew",reason="acme_unreachable"}} 1' in metrics
    assert 'ntsops_acme_last_run_success{cert_name="propagation"} 0' in metrics
    print(f"\n[acme] {line}\n[acme] failure on the exporter's /metrics {seen:.1f} s after the run started")


# Debian 13's Pebble in the ACME image (scripts/lab/Containerfile.acme) and its lifetime here.
PEBBLE_TRIXIE = "/usr/local/bin/pebble-trixie"
SHORT_LIFETIME_S = 90
SHORT_PORT = 14003
# certbot's renewal check and the run itself take a few seconds; the wait for "due" allows this.
DUE_SLACK_S = 3


def test_short_lived_certificate_is_renewed_when_a_third_is_left_and_deployed(lab: Lab) -> None:
    box = lab.box
    assert box.sh(f"test -x {PEBBLE_TRIXIE} && echo yes || echo no").strip() == "yes", (
        f"{IMAGE} has no {PEBBLE_TRIXIE}: rebuild it with make images")
    config = json.loads(box.sh(f"cat {TEST_DIR}/pebble.json"))
    config["pebble"].update({"listenAddress": f"127.0.0.1:{SHORT_PORT}", "managementListenAddress": "127.0.0.1:15003",
                             "certificateValidityPeriod": SHORT_LIFETIME_S})
    box.write(f"{TEST_DIR}/pebble-short.json", json.dumps(config))
    box.sh(f"systemd-run --unit pebble-short {PEBBLE_OPTIONS} {PEBBLE_TRIXIE} -config {TEST_DIR}/pebble-short.json "
           "-dnsserver 127.0.0.1:53")
    live = f"/etc/letsencrypt/live/{NAME}/cert.pem"
    try:
        box.sh("for i in $(seq 50); do python3 -c 'import socket; socket.create_connection("
               f"(\"127.0.0.1\", {SHORT_PORT}), 1)' 2>/dev/null && exit 0; sleep 0.2; done; exit 1")
        # The lineage moves to the short-lived CA; certbot runs the deploy hooks for a lineage it replaces.
        moved = box.run(f"REQUESTS_CA_BUNDLE={TLS_CA} python3 {LAUNCHER} issue --force --cert-name {NAME} -d {NAME} "
                        f"--credentials {CREDENTIALS} --propagation-seconds 1 -- "
                        f"--server https://127.0.0.1:{SHORT_PORT}/dir --agree-tos --register-unsafely-without-email")
        assert moved.code == 0, moved.stdout + moved.stderr
        recorded = state(box)
        lifetime = recorded["lifetime_seconds"]
        assert SHORT_LIFETIME_S - 2 <= lifetime <= SHORT_LIFETIME_S + 1, recorded
        margin = recorded["renew_before_expiry_seconds"]
        assert margin == int(lifetime / 3)
        conf = box.sh(f"cat /etc/letsencrypt/renewal/{NAME}.conf")
        assert f"renew_before_expiry = {margin} seconds" in conf, conf
        first = file_sha256(box, live)
        assert served_sha256(box) == first, recorded.get("last_deploy")

        # The timer's run, unforced: not due while more than a third is left, due once less is.
        not_due = acme(box, "renew")
        assert not_due.code == 0 and "not due for renewal" in not_due.stdout, not_due.stdout + not_due.stderr
        assert file_sha256(box, live) == first
        due_at = recorded["not_after"] - margin
        time.sleep(max(0.0, due_at - time.time()) + DUE_SLACK_S)
        renewed = acme(box, "renew")
        took = time.time() - due_at
        assert renewed.code == 0 and "renewed" in renewed.stdout, renewed.stdout + renewed.stderr
        after = file_sha256(box, live)
        assert after != first and served_sha256(box) == after
        final = state(box)
        assert final["last_deploy"]["ok"] is True and final["served_matches"] is True
        assert final["not_after"] > recorded["not_after"]
    finally:
        box.sh("systemctl stop pebble-short", check=False)
    print(f"\n[acme] {lifetime:.0f} s certificate from Pebble 2.6: renew_before_expiry {margin} s; not due at issue,"
          f" renewed and served {took:.1f} s after it fell due (the run started {DUE_SLACK_S} s after)")
