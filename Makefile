# Two entry points that work on a fresh machine with Python 3.11 and apt:
#   make demo   installs the main job's packages into .venv and runs `kefu demo`
#   make test   installs everything the tests need and runs the whole suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# One BLAS thread per process: two threads on two cores stall queries by about 8 ms.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

# espeak-ng speaks the answers (its espeak-ng-data package has the cmn-latn-pinyin voice);
# the tests also render Chinese labels, which needs a CJK font.
APT_PACKAGES := espeak-ng
TEST_APT_PACKAGES := $(APT_PACKAGES) fonts-wqy-zenhei

.PHONY: demo test install install-dev apt-deps test-apt-deps apt-install proto lint clean

demo: install
	$(BIN)/kefu demo

test: install-dev
	$(BIN)/pytest

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: apt-deps $(VENV)/.installed
$(VENV)/.installed: pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[voice,vision]'
	touch $@

install-dev: test-apt-deps $(VENV)/.installed-dev
$(VENV)/.installed-dev: pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[voice,vision,llm,dev]'
	touch $@ $(VENV)/.installed

apt-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

test-apt-deps:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_APT_PACKAGES)"

apt-install:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Regenerate the Python code of the gRPC contract after editing proto/.
proto: install-dev
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. \
		--grpc_python_out=. proto/kefu_api/v1/*.proto

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info
