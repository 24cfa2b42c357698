# xenlive: `make demo` builds the default demo ISO, `make test` runs every check and test.
# Both install what they need first: Debian packages (as root) and a virtualenv in .venv.

VENV := .venv
PY := $(VENV)/bin/python
RECIPE ?= recipes/xen-demo.yaml
OUT ?= out
WEBCONSOLE := overlays/xenlive/usr/lib/xenlive/webconsole.py

# Debian packages a build and `boot` run (xenlive/run.py TOOL_PACKAGES says which tool comes from which;
# `xenlive doctor` checks them), and uidmap for a build by an ordinary user: all that `make deps` installs.
APT_PACKAGES := mmdebstrap squashfs-tools makefs grub-common grub-pc-bin grub-efi-amd64-bin xorriso mtools \
	e2fsprogs dosfstools lz4 zstd qemu-system-x86 ovmf python3-venv ca-certificates uidmap
# What only the tests need besides: shellcheck (lint), Chromium (the web console's browser test), qemu-img
# and lsinitramfs (reading images), diskimage-builder's sudo and debootstrap.
TEST_APT_PACKAGES := $(APT_PACKAGES) qemu-utils python3-pip shellcheck chromium chromium-driver sudo debootstrap \
	initramfs-tools-core

.PHONY: all deps test-deps venv test-venv demo boot smoke test check lint unit scripts tools boot-test bench clean

all: demo

# Install those of the packages $(1) that are missing (nothing, and no apt-get update, when all are there).
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f '$${Status}\n' $$p 2>/dev/null \
		| grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

deps: ## install the Debian packages a build and boot need (skipped when all are present)
	$(call apt_install,$(APT_PACKAGES))

test-deps: ## install those and what the tests need besides (skipped when all are present)
	$(call apt_install,$(TEST_APT_PACKAGES))

venv: $(VENV)/.installed ## .venv with xenlive (editable) and what it imports

test-venv: $(VENV)/.installed-test ## .venv with the test extras besides: pytest, ruff, mypy, selenium, diskimage-builder

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,dib]'
	touch $@

demo: deps venv ## build the default demo ISO into out/ (installs only what the build and boot need)
	./build.py build $(RECIPE) -o $(OUT)

boot: ## boot the demo ISO in QEMU (serial console here; quit with Ctrl-A X)
	./build.py boot $(OUT)/$$(basename $(RECIPE) .yaml).iso

smoke: ## headless boot of the demo ISO until every guest is ready
	./build.py smoke $(OUT)/$$(basename $(RECIPE) .yaml).iso --junit $(OUT)/smoke.xml

lint: test-venv ## ruff (lint and format), mypy --strict (the package, bench, the web console), shellcheck
	$(VENV)/bin/ruff check xenlive tests bench build.py hatch_build.py $(WEBCONSOLE)
	$(VENV)/bin/ruff format --check xenlive tests bench build.py hatch_build.py $(WEBCONSOLE)
	$(VENV)/bin/mypy --strict xenlive
	$(VENV)/bin/mypy --strict bench
	$(VENV)/bin/mypy --strict $(WEBCONSOLE)
	shellcheck -x overlays/xenlive/usr/lib/xenlive/xenlive-boot overlays/xenlive/usr/lib/xenlive/xenlive-console overlays/xenlive/usr/lib/xenlive/xenlive-greeting \
		overlays/xenlive/etc/xen/scripts/* overlays/dom0-base/etc/initramfs-tools/hooks/* \
		overlays/dom0-base/etc/initramfs-tools/scripts/init-bottom/* guest-images/*/etc/initramfs-tools/hooks/* \
		guest-images/debian/usr/lib/xenlive/* \
		guest-images/dib-elements/*/*.d/* .ci/run
	shellcheck -s sh overlays/dom0-base/etc/initramfs-tools/scripts/xenlive
	# runit's stages and services: sh, sourcing files that exist only in dom0 or the guest (SC1091).
	# (The run scripts the config stage generates from xenlive/services.py: tests/tools/test_service_scripts.py.)
	shellcheck -s sh -e SC1091 overlays/xenlive-runit/etc/runit/boot-run/* overlays/xenlive-runit/etc/runit/rc.shutdown \
		overlays/xenlive-runit/etc/sv/*/run \
		overlays/xenlive-runit/etc/runit/shutdown-run/* guest-images/init/runit/etc/runit/boot-run/* \
		guest-images/init/runit/etc/runit/shutdown-run/* guest-images/init/runit/etc/sv/*/run \
		guest-images/init/runit/etc/tiny-initramfs/hooks.end/*
	shellcheck -s sh -e SC1091,SC2034,SC2154 guest-images/netbsd/etc/rc.d/* guest-images/freebsd/etc/rc.d/*

test: test-deps test-venv lint ## lint, type-check, then unit, tool and boot tests
	$(PY) -m pytest tests

check: lint unit scripts ## the quick checks: lint, type checks, unit and scripts tests (seconds; no root, no boot)

unit: test-venv ## unit tests: models, error messages, argv builders, cache keys, templates (seconds)
	$(PY) -m pytest tests/unit

scripts: test-venv ## the boot-side scripts (xenlive-boot, xenlive-console, runit stage 1) run for real under a fake dom0 (seconds)
	$(PY) -m pytest tests/scripts

tools: test-deps test-venv ## tool tests: the real mksquashfs, mkfs.ext4, grub-mkrescue, QEMU... on small inputs (as root)
	$(PY) -m pytest tests/tools

boot-test: test-deps test-venv ## boot tests: build recipes/ci.yaml, ci-systemd, ci-bookworm and ci-dib, boot them in QEMU (as root; minutes)
	$(PY) -m pytest tests/boot

bench: deps venv ## measure build and boot times into BENCHMARKS.md (RECIPE=recipes/X.yaml: into its own section)
	$(PY) bench/bench.py --recipe $(RECIPE) --write BENCHMARKS.md

clean:
	rm -rf $(OUT) .pytest_cache .mypy_cache .ruff_cache
