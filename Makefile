# token-broker: build, run, test, install.
#   make dev      run token-brokerd --dev (a built-in demo issuer) after installing what is missing
#   make test     run every test (unit, engine, socket, system) after installing what is missing
#   make install  install binaries, units and the example config (DESTDIR, PREFIX honoured)
#   make deb      token-broker and token-broker-fleet .debs in .build-deb/, checked by lintian (README "Install ...")
#   make bench        the benchmarks of README "Performance" (release build in .build-bench)
#   make orderfile    the link order of token-brokerd's functions (README "Performance")
#   make reliability  the full-size crash, load and fault suites (README "Reliability")
#   make fuzz         libFuzzer on every target, FUZZ_SECONDS (300) each (README "Fuzzing")

SWIFT    ?= swift
PREFIX   ?= /usr
DESTDIR  ?=
SYSCONFDIR ?= /etc
UNITDIR  ?= /lib/systemd/system
BUILD    ?= .build
CONFIG   ?= debug

# Debian packages the build and the tests need (dpkg-dev and binutils: the package install test
# builds a .deb of the debug binaries; postgresql: the fleet store's tests start throwaway clusters).
APT_PACKAGES = systemd util-linux curl strace openssl dpkg-dev binutils postgresql

# The Debian package. Its sources live in .debian/ (a dot directory: the top level of the
# repository holds only the project's own directories, and debian/ would make tools such as
# dpkg-buildpackage expect a Debian source package): control, the maintainer scripts,
# copyright, lintian overrides and build-deb.sh, which packages given binaries (the release
# build here, the debug build in the install test). VERSION is `token-brokerd --version`
# (BrokerVersion in the sources), the package's VERSION-DEB_REVISION. Output in .build-deb/.
DEB_OUT      ?= .build-deb
DEB_REVISION ?= 1
DEB_APT_PACKAGES = dpkg-dev binutils lintian

FUZZ_SECONDS ?= 300
FUZZ_TARGETS = http-request http-differential config token-response error-response state-file proxy-answer

.PHONY: deps dev build release test lint format install deb check-units clean bench-build bench orderfile reliability fuzz-build fuzz

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The real authorization server the system tests start (django-oauth-toolkit, pinned in
# Tests/SystemTests/AuthorizationServer/requirements.txt) in a venv of its own; needs PyPI.
OAUTH_VENV ?= .build/oauth-venv
OAUTH_REQUIREMENTS = Tests/SystemTests/AuthorizationServer/requirements.txt

.PHONY: oauth-server-deps
oauth-server-deps: deps
	@if [ ! -x $(OAUTH_VENV)/bin/gunicorn ] || [ $(OAUTH_REQUIREMENTS) -nt $(OAUTH_VENV)/installed ]; then \
	  echo "installing the test authorization server into $(OAUTH_VENV)"; \
	  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then \
	    if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq python3-venv >/dev/null; \
	  fi; \
	  rm -rf $(OAUTH_VENV) && python3 -m venv $(OAUTH_VENV) \
	    && $(OAUTH_VENV)/bin/pip install -q --disable-pip-version-check -r $(OAUTH_REQUIREMENTS) \
	    && touch $(OAUTH_VENV)/installed; \
	fi

build: deps
	$(SWIFT) build -c $(CONFIG) --scratch-path $(BUILD)

dev: build
	$(BUILD)/$(CONFIG)/token-brokerd --dev

# Release builds put every function in a section of its own (Swift and C), so the linker drops
# what nothing calls and places what a run executes first (Sources/token-brokerd/symbol-order.txt,
# written by `make orderfile`): a smaller binary and fewer resident pages (README "Performance").
RELEASE_FLAGS = -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xcc -fdata-sections

release: deps
	$(SWIFT) build -c release --scratch-path $(BUILD) $(RELEASE_FLAGS)

test: deps oauth-server-deps
	$(SWIFT) build --build-tests --scratch-path $(BUILD)
	$(SWIFT) test --skip-build --scratch-path $(BUILD)
	$(MAKE) --no-print-directory lint

lint:
	@if $(SWIFT) format --version >/dev/null 2>&1; then \
	  out=$$($(SWIFT) format lint --strict --recursive Sources Tests Package.swift 2>&1); \
	  if [ -n "$$out" ]; then echo "$$out"; echo "swift format lint: findings above (make format fixes most)"; exit 1; fi; \
	  echo "swift format lint: clean"; \
	fi

format:
	$(SWIFT) format --in-place --recursive Sources Tests Package.swift

bench-build: deps
	$(SWIFT) build -c release --scratch-path .build-bench $(RELEASE_FLAGS)

bench: bench-build
	.build-bench/release/token-broker-bench all

# Records which functions a run of the release daemon executes (valgrind, installed when missing)
# and writes their link order; then relinks token-brokerd with it.
orderfile: bench-build
	.build-bench/release/token-broker-bench orderfile --output Sources/token-brokerd/symbol-order.txt
	@# SwiftPM does not know the order file is an input of the link: make it link again.
	rm -f .build-bench/release/token-brokerd
	$(SWIFT) build -c release --scratch-path .build-bench $(RELEASE_FLAGS) --product token-brokerd

reliability: bench-build
	.build-bench/release/token-broker-reliability all

# New inputs go to .build-fuzz/corpus/TARGET; the committed corpus is read too. A crash
# leaves .build-fuzz/crash-TARGET-*: copy it to Tests/ReliabilityTests/Corpus/regressions/TARGET/.
# SwiftPM passes --sanitize fuzzer and --sanitize address to swiftc as two -sanitize= flags and
# the last one wins: Swift code would get ASan but no coverage counters (libFuzzer runs blind).
# One combined -sanitize=fuzzer,address instruments the Swift code with both.
fuzz-build: deps
	$(SWIFT) build -c release --sanitize fuzzer --disable-dead-strip \
	  -Xswiftc -sanitize=fuzzer,address --scratch-path .build-fuzz --product token-broker-fuzz \
	  -Xlinker --allow-multiple-definition

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p .build-fuzz/corpus/$$t; \
	  echo "fuzzing $$t for $(FUZZ_SECONDS) s"; \
	  SWIFT_BACKTRACE=enable=no .build-fuzz/release/token-broker-fuzz $$t .build-fuzz/corpus/$$t \
	    Tests/ReliabilityTests/Corpus/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=.build-fuzz/crash-$$t- || exit 1; \
	done

deb: release
	@$(MAKE) --no-print-directory deps APT_PACKAGES="$(DEB_APT_PACKAGES)"
	@rm -f $(DEB_OUT)/token-broker_*.deb $(DEB_OUT)/token-broker-fleet_*.deb
	@debs=$$(sh .debian/build-deb.sh $(BUILD)/release $(DEB_OUT) $(DEB_REVISION)) && \
	  for deb in $$debs; do echo "built $$deb ($$(du -k $$deb | cut -f1) KiB)"; done && \
	  lintian --fail-on error,warning --info $$debs && echo "lintian: clean"

check-units:
	@sh systemd/check-units.sh

install: release
	install -D -m 0755 $(BUILD)/release/token-brokerd $(DESTDIR)$(PREFIX)/bin/token-brokerd
	strip --strip-all $(DESTDIR)$(PREFIX)/bin/token-brokerd
	install -D -m 0755 $(BUILD)/release/tokenctl $(DESTDIR)$(PREFIX)/bin/tokenctl
	install -D -m 0755 $(BUILD)/release/token-broker-fleet $(DESTDIR)$(PREFIX)/libexec/token-broker/token-broker-fleet
	strip --strip-all $(DESTDIR)$(PREFIX)/libexec/token-broker/token-broker-fleet
	install -D -m 0644 systemd/token-broker.service $(DESTDIR)$(UNITDIR)/token-broker.service
	install -D -m 0644 systemd/token-broker.socket $(DESTDIR)$(UNITDIR)/token-broker.socket
	install -D -m 0644 systemd/token-broker.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/token-broker.conf
	install -D -m 0644 systemd/token-broker.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/token-broker.conf
	mkdir -p $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	$(BUILD)/release/tokenctl --generate-completion-script bash \
	  >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/tokenctl
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/token-broker/broker.toml ]; then \
	  install -D -m 0640 etc/token-broker/broker.toml $(DESTDIR)$(SYSCONFDIR)/token-broker/broker.toml; fi

clean:
	rm -rf $(BUILD) $(DEB_OUT)
