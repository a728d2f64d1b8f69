# eulerpub developer entry points. `make install` sets up a fresh Debian/Ubuntu machine; `make test` runs everything.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install host-deps venv test test-fast test-arm lint bench demo clean

install: host-deps venv  ## host packages (apt) + the virtualenv with eulerpub and its test tools

host-deps:
	bash scripts/install-host-deps.sh

venv: $(BIN)/eulerpub

$(BIN)/eulerpub: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

test: venv  ## every test: unit, integration (local servers), end to end (DIB build + QEMU boot + publish)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: venv  ## skip the slow layers while developing
	$(BIN)/python -m pytest -m "not slow and not e2e" $(PYTEST_ARGS)

test-arm: venv  ## aarch64 cross-built on this x86 host (qemu-user binfmt), booted under qemu-system-aarch64 + UEFI
	EULERPUB_CROSS_ARM=1 bash scripts/install-host-deps.sh
	[ "$$(uname -m)" = aarch64 ] || [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || \
	  { mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; \
	    update-binfmts --enable qemu-aarch64; }
	EULERPUB_TEST_ARM=1 $(BIN)/python -m pytest tests/e2e/test_arm_standin.py -s $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check eulerpub tests
	find elements scripts tests eulerpub/shims -type f \( -name '*.sh' -o -path '*.d/*' -o -path '*/bin/*' \) \
	  ! -name '*.md' ! -name '*.rst' ! -name '*.yaml' ! -name '*.py' ! -path 'tests/openeuler-root/*/etc/*' -print0 \
	  | xargs -0 -r shellcheck -x
	for d in elements tests/elements; do \
	  ELEMENTS_DIR=$$d LIB_DIR=$$($(BIN)/python -c 'import diskimage_builder,os;print(os.path.dirname(diskimage_builder.__file__))')/lib \
	    $(BIN)/dib-lint >/dev/null || { echo "dib-lint failed for $$d"; exit 1; }; done
	$(BIN)/actionlint .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

bench: venv  ## benchmarks against the obvious alternatives, printed as ratios
	$(BIN)/python -m pytest tests/bench -s -p no:cacheprovider $(PYTEST_ARGS)

demo: venv  ## the main job with no cloud: local mirror + local clouds, real build, boot test, publish to four clouds, release (Debian's mirror once, for the stand-in)
	$(BIN)/python -m tests.demo

clean:
	rm -rf build .pytest_cache .ruff_cache
