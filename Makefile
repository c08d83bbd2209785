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
SANITY_TREE := .build/ansible_collections/ntsops/nts
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help bootstrap system venv link lint sanity unit integration test lab requirements clean \
	bench-endpoint bench-simulate bench-ddns bench-herd

help:
	@echo "make lab          build what is needed and run the whole job on a local lab"
	@echo "make test         build what is needed and run every test (lint, sanity, unit, integration)"
	@echo "make lint         yamllint, ruff, mypy, ansible-lint"
	@echo "make sanity       ansible-test sanity for the collection"
	@echo "make unit         unit tests"
	@echo "make integration  integration tests against real chronyd, ntpd and named (root)"
	@echo "make bench-endpoint  endpoint_check time per step, and 16 addresses against one (root)"
	@echo "make bench-simulate  time the fleet simulator for 1,000,000 clients"
	@echo "make bench-ddns      address change -> both DNS servers via the agent; module no-op time (root)"
	@echo "make bench-herd      NTS-KE capacity of local chronyd, and its rate limit against a NAT herd (root)"

bootstrap: system venv link

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

$(COLLECTION_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../.. $@

requirements:
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q -r requirements.in
	@{ echo '# Generated from requirements.in by `make requirements`; do not edit by hand.'; \
	   $(PY) -m pip freeze --all --exclude pip --exclude-editable; } > requirements.txt

lint: venv link
	yamllint -s .
	ruff check .
	mypy -p ansible_collections.ntsops.nts.plugins.module_utils
	ansible-lint

# ansible-test needs the collection at a real ansible_collections/NS/NAME path, not
# behind a symbolic link, so sanity runs on a copy of the files git would commit.
# The copy gets its own git repository: otherwise ansible-test finds the checkout's,
# in which .build is ignored, and sees no files at all.
sanity: venv
	@rm -rf $(SANITY_TREE) && mkdir -p $(SANITY_TREE)
	@git ls-files -co --exclude-standard -z | rsync -a --from0 --files-from=- ./ $(SANITY_TREE)/
	@cd $(SANITY_TREE) && git init -q && git add -A
	@pip_version=$$(sed -n "s/.*pip='\([0-9.]*\)'.*/\1/p" \
	    $(VENV)/lib/python3.11/site-packages/ansible_test/_internal/python_requirements.py); \
	  mkdir -p $(HOME)/.ansible/test/cache; \
	  cp scripts/ansible-test-pip-bootstrap.py $(HOME)/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	cd $(SANITY_TREE) && $(CURDIR)/$(BIN)/ansible-test sanity --venv --python 3.11 --color no

unit: venv link
	pytest -q tests/unit

integration: bootstrap
	pytest -q tests/integration

test: bootstrap lint sanity unit integration

# Benchmarks print their figures and write JSON to benchmarks/results/.
bench-endpoint: bootstrap
	$(PY) benchmarks/endpoint_bench.py

bench-simulate: venv link
	$(PY) benchmarks/simulate_bench.py

bench-ddns: bootstrap
	$(PY) benchmarks/ddns_bench.py --changes 20 --noop-runs 5

bench-herd: bootstrap
	$(PY) benchmarks/herd_capacity.py
	$(PY) benchmarks/herd_ratelimit.py

lab:
	@echo "make lab: the lab is not built yet (see the lab issue)." >&2
	@exit 1

clean:
	rm -rf .build .collections .cache/run
