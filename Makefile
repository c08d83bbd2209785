# ntsops: `make lab` runs the whole job on a local lab, `make test` runs every test.
# Every target bootstraps what it needs; bootstrapping is idempotent and quick when
# everything is already present.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
COLLECTION_LINK := .collections/ansible_collections/ntsops/nts

# The ansible-core lines `make sanity`, `make unit` and `make artifact-test` test.
# The main line runs in .venv (requirements.txt, Python 3.11; everything else uses
# it too); every other line in .venv-<line> from requirements-<line>.txt with its
# own Python. meta/runtime.yml's requires_ansible covers exactly these lines.
CORE_LINE := 2.19
OTHER_CORE_LINES := 2.18
CORE_LINES := $(CORE_LINE) $(OTHER_CORE_LINES)
PYTHON_2.19 := 3.11
PYTHON_2.18 := 3.13
# The interpreter a line's venv is made with; pyenv's, else one on PATH.
python_for = $(or $(firstword $(wildcard $(HOME)/.pyenv/versions/$(PYTHON_$(1)).*/bin/python$(PYTHON_$(1)))), \
	python$(PYTHON_$(1)))
venv_for = $(if $(filter $(1),$(CORE_LINE)),$(VENV),$(VENV)-$(1))
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help bootstrap system venv link collections images lint sanity unit integration molecule test test-static test-integration test-molecule rules-test \
	lab lab-down lab-drill-late-dns lab-planned-move requirements clean artifact-test \
	bench-endpoint bench-simulate bench-ddns bench-herd bench-check bench-recovery-d13 bench-recovery-d13-fresh bench-recovery-ntpdrs bench-exporter bench-added-address bench-acme \
	$(foreach line,$(CORE_LINES),sanity-$(line) unit-$(line) artifact-test-$(line)) \
	$(foreach line,$(OTHER_CORE_LINES),venv-$(line) requirements-$(line))

help:
	@echo "make lab          build what is needed and run the whole job on a local lab"
	@echo "make test         build what is needed and run every test (lint, sanity, unit, artifact, integration, molecule)"
	@echo "make lint         yamllint, ruff, mypy, ansible-lint"
	@echo "make rules-test   promtool check rules and promtool test rules on the shipped alert rules"
	@echo "make sanity       ansible-test sanity for the collection on every tested ansible-core line"
	@echo "make unit         unit tests on every tested ansible-core line"
	@echo "make sanity-2.18  (or unit-2.18, artifact-test-2.18, sanity-2.19, ...) one line only"
	@echo "make artifact-test  build the collection tarball, install it alone, run every plugin and role from it"
	@echo "make integration  integration tests against real chronyd, ntpd and named (root)"
	@echo "make molecule     Molecule scenarios for the server and client roles in Podman"
	@echo "make lab-down     remove the lab"
	@echo "make lab-drill-late-dns  the bad case: DNS updated after clients looked again (~30-70 min)"
	@echo "make lab-planned-move    planned address move on the running lab, measured (RUNS=N in a row, REFUSAL=1, WATCH_POLLS=P)"
	@echo "make bench-endpoint  endpoint_check time per step, and 16 addresses against one (root)"
	@echo "make bench-simulate  time the fleet simulator for 1,000,000 clients"
	@echo "make bench-ddns      address change and IPv6 renumbering -> both DNS servers via the agent; module no-op (root)"
	@echo "make bench-check     start-up of ntsops check next to chronyd -Q, one address (root)"
	@echo "make bench-exporter  ntsops exporter: probe latency, CPU per probe, most targets a minute (root)"
	@echo "make bench-herd      NTS-KE capacity of local chronyd, and its rate limit against a NAT herd (root)"
	@echo "make bench-recovery-d13  chrony 4.6.1 / NTPsec 1.2.3 clients vs the recovery model, fresh and late DNS (root, ~15 min)"
	@echo "make bench-recovery-d13-fresh  the same, fresh DNS only (root, ~4 min)"
	@echo "make bench-recovery-ntpdrs  ntpd-rs 1.4.0 clients vs the recovery model: old address refused, dark, unreachable, fresh and late DNS; NAK (root, ~10 min)"
	@echo "make bench-added-address  which address of a two-A name chronyd 4.3 / NTPsec 1.2.2 take at start, RUNS=N times (root)"
	@echo "make bench-acme      forced ACME renewals: time to served, old cookie accepted, failure to metric, RUNS=N (root, ~5 min)"

bootstrap: system venv link collections

system:
	@sh scripts/bootstrap-system.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@# The ntsops command, editable: it always runs this checkout's code.
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . \
	  >$(VENV)/ntsops-install.log 2>&1 || { cat $(VENV)/ntsops-install.log; exit 1; }
	@touch $@

link: $(COLLECTION_LINK)

# containers.podman (Molecule's driver, the lab's connection) from the PyPI
# `ansible` wheel: Galaxy is not reachable here.
collections: venv link
	@sh scripts/install-podman-collection.sh

# The Debian 12 and 13 systemd images (debootstrap, no registry) and the lab image;
# each is rebuilt only when its recipe changed.
images: system collections
	@bash scripts/lab.sh images

$(COLLECTION_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../.. $@

requirements:
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q -r requirements.in
	@{ echo '# Generated from requirements.in by `make requirements`; do not edit by hand.'; \
	   $(PY) -m pip freeze --all --exclude pip --exclude-editable; } > requirements.txt

# Each other ansible-core line: a venv with only what sanity and the unit tests need,
# pinned in requirements-<line>.txt (`make requirements-<line>` regenerates it).
define other_line
venv-$(1): $(VENV)-$(1)/.installed

$(VENV)-$(1)/.installed: requirements-$(1).txt
	@test -x $(VENV)-$(1)/bin/python || $(call python_for,$(1)) -m venv $(VENV)-$(1)
	@$(VENV)-$(1)/bin/python -m pip install -q --disable-pip-version-check -r requirements-$(1).txt
	@touch $$@

requirements-$(1):
	@test -x $(VENV)-$(1)/bin/python || $(call python_for,$(1)) -m venv $(VENV)-$(1)
	@$(VENV)-$(1)/bin/python -m pip install -q --disable-pip-version-check -r requirements-$(1).in
	@{ echo '# Generated from requirements-$(1).in by `make requirements-$(1)`; do not edit by hand.'; \
	   $(VENV)-$(1)/bin/python -m pip freeze --all --exclude pip; } > requirements-$(1).txt
endef
$(foreach line,$(OTHER_CORE_LINES),$(eval $(call other_line,$(line))))

lint: venv link
	yamllint -s .
	ruff check .
	mypy -p ansible_collections.ntsops.nts.plugins.module_utils
	ansible-lint

# ansible-test needs the collection at a real ansible_collections/NS/NAME path, not
# behind a symbolic link, so sanity runs on a copy of the files git would commit
# (one per line, .build/<line>/). The copy gets its own git repository: otherwise
# ansible-test finds the checkout's, in which .build is ignored, and sees no files.
# ansible-test downloads a get-pip script for its sanity venvs; the offline stand-in
# goes where it looks, under the pip version that line's ansible-test asks for.
sanity: $(foreach line,$(CORE_LINES),sanity-$(line))

unit: $(foreach line,$(CORE_LINES),unit-$(line))

# The collection as users get it: build the tarball, install it alone into
# .cache/artifact/, run every module, filter and role from there (tests/artifact/run.py).
artifact-test: $(foreach line,$(CORE_LINES),artifact-test-$(line))

define core_line
sanity-$(1): $(call venv_for,$(1))/.installed
	@rm -rf .build/$(1) && mkdir -p .build/$(1)/ansible_collections/ntsops/nts
	@git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- ./ .build/$(1)/ansible_collections/ntsops/nts/
	@cd .build/$(1)/ansible_collections/ntsops/nts && git init -q && git add -A
	@pip_version=$$$$(sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" \
	    $(call venv_for,$(1))/lib/python$(PYTHON_$(1))/site-packages/ansible_test/_internal/python_requirements.py); \
	  mkdir -p $(HOME)/.ansible/test/cache; \
	  cp scripts/ansible-test-pip-bootstrap.py $(HOME)/.ansible/test/cache/get_pip_$$$${pip_version//./_}.py
	cd .build/$(1)/ansible_collections/ntsops/nts && \
	  $(CURDIR)/$(call venv_for,$(1))/bin/ansible-test sanity --venv --python $(PYTHON_$(1)) --color no

unit-$(1): $(call venv_for,$(1))/.installed link
	$(call venv_for,$(1))/bin/python -m pytest -q tests/unit

artifact-test-$(1): $(call venv_for,$(1))/.installed
	$(call venv_for,$(1))/bin/python tests/artifact/run.py
endef
$(foreach line,$(CORE_LINES),$(eval $(call core_line,$(line))))

INTEGRATION_RUN := pytest -q tests/integration
MOLECULE_RUN := CONTAINERS_CONF=$(CURDIR)/molecule/containers.conf molecule test --all

integration: bootstrap images
	$(INTEGRATION_RUN)

molecule: bootstrap images
	$(MOLECULE_RUN)

# `make test`: bootstrap once, then three streams at the same time, each printed whole
# when it ends, with its wall time. The static checks start at once and run at the
# lowest priority; the integration tests and Molecule start when the images are built
# (once, for both), Molecule at a lower priority than the integration tests, whose
# daemons' timing is measured.
test: bootstrap
	@$(MAKE) --no-print-directory -j3 --output-sync=target test-static test-integration test-molecule

test-static:
	@SECONDS=0; nice -n 19 $(MAKE) --no-print-directory -j1 lint rules-test sanity unit artifact-test; \
	  echo "test: lint, rules-test, sanity, unit and artifact-test took $$SECONDS s"

test-integration: images
	@SECONDS=0; $(INTEGRATION_RUN); echo "test: integration took $$SECONDS s"

test-molecule: images
	@SECONDS=0; nice -n 5 env $(MOLECULE_RUN); echo "test: molecule took $$SECONDS s"

# The alert rules Prometheus users load (extras/monitoring/prometheus/), checked and
# unit-tested by Debian's promtool, which bootstrap unpacks into .cache/daemons.
PROMTOOL := .cache/daemons/prometheus/usr/bin/promtool
RULES_DIR := extras/monitoring/prometheus

rules-test: system
	$(PROMTOOL) check rules $(RULES_DIR)/ntsops.rules.yml
	cd $(RULES_DIR) && $(CURDIR)/$(PROMTOOL) test rules ntsops.rules.test.yml

# Benchmarks print their figures and write JSON to benchmarks/results/.
bench-endpoint: bootstrap
	$(PY) benchmarks/endpoint_bench.py

bench-simulate: venv link
	$(PY) benchmarks/simulate_bench.py

bench-ddns: bootstrap
	$(PY) benchmarks/ddns_bench.py --changes 20 --renumbers 10 --noop-runs 5 --json benchmarks/results/ddns.json

bench-check: bootstrap
	$(PY) benchmarks/check_startup.py

bench-exporter: bootstrap
	$(PY) benchmarks/exporter_bench.py

bench-herd: bootstrap
	$(PY) benchmarks/herd_capacity.py
	$(PY) benchmarks/herd_ratelimit.py

# Debian 13 clients in their own containers on 198.18.2.0/24 (benchmarks/recovery_d13.py);
# serialised with the other heavy runs on this machine.
bench-recovery-d13: bootstrap images
	flock /tmp/ntsops-integration.lock $(PY) benchmarks/recovery_d13.py --chrony 20 --ntpsec 20 \
		--late-chrony 100 --late-ntpsec 5 --window 600

bench-recovery-d13-fresh: bootstrap images
	flock /tmp/ntsops-integration.lock $(PY) benchmarks/recovery_d13.py --chrony 20 --ntpsec 20 \
		--json benchmarks/results/recovery_d13_fresh.json

# ntpd-rs 1.4.0 clients on 198.18.4.0/24 (benchmarks/ntpdrs_recovery.py): one rig with
# a group of 4 clients per old-address behaviour and DNS latency, then the NAK rig (its
# key change hits every client of the server); each run holds the shared lock only for
# itself.
bench-recovery-ntpdrs: bootstrap images
	flock /tmp/ntsops-integration.lock $(PY) benchmarks/ntpdrs_recovery.py --clients 4 --poll 3 \
		--variants refused dark unreachable --latencies 0 120 --json benchmarks/results/ntpdrs_recovery.json
	flock /tmp/ntsops-integration.lock $(PY) benchmarks/ntpdrs_recovery.py --clients 4 --poll 3 \
		--variants nak --latencies 0 --json benchmarks/results/ntpdrs_recovery_nak.json

# Restarting clients against a DNS server that shuffles two A records
# (benchmarks/added_address.py, 198.18.7.0/24): how often each takes the added one.
bench-added-address: bootstrap
	flock /tmp/ntsops-integration.lock $(PY) benchmarks/added_address.py --runs $(or $(RUNS),10)

# Forced renewals against real Pebble, BIND, certbot and chronyd in one container
# (benchmarks/acme_renewal.py, harness/acme_rig.py).
bench-acme: bootstrap images
	flock /tmp/ntsops-integration.lock $(PY) benchmarks/acme_renewal.py --runs $(or $(RUNS),5) \
		--json benchmarks/results/acme_renewal.json

# Builds what it needs, starts the lab, runs site.yml and verify.yml, runs the
# recovery drill and leaves the lab running; running it again is idempotent.
lab: bootstrap
	bash scripts/lab.sh all

lab-down: venv link
	bash scripts/lab.sh down

lab-drill-late-dns: bootstrap
	bash scripts/lab.sh drill-late-dns

# RUNS=N: N moves in a row, alternating direction (scripts/lab_planned_move.py --runs);
# REFUSAL=1: first the two pre-move refusals (--refusal); WATCH_POLLS=P: polls watched
# after each move with NTP closed on the old address (--watch-polls).
lab-planned-move: bootstrap
	bash scripts/lab.sh planned-move $(if $(RUNS),--runs $(RUNS)) $(if $(REFUSAL),--refusal) \
		$(if $(WATCH_POLLS),--watch-polls $(WATCH_POLLS))

clean:
	rm -rf .build .collections .cache/run .cache/artifact
