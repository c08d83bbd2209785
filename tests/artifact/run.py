"""Build the collection tarball, install it alone, and run every plugin and role from it.

Run from the repository root (`make artifact-test`): .venv/bin/python tests/artifact/run.py

1. `ansible-galaxy collection build`, then the tarball's file list is checked: the
   collection's content is there, this repository's tooling (galaxy.yml's
   build_ignore) is not.
2. `ansible-galaxy collection install` into an empty collections path under
   .cache/artifact/; from here on ansible runs with an ansible.cfg whose only
   collections path is that one (no system paths, an empty roles path), from a
   working directory outside the checkout.
3. The modules, filters and roles are listed from the installed copy
   (`ansible-doc -l`); every one's file must be under the install directory, and
   every one's documentation must render.
4. tests/artifact/playbook.yml runs on localhost: each known module on a harmless
   target, every listed module once without arguments (its argument spec answers,
   it does not fail to import), each filter's first documented example, and each
   role's argument validation, once with arguments that must be refused (so none of
   the role's tasks runs) and once with valid ones through
   ansible.builtin.validate_argument_spec. Nothing on this machine changes.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]
HERE = REPO / "tests" / "artifact"
WORK = REPO / ".cache" / "artifact"
BIN = Path(sys.executable).parent
NAMESPACE, NAME = "ntsops", "nts"
# In the artifact: the collection. Not in it: the repository's tooling.
MUST_HAVE = ("MANIFEST.json", "FILES.json", "README.md", "LICENSE", "meta/runtime.yml", "plugins/modules",
             "plugins/filter", "plugins/module_utils", "roles/server", "roles/client", "roles/ddns_agent",
             "roles/exporter", "extras/monitoring/prometheus/ntsops.rules.yml",
             "playbooks/site.yml", "docs", "changelogs/changelog.yaml")
MUST_NOT_HAVE = ("ntsops_cli", "scripts", "benchmarks", "tests", "molecule", "Makefile", "pyproject.toml",
                 "requirements.txt", "requirements.in", ".ci", "ansible.cfg", ".ansible-lint", ".yamllint",
                 "inventories/lab", "playbooks/lab", ".venv", ".cache", ".collections", ".build")
# A role option of one of these types refuses this value.
WRONG_VALUE = {"int": "not a number", "float": "not a number", "bool": "neither", "dict": "not a mapping",
               "list": {"not": "a list"}}


class ArtifactError(RuntimeError):
    pass


def run(argv: list[str], env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ArtifactError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout


def build(env: dict[str, str]) -> Path:
    out = WORK / "build"
    run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO)], env, WORK)
    (tarball,) = out.glob(f"{NAMESPACE}-{NAME}-*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    tops = {name.split("/", 1)[0] for name in names}
    missing = [path for path in MUST_HAVE if not any(n == path or n.startswith(path + "/") for n in names)]
    extra = [path for path in MUST_NOT_HAVE if any(n == path or n.startswith(path + "/") for n in names)]
    if missing or extra:
        raise ArtifactError(f"{tarball.name}: missing {missing}, should not contain {extra} (top: {sorted(tops)})")
    print(f"built {tarball.name}: {len(names)} entries, top level {' '.join(sorted(tops))}")
    return tarball


def isolated_env(collections: Path) -> dict[str, str]:
    """ansible that sees only `collections`: its own ansible.cfg, no system paths, no roles path."""
    config = WORK / "ansible.cfg"
    (WORK / "roles").mkdir(exist_ok=True)
    config.write_text(
        "[defaults]\n"
        f"collections_path = {collections}\n"
        "collections_scan_sys_path = false\n"
        f"roles_path = {WORK / 'roles'}\n"
        # the venv's python: the modules need its cryptography, pyOpenSSL and dnspython
        f"interpreter_python = {sys.executable}\n"
        "retry_files_enabled = false\n"
    )
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("ANSIBLE_") and key not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    env.update({"ANSIBLE_CONFIG": str(config), "ANSIBLE_COLLECTIONS_PATH": str(collections),
                "ANSIBLE_LOCAL_TEMP": str(WORK / "tmp"), "ANSIBLE_HOME": str(WORK / "home")})
    return env


def listed(kind: str, env: dict[str, str]) -> dict[str, Any]:
    names = sorted(json.loads(run([str(BIN / "ansible-doc"), "-t", kind, "-l", f"{NAMESPACE}.{NAME}", "--json"],
                                  env, WORK)))
    if not names:
        raise ArtifactError(f"the installed collection has no {kind} plugins")
    docs: dict[str, Any] = json.loads(run([str(BIN / "ansible-doc"), "-t", kind, "--json", *names], env, WORK))
    # Rendered as a user reads them: fails on documentation ansible-doc cannot format.
    run([str(BIN / "ansible-doc"), "-t", kind, *names], env, WORK)
    return docs


def plugin_file(kind: str, doc: dict[str, Any]) -> str:
    return str(doc["path"] if kind == "role" else doc["doc"]["filename"])


def first_example(name: str, doc: dict[str, Any]) -> dict[str, Any]:
    """A filter's first documented example task (self-contained by the docs' convention)."""
    tasks = yaml.safe_load(doc.get("examples") or "") or []
    for task in tasks:
        if name in json.dumps(task):
            return dict(task)
    raise ArtifactError(f"{name}: no documented example calls it")


def make_pki(directory: Path) -> dict[str, str]:
    """A CA and a certificate for localhost it issued, for cert_check."""
    directory.mkdir(parents=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ntsops artifact test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": directory / "ca.pem", "cert": directory / "fullchain.pem", "key": directory / "privkey.pem"}
    pem = serialization.Encoding.PEM
    paths["ca"].write_bytes(ca.public_bytes(pem))
    paths["cert"].write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    paths["key"].write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    paths["key"].chmod(0o600)
    return {name: str(path) for name, path in paths.items()}


def closed_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def module_calls(modules: list[str]) -> list[dict[str, Any]]:
    """Tasks that call each module once without arguments, in check mode, and look at the answer."""
    tasks: list[dict[str, Any]] = []
    for number, module in enumerate(modules):
        result = f"artifact_module_{number}"
        tasks.append({"name": f"{module} without arguments", module: {}, "check_mode": True,
                      "register": result, "failed_when": False})
        tasks.append({"name": f"{module} answered from its argument spec, not with a traceback",
                      "ansible.builtin.assert": {"that": [
                          f"{result}.module_stderr is not defined",
                          f"{result}.exception is not defined",
                          f"{result} is not failed or {result}.msg is search('missing required arguments|one of the "
                          "following is required|parameters are required together')",
                      ]}})
    return tasks


def role_cases(roles: dict[str, Any], installed: Path) -> list[dict[str, Any]]:
    """Per role: its argument spec (from the installed copy), valid and refused arguments."""
    valid_all = yaml.safe_load((HERE / "role_arguments.yml").read_text())
    cases = []
    for fqcn in sorted(roles):
        role = fqcn.rsplit(".", 1)[1]
        spec_file = installed / "roles" / role / "meta" / "argument_specs.yml"
        options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]["options"]
        valid = dict(valid_all.get(role, {}))
        uncovered = [name for name, option in options.items() if option.get("required") and name not in valid]
        if uncovered:
            raise ArtifactError(f"role {role}: give valid values for {uncovered} in tests/artifact/role_arguments.yml")
        wrong = next(((name, WRONG_VALUE[option["type"]]) for name, option in options.items()
                      if option.get("type") in WRONG_VALUE), None)
        if wrong is None:
            raise ArtifactError(f"role {role}: no option whose type refuses a wrong value")
        refused = {**valid, wrong[0]: wrong[1]}
        # include_role takes no templated vars: the refused arguments come from a file
        refused_file = WORK / f"role-{role}-refused.yml"
        refused_file.write_text(yaml.safe_dump(refused))
        cases.append({"name": fqcn, "spec": options, "valid": valid, "wrong_option": wrong[0],
                      "refused": refused, "refused_file": str(refused_file)})
    return cases


def main() -> int:
    started = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "tmp").mkdir(parents=True)
    collections = WORK / "collections"
    collections.mkdir()
    env = isolated_env(collections)
    try:
        tarball = build(env)
        run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections), str(tarball)],
            env, WORK)
        installed = collections / "ansible_collections" / NAMESPACE / NAME
        found = {kind: listed(kind, env) for kind in ("module", "filter", "role")}
        for kind, docs in found.items():
            outside = {name: plugin_file(kind, doc) for name, doc in docs.items()
                       if not Path(plugin_file(kind, doc)).resolve().is_relative_to(installed)}
            if outside:
                raise ArtifactError(f"{kind} plugins not loaded from the installed copy {installed}: {outside}")
            print(f"{kind}s from {installed}: {' '.join(sorted(docs))}")
        filter_tasks = [first_example(name, doc) for name, doc in sorted(found["filter"].items())]
        (WORK / "filter_examples.yml").write_text(yaml.safe_dump(filter_tasks, sort_keys=False))
        (WORK / "module_calls.yml").write_text(yaml.safe_dump(module_calls(sorted(found["module"])), sort_keys=False))
        extra_vars = {
            "artifact_installed": str(installed),
            "artifact_modules": sorted(found["module"]),
            "artifact_filters": sorted(found["filter"]),
            "artifact_filter_examples": str(WORK / "filter_examples.yml"),
            "artifact_module_calls": str(WORK / "module_calls.yml"),
            "artifact_roles": role_cases(found["role"], installed),
            "artifact_pki": make_pki(WORK / "pki"),
            "artifact_closed_port": closed_port(),
        }
        (WORK / "vars.json").write_text(json.dumps(extra_vars, indent=2))
        out = run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                   "-e", f"@{WORK / 'vars.json'}", str(HERE / "playbook.yml")], env, WORK)
        (WORK / "playbook.log").write_text(out)
        print(out[out.rfind("PLAY RECAP"):].strip())
        print(f"the play's output: {WORK / 'playbook.log'}")
    except ArtifactError as exc:
        print(f"artifact test failed: {exc}", file=sys.stderr)
        return 1
    print(f"artifact test passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
